"""Deterministic mutants of the real DICOM files in ``../shared/data/real``.

``make_mutant(seeds, campaign_seed, index, out_dir)`` writes mutant number ``index`` of a
campaign and returns its path and a one-line description; the same arguments always give the
same bytes, so any finding can be rebuilt from its index alone (``harness --only INDEX``).
Kinds: byte flips, truncations, broken element length fields, absurd image-size tags, hostile
geometry and rescale values (also inside enhanced per-frame groups), photometric/transfer-syntax
swaps; series mutants put one mutated slice among intact neighbours.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("OSTEOVIEW_SHARED", REPO.parent / "shared"))
REAL_DATA = SHARED / "data" / "real"
MAX_SEED_BYTES = 2_300_000  # bigger files cost seconds per mutant and add no new code paths
SERIES_SEEDS = ("ct_head_gantry_tilt", "totalsegmentator/example_ct_dicom")
SERIES_SLICES = 3

HOSTILE_FLOATS = ["nan", "inf", "-inf", "1e308", "-1e308", "0", "-1", "-5", "1e38", "1e-320"]
HOSTILE_INTS = [0, 1, 2, 3, 7, 255, 32768, 65535, -1, 10_000_000]
SIZE_TAGS = ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel",
             "PixelRepresentation", "PlanarConfiguration", "NumberOfFrames"]  # fmt: skip
GEOMETRY_TAGS = {
    "ImagePositionPatient": 3,
    "ImageOrientationPatient": 6,
    "PixelSpacing": 2,
    "ImagerPixelSpacing": 2,
    "SliceThickness": 1,
    "SpacingBetweenSlices": 1,
    "RescaleSlope": 1,
    "RescaleIntercept": 1,
    "WindowCenter": 1,
    "WindowWidth": 1,
}
PHOTOMETRICS = ["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT",
                "YBR_RCT", "PALETTE COLOR", "", "XYZ"]  # fmt: skip
SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
            "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
            "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5",
            "1.2.840.10008.1.2.1.99"]  # fmt: skip
# Tags whose element headers are worth breaking (little-endian group, element).
LENGTH_TAGS = [(0x0028, 0x0010), (0x0028, 0x0011), (0x0028, 0x0008), (0x0028, 0x0100),
               (0x0020, 0x0032), (0x0020, 0x0037), (0x0028, 0x0030), (0x7FE0, 0x0010),
               (0x5200, 0x9229), (0x5200, 0x9230), (0x0008, 0x0016), (0x0002, 0x0010),
               (0xFFFE, 0xE000)]  # fmt: skip
SHORT_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
             b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}  # fmt: skip


@dataclass(frozen=True)
class Seed:
    path: Path
    series: tuple[Path, ...] = ()  # intact neighbours of a series mutant


def find_seeds(root: Path = REAL_DATA) -> list[Seed]:
    """Every real DICOM file small enough, plus one series seed per series folder."""
    seeds: list[Seed] = []
    for path in sorted(root.rglob("*.dcm")):
        if path.stat().st_size <= MAX_SEED_BYTES:
            seeds.append(Seed(path))
    for folder in SERIES_SEEDS:
        files = sorted(p for p in (root / folder).iterdir() if p.is_file() and _is_dicom(p))
        if len(files) >= SERIES_SLICES:
            mid = len(files) // 2
            seeds.append(Seed(files[mid], tuple(files[mid - 1 : mid - 1 + SERIES_SLICES])))
    return seeds


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(132)[128:132] == b"DICM"


# ---------------------------------------------------------------- byte-level mutations
def flip_bytes(data: bytearray, rng: random.Random) -> str:
    if not data:  # truncated to nothing by an earlier step
        return "nothing left to flip"
    n = rng.choice([1, 2, 4, 8, 32])
    head = rng.random() < 0.6  # the header region is where parsers branch
    limit = min(len(data), 4096) if head else len(data)
    for _ in range(n):
        pos = rng.randrange(limit)
        data[pos] = (
            rng.randrange(256) if rng.random() < 0.5 else data[pos] ^ (1 << rng.randrange(8))
        )
    return f"flip {n} byte(s) in the {'header' if head else 'file'}"


def truncate(data: bytearray, rng: random.Random) -> str:
    if not data:
        return "nothing left to truncate"
    cut = rng.randrange(len(data)) if rng.random() < 0.5 else rng.randrange(min(len(data), 4096))
    del data[cut:]
    return f"truncate at {cut}"


def break_length(data: bytearray, rng: random.Random) -> str:
    """Overwrite the length field of one element header found in the bytes."""
    group, element = rng.choice(LENGTH_TAGS)
    pattern = struct.pack("<HH", group, element)
    hits = []
    start = data.find(pattern)
    while start >= 0 and len(hits) < 64:
        hits.append(start)
        start = data.find(pattern, start + 1)
    if not hits:
        return flip_bytes(data, rng)
    pos = rng.choice(hits)
    vr = bytes(data[pos + 4 : pos + 6])
    if vr in SHORT_VRS:
        field, fmt, top = pos + 6, "<H", 0xFFFF
    elif len(vr) == 2 and vr.isalpha() and vr.isupper():
        field, fmt, top = pos + 8, "<L", 0xFFFFFFFF
    else:
        field, fmt, top = pos + 4, "<L", 0xFFFFFFFF
    if field + struct.calcsize(fmt) > len(data):
        return truncate(data, rng)
    (old,) = struct.unpack_from(fmt, data, field)
    new = rng.choice([0, 1, 3, top, top - 1, old + 1, max(old - 1, 0), old * 2, top // 2])
    struct.pack_into(fmt, data, field, new & top)
    return f"length of ({group:04X},{element:04X}) {old} -> {new & top}"


# ---------------------------------------------------------------- tag-level mutations
def _hostile_number(rng: random.Random) -> str:
    return rng.choice(HOSTILE_FLOATS)


def _set_raw(ds, keyword: str, value: object) -> None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if keyword in ds:
        ds[keyword].value = value
    else:
        ds.add_new(tag, dictionary_VR(tag), value)


def geometry_value(ds, rng: random.Random) -> str:
    keyword = rng.choice(list(GEOMETRY_TAGS))
    n = GEOMETRY_TAGS[keyword]
    values = [str(v) for v in (ds.get(keyword) or [])] if n > 1 else []
    if len(values) != n:
        values = ["1"] * n
    k = rng.randrange(n)
    values[k] = _hostile_number(rng)
    if rng.random() < 0.3:
        values = [_hostile_number(rng) for _ in range(n)]
    target = ds
    groups = [g for g in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")
              if g in ds and len(ds[g].value)]  # fmt: skip
    where = ""
    if groups and keyword in ("PixelSpacing", "SliceThickness", "ImagePositionPatient",
                              "ImageOrientationPatient", "RescaleSlope", "RescaleIntercept"):  # fmt: skip
        seq = {
            "PixelSpacing": "PixelMeasuresSequence",
            "SliceThickness": "PixelMeasuresSequence",
            "ImagePositionPatient": "PlanePositionSequence",
            "ImageOrientationPatient": "PlaneOrientationSequence",
            "RescaleSlope": "PixelValueTransformationSequence",
            "RescaleIntercept": "PixelValueTransformationSequence",
        }[keyword]
        group_name = rng.choice(groups)
        items = ds[group_name].value
        item = items[rng.randrange(len(items))]
        if seq in item and len(item[seq].value):
            target, where = item[seq].value[0], f" in {group_name}"
    joined = "\\".join(values)
    _set_raw(target, keyword, joined)
    return f"{keyword}{where} = {joined}"


def size_value(ds, rng: random.Random) -> str:
    keyword = rng.choice(SIZE_TAGS)
    old = ds.get(keyword)
    choices = list(HOSTILE_INTS)
    if isinstance(old, int):
        choices += [old + 1, old - 1, old * 2]
    value = rng.choice(choices)
    if keyword != "NumberOfFrames":
        value &= 0xFFFF  # US values
        _set_raw(ds, keyword, value)
    else:
        _set_raw(ds, keyword, str(value) if rng.random() < 0.9 else "abc")
    return f"{keyword} = {value}"


def swap_photometric(ds, rng: random.Random) -> str:
    value = rng.choice(PHOTOMETRICS)
    _set_raw(ds, "PhotometricInterpretation", value)
    return f"PhotometricInterpretation = {value!r}"


def swap_syntax(ds, rng: random.Random) -> str:
    value = rng.choice(SYNTAXES)
    ds.file_meta.TransferSyntaxUID = value
    return f"TransferSyntaxUID = {value}"


TAG_MUTATIONS = [geometry_value, geometry_value, size_value, size_value, swap_photometric,
                 swap_syntax]  # fmt: skip
BYTE_MUTATIONS = [flip_bytes, truncate, break_length]


def _tag_mutant(src: Path, rng: random.Random) -> tuple[bytes, str] | None:
    import io

    import pydicom
    from pydicom import config

    config.settings.writing_validation_mode = config.IGNORE
    config.settings.reading_validation_mode = config.IGNORE
    try:
        ds = pydicom.dcmread(src, force=True)
        steps = [rng.choice(TAG_MUTATIONS)(ds, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        buf = io.BytesIO()
        # Written as read: the mutant's declared syntax may no longer match its encoding.
        ds.save_as(buf, enforce_file_format=False, implicit_vr=ds.original_encoding[0],
                   little_endian=ds.original_encoding[1])  # fmt: skip
    except Exception:  # noqa: BLE001 - pydicom refused to write it: use a byte mutation instead
        return None
    return buf.getvalue(), "; ".join(steps)


def make_mutant(
    seeds: list[Seed], campaign_seed: int, index: int, out_dir: Path
) -> tuple[Path, str]:
    """Write mutant ``index`` under ``out_dir`` (emptied first); (path to load, description)."""
    rng = random.Random(f"{campaign_seed}:{index}")
    seed = seeds[rng.randrange(len(seeds))]
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    desc = ""
    data: bytes | None = None
    if rng.random() < 0.55:
        made = _tag_mutant(seed.path, rng)
        if made is not None:
            data, desc = made
    if data is None:
        buf = bytearray(seed.path.read_bytes())
        steps = [rng.choice(BYTE_MUTATIONS)(buf, rng) for _ in range(rng.choice([1, 1, 2]))]
        data, desc = bytes(buf), "; ".join(steps)
    name = seed.path.name
    (out_dir / name).write_bytes(data)
    for neighbour in seed.series:
        if neighbour != seed.path:
            shutil.copyfile(neighbour, out_dir / neighbour.name)
    target = out_dir if seed.series else out_dir / name
    label = f"{seed.path.relative_to(REAL_DATA)}{' (in a series)' if seed.series else ''}"
    return target, f"{label}: {desc}"
