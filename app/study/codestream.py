"""What a compressed frame says about itself, checked against the DICOM header.

Native decoders (GDCM above all) trust the header: a code stream of 64 columns decoded into a
buffer sized for 65, or one component decoded as YBR_FULL_422, ends in a C++ exception that
nobody catches and the process aborts. So before a frame reaches a decoder its own header is
read here (JPEG SOFn, JPEG-LS SOF55, JPEG 2000 SIZ, the RLE segment table) and compared with
Rows, Columns and SamplesPerPixel, and the photometric interpretation with SamplesPerPixel.
A mismatch is a clear ``ValueError`` naming both sides. Decoders still run in a child process
(``decode_pool``): these checks give the reason, the child keeps the viewer alive regardless.
"""

from __future__ import annotations

import struct

JPEG_SYNTAXES = {
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
}
JPEG_LS_SYNTAXES = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
J2K_PREFIX = "1.2.840.10008.1.2.4.20"  # .201-.203 HTJ2K
J2K_SYNTAXES = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"}
RLE_SYNTAX = "1.2.840.10008.1.2.5"
# SOFn markers (C4 DHT, C8 JPG and CC DAC are not frame headers); F7 is JPEG-LS SOF55.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_SAMPLES_OF_PHOTOMETRIC = {
    "MONOCHROME1": 1,
    "MONOCHROME2": 1,
    "PALETTE COLOR": 1,
    "RGB": 3,
    "YBR_FULL": 3,
    "YBR_FULL_422": 3,
    "YBR_PARTIAL_422": 3,
    "YBR_PARTIAL_420": 3,
    "YBR_ICT": 3,
    "YBR_RCT": 3,
}
# Photometric interpretations that only a specific compression produces.
_PHOTOMETRIC_SYNTAX = {
    "YBR_ICT": ("JPEG 2000", J2K_SYNTAXES | {"1.2.840.10008.1.2.4.203"}),
    "YBR_RCT": ("JPEG 2000", J2K_SYNTAXES | {"1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202"}),
}


class StreamMismatch(ValueError):
    """The header and the compressed frame disagree; the message says how."""


def check_photometric(photometric: str, samples: int, syntax: str) -> None:
    expected = _SAMPLES_OF_PHOTOMETRIC.get(photometric)
    if expected is None:
        raise StreamMismatch(f"PhotometricInterpretation {photometric or '(none)'!r} is unknown")
    if expected != samples:
        raise StreamMismatch(
            f"PhotometricInterpretation {photometric} needs {expected} sample(s) per pixel, "
            f"the header says {samples}"
        )
    needed = _PHOTOMETRIC_SYNTAX.get(photometric)
    if needed is not None and syntax not in needed[1]:
        raise StreamMismatch(f"PhotometricInterpretation {photometric} occurs only in {needed[0]}")


def _jpeg_frame_header(data: bytes) -> tuple[int, int, int, int]:
    """(precision, rows, columns, components) of the first SOFn / SOF55 segment."""
    if data[:2] != b"\xff\xd8":
        raise StreamMismatch("JPEG frame does not start with an SOI marker")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise StreamMismatch(f"JPEG frame has no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF:
            if pos + 10 > len(data) or length < 8:
                break
            precision, rows, cols, comps = struct.unpack_from(">BHHB", data, pos + 4)
            return precision, rows, cols, comps
        if marker == 0xDA or length < 2:  # scan data before any frame header
            break
        pos += 2 + length
    raise StreamMismatch("JPEG frame has no frame header (SOF)")


def _j2k_size(data: bytes) -> tuple[int, int, int]:
    """(rows, columns, components) from the SIZ segment (raw code stream or a JP2 file)."""
    start = data.find(b"\xff\x4f\xff\x51")
    if start < 0 or start > 4096:
        raise StreamMismatch("JPEG 2000 frame has no SIZ segment")
    p = start + 4
    if p + 38 > len(data):
        raise StreamMismatch("JPEG 2000 SIZ segment is truncated")
    _lsiz, _rsiz, xsiz, ysiz, xo, yo = struct.unpack_from(">HHIIII", data, p)
    (csiz,) = struct.unpack_from(">H", data, p + 36)
    if xo > xsiz or yo > ysiz:
        raise StreamMismatch("JPEG 2000 SIZ image offset lies beyond the image")
    return ysiz - yo, xsiz - xo, csiz


def _rle_segments(data: bytes) -> int:
    if len(data) < 64:
        raise StreamMismatch("RLE frame is shorter than its 64-byte header")
    (n,) = struct.unpack_from("<L", data, 0)
    offsets = struct.unpack_from("<15L", data, 4)
    if not 1 <= n <= 15 or offsets[0] != 64:
        raise StreamMismatch(
            f"the RLE header is malformed ({n} segments, the first at {offsets[0]})"
        )
    if any(offsets[k] > len(data) or offsets[k] < offsets[k - 1] for k in range(1, n)):
        raise StreamMismatch("RLE segment offsets lie outside the frame")
    return n


def check_frame(
    data: bytes, syntax: str, rows: int, cols: int, samples: int, bits_allocated: int
) -> None:
    """Raise StreamMismatch when one compressed frame does not match the header's image."""
    if syntax in JPEG_SYNTAXES or syntax in JPEG_LS_SYNTAXES:
        precision, h, w, comps = _jpeg_frame_header(data)
        if precision > max(bits_allocated, 8) or precision < 2:
            raise StreamMismatch(
                f"JPEG frame holds {precision}-bit samples, BitsAllocated is {bits_allocated}"
            )
    elif syntax in J2K_SYNTAXES or syntax.startswith(J2K_PREFIX):
        h, w, comps = _j2k_size(data)
    elif syntax == RLE_SYNTAX:
        n = _rle_segments(data)
        expected = samples * max(bits_allocated // 8, 1)
        if n != expected:
            raise StreamMismatch(
                f"RLE frame has {n} segment(s), {samples} sample(s) of {bits_allocated} bits "
                f"need {expected}"
            )
        return
    else:
        return  # no header we know how to read: the child process is the only guard
    if h not in (0, rows) or w != cols:  # JPEG may leave the height to a DNL marker (0)
        raise StreamMismatch(
            f"the compressed frame is {h}x{w} pixels, the header says Rows x Columns {rows}x{cols}"
        )
    if comps != samples:
        raise StreamMismatch(
            f"the compressed frame has {comps} component(s), SamplesPerPixel is {samples}"
        )
