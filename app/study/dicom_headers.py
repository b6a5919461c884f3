"""One header pass per DICOM file: the few tags the loader needs, and where the pixels are.

Most series on disk are uncompressed little-endian files, one slice each. For those a tiny
element walker (``parse_native``) reads only the first kilobytes of the file, keeps the tags in
``WANTED`` and notes the byte offset of PixelData, so the loader can later read the pixel bytes
straight into its preallocated volume. Python-level overhead per file is what dominates the load
time of a 300-slice series, so this avoids pydicom's per-file Dataset machinery on the hot path.
Anything the walker does not handle (big endian, deflate, compressed pixel data, no preamble,
odd encodings) raises ``NotNative`` and the caller falls back to pydicom (``read_with_pydicom``).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

# (group, element) -> (keyword, VR) for the tags the loader uses. The VR is needed for
# implicit-VR files, where the file does not say it.
WANTED: dict[int, tuple[str, str]] = {
    0x00080005: ("SpecificCharacterSet", "CS"),
    0x00080008: ("ImageType", "CS"),
    0x00080016: ("SOPClassUID", "UI"),
    0x00080018: ("SOPInstanceUID", "UI"),
    0x00080020: ("StudyDate", "DA"),
    0x00080050: ("AccessionNumber", "SH"),
    0x00080060: ("Modality", "CS"),
    0x00080070: ("Manufacturer", "LO"),
    0x00081030: ("StudyDescription", "LO"),
    0x0008103E: ("SeriesDescription", "LO"),
    0x00081090: ("ManufacturerModelName", "LO"),
    0x00100010: ("PatientName", "PN"),
    0x00100020: ("PatientID", "LO"),
    0x00100030: ("PatientBirthDate", "DA"),
    0x00100040: ("PatientSex", "CS"),
    0x00180015: ("BodyPartExamined", "CS"),
    0x00180050: ("SliceThickness", "DS"),
    0x00180086: ("EchoNumbers", "IS"),
    0x00180088: ("SpacingBetweenSlices", "DS"),
    0x00181120: ("GantryDetectorTilt", "DS"),
    0x00181164: ("ImagerPixelSpacing", "DS"),
    0x00185101: ("ViewPosition", "CS"),
    0x0020000D: ("StudyInstanceUID", "UI"),
    0x0020000E: ("SeriesInstanceUID", "UI"),
    0x00200011: ("SeriesNumber", "IS"),
    0x00200012: ("AcquisitionNumber", "IS"),
    0x00200013: ("InstanceNumber", "IS"),
    0x00200032: ("ImagePositionPatient", "DS"),
    0x00200037: ("ImageOrientationPatient", "DS"),
    0x00200052: ("FrameOfReferenceUID", "UI"),
    0x00200100: ("TemporalPositionIdentifier", "IS"),
    0x00280002: ("SamplesPerPixel", "US"),
    0x00280004: ("PhotometricInterpretation", "CS"),
    0x00280006: ("PlanarConfiguration", "US"),
    0x00280008: ("NumberOfFrames", "IS"),
    0x00280010: ("Rows", "US"),
    0x00280011: ("Columns", "US"),
    0x00280030: ("PixelSpacing", "DS"),
    0x00280100: ("BitsAllocated", "US"),
    0x00280101: ("BitsStored", "US"),
    0x00280103: ("PixelRepresentation", "US"),
    0x00281050: ("WindowCenter", "DS"),
    0x00281051: ("WindowWidth", "DS"),
    0x00281052: ("RescaleIntercept", "DS"),
    0x00281053: ("RescaleSlope", "DS"),
    0x3004000E: ("DoseGridScaling", "DS"),
}
KEYWORDS = tuple(kw for kw, _ in WANTED.values())
_VR_OF_KEYWORD = {kw: vr for kw, vr in WANTED.values()}

NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_HEAD_BYTES = 8192


class NotNative(Exception):
    """The fast walker cannot read this file; use pydicom instead."""


class NotDicom(Exception):
    """The file is not DICOM at all (reason in the message)."""


@dataclass
class RawHeader:
    """Tag values as plain Python (str, list[str], int) keyed by keyword, plus pixel location."""

    path: str
    transfer_syntax: str
    values: dict = field(default_factory=dict)
    pixel_offset: int | None = None  # byte offset of native pixel data (fast path only)
    pixel_length: int = 0
    has_pixels: bool = False
    dataset: object | None = None  # the pydicom Dataset when the fallback was used


def _u16(buf: bytes, pos: int) -> int:
    return buf[pos] | (buf[pos + 1] << 8)


def _decode_value(raw: bytes, vr: str, charset: str) -> object:
    if vr == "US":
        n = len(raw) // 2
        vals = struct.unpack(f"<{n}H", raw[: 2 * n])
        return vals[0] if n == 1 else list(vals)
    enc = "utf-8" if "192" in charset else "latin-1"
    text = raw.decode(enc, "replace").strip(" \x00")
    if vr in ("DS", "IS", "CS", "UI") and "\\" in text:
        return [part.strip(" \x00") for part in text.split("\\")]
    return text


class _Walker:
    """Walks top-level elements of a little-endian dataset held (partly) in memory."""

    def __init__(self, f, size: int, explicit: bool, buf: bytes, start: int) -> None:
        self.f, self.size, self.explicit = f, size, explicit
        self.buf, self.base = buf, 0  # buf holds file bytes [base, base + len(buf))
        self.pos = start

    def _need(self, n: int) -> None:
        """Make sure file bytes [pos, pos + n) are in buf (reads more of the file when not)."""
        end = self.pos + n
        if end <= self.base + len(self.buf):
            return
        if end > self.size:
            raise NotDicom("file ends inside the header (truncated)")
        want = max(end - self.base, 2 * len(self.buf))
        self.f.seek(self.base)
        self.buf = self.f.read(want)

    def element(self) -> tuple[int, bytes, int]:
        """(tag, vr, length) of the element at pos; pos moves to its value."""
        self._need(8)
        b, p = self.buf, self.pos - self.base
        tag = (_u16(b, p) << 16) | _u16(b, p + 2)
        if not self.explicit or (tag >> 16) == 0xFFFE:
            (length,) = struct.unpack_from("<L", b, p + 4)
            self.pos += 8
            return tag, b"", length
        vr = bytes(b[p + 4 : p + 6])
        if vr in _LONG_VRS:
            self._need(12)
            (length,) = struct.unpack_from("<L", self.buf, self.pos - self.base + 8)
            self.pos += 12
        else:
            if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
                raise NotNative(f"unexpected VR bytes {vr!r}")
            length = _u16(b, p + 6)
            self.pos += 8
        return tag, vr, length

    def value(self, length: int) -> bytes:
        self._need(length)
        p = self.pos - self.base
        self.pos += length
        return bytes(self.buf[p : p + length])

    def skip_undefined(self) -> None:
        """Skip a sequence of undefined length (items of defined or undefined length)."""
        while True:
            tag, _vr, length = self.element()
            if tag == _SEQ_END:
                return
            if tag != _ITEM:
                raise NotNative("malformed sequence")
            if length != _UNDEFINED:
                self.pos += length
                continue
            while True:  # an item of undefined length: elements until the item delimiter
                tag, vr, length = self.element()
                if tag == _ITEM_END:
                    break
                if length == _UNDEFINED:
                    if vr == b"UN":
                        raise NotNative("undefined-length UN element")
                    self.skip_undefined()
                else:
                    self.pos += length


def parse_native(path: str) -> RawHeader:
    """Read the wanted tags of an uncompressed little-endian DICOM file (Part 10 with preamble).

    Raises NotNative when pydicom should read the file instead, NotDicom when it is not DICOM.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise NotDicom("empty file")
        buf = f.read(_HEAD_BYTES)
        if len(buf) < 132 or buf[128:132] != b"DICM":
            raise NotNative("no DICOM preamble")
        # File meta group: always explicit VR little endian.
        meta = _Walker(f, size, True, buf, 132)
        syntax = ""
        while True:
            meta._need(4)
            p = meta.pos - meta.base
            if _u16(meta.buf, p) != 0x0002:
                break
            tag, _vr, length = meta.element()
            if tag == 0x00020010:
                syntax = meta.value(length).decode("ascii", "replace").strip(" \x00")
            else:
                meta.pos += length
        if syntax not in NATIVE_SYNTAXES:
            raise NotNative(f"transfer syntax {syntax or 'missing'}")
        walker = _Walker(f, size, syntax == "1.2.840.10008.1.2.1", meta.buf, meta.pos)
        walker.base = meta.base
        raw_values: dict[str, tuple[bytes, str]] = {}
        header = RawHeader(path=path, transfer_syntax=syntax)
        while walker.pos + 8 <= size:
            tag, vr, length = walker.element()
            if tag == _PIXEL_DATA:
                if length == _UNDEFINED:
                    raise NotNative("encapsulated pixel data in a native syntax")
                header.has_pixels = True
                header.pixel_offset = walker.pos
                header.pixel_length = length
                if walker.pos + length > size:
                    raise NotDicom(
                        f"truncated pixel data ({size - walker.pos} of {length} bytes present)"
                    )
                break
            if tag > _PIXEL_DATA:
                break
            if length == _UNDEFINED:
                if vr == b"UN":
                    raise NotNative("undefined-length UN element")
                walker.skip_undefined()
                continue
            wanted = WANTED.get(tag)
            if wanted is None:
                walker.pos += length
                continue
            raw_values[wanted[0]] = (walker.value(length), wanted[1])
        charset = raw_values.get("SpecificCharacterSet", (b"", "CS"))[0].decode("latin-1")
        header.values = {
            kw: _decode_value(raw, vr, charset) for kw, (raw, vr) in raw_values.items()
        }
        return header


def _plain(value: object) -> object:
    """pydicom values (MultiValue, DSfloat, IS, PersonName, UID) to str / list[str] / int."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value if isinstance(value, int) else str(value)
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return str(value)


def read_with_pydicom(path: str) -> RawHeader:
    """Header through pydicom (any transfer syntax); the Dataset is kept for decoding later."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if os.path.getsize(path) == 0:
        raise NotDicom("empty file")
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        # Raw datasets without a preamble exist (old ACR-NEMA style); accept only if they
        # parse into something with image-like tags, otherwise this is not DICOM.
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception as exc:  # noqa: BLE001 - any parse failure means "not DICOM"
            raise NotDicom("not a DICOM file") from exc
        if not any(k in ds for k in ("SOPClassUID", "Rows", "StudyInstanceUID", "Modality")):
            raise NotDicom("not a DICOM file") from None
    syntax = ""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        syntax = str(meta.TransferSyntaxUID)
    values = {}
    for kw in KEYWORDS:
        if kw in ds:
            try:
                v = ds[kw].value
            except Exception:  # noqa: BLE001 - a malformed value is treated as absent
                continue
            if v is None:
                values[kw] = ""  # empty element, as the fast walker reports it
            elif _VR_OF_KEYWORD[kw] == "US" and isinstance(v, int):
                values[kw] = v
            else:
                values[kw] = _plain(v)
    header = RawHeader(path=path, transfer_syntax=syntax, values=values, dataset=ds)
    return header
