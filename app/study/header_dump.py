"""The header of the file behind a shown image, as rows for the tag browser (no Qt).

The loader keeps pixels and a few tags, not datasets, so the browser reads the shown file's
header again (DICOM: ``stop_before_pixels``; NIfTI: the nibabel header; PNG/JPEG/TIFF: what
Pillow reports). Bulk values (pixel data, other OB/OW/UN blobs) are named by size, not shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

BULK_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_BULK_BYTES = 64  # a short OB value (a version number, a flag) is still shown
_MAX_TEXT = 200


@dataclass
class TagRow:
    tag: str  # "(0010,0010)", or a header field's name for non-DICOM files
    name: str  # the keyword: PatientName
    vr: str
    value: str
    items: list[list[TagRow]] = field(default_factory=list)  # a sequence's items

    def matches(self, text: str) -> bool:
        """Filter: the text in the tag, its name or its value (case-insensitive), or in any of
        a sequence's nested rows."""
        t = text.lower()
        if t in self.tag.lower() or t in self.name.lower() or t in self.value.lower():
            return True
        return any(r.matches(text) for item in self.items for r in item)


def _short(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def dicom_rows(ds) -> list[TagRow]:
    """Rows of a pydicom Dataset (sequences nested; bulk data elided)."""
    rows = []
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        name = elem.keyword or elem.name
        if elem.VR == "SQ":
            items = [dicom_rows(item) for item in elem.value]
            rows.append(TagRow(tag, name, "SQ", f"{len(items)} item(s)", items))
            continue
        if elem.tag == 0x7FE00010 or (elem.VR in BULK_VRS and _length(elem) > _BULK_BYTES):
            rows.append(TagRow(tag, name, elem.VR, f"<{_length(elem)} bytes, not shown>"))
            continue
        try:
            value = elem.repval if elem.VR in BULK_VRS else str(elem.value)
        except Exception as exc:  # noqa: BLE001 - a malformed value is shown as such
            value = f"<unreadable: {exc}>"
        rows.append(TagRow(tag, name, elem.VR, _short(value)))
    return rows


def _length(elem) -> int:
    try:
        return len(elem.value) if elem.value is not None else 0
    except TypeError:
        return 0


def read_header(path: str | Path) -> tuple[str, list[TagRow]]:
    """(what the file is, its rows). Raises ValueError naming the file and the reason."""
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            return "NIfTI header", _nifti_rows(path)
        if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
            return f"{path.suffix.lstrip('.').upper()} image", _image_rows(path)
        ds = _read_dicom(path)
        rows = dicom_rows(ds.file_meta) + dicom_rows(ds) if ds.file_meta else dicom_rows(ds)
        return "DICOM header (pixel data not read)", rows
    except OSError as exc:
        from app.errors import describe_os_error

        raise ValueError(describe_os_error(exc, (str(path),))) from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - readers raise many types on bad files
        raise ValueError(f"{path}: cannot read its header ({type(exc).__name__}: {exc})") from None


def _read_dicom(path: Path):
    """The header; a file without the DICM preamble is read only if what it holds parses as
    known DICOM elements (old ACR-NEMA style files), so random bytes are not shown as tags."""
    import warnings

    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except InvalidDicomError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        known = [e for e in ds if e.keyword]
    if not known or len(known) < len(list(ds)) / 2:
        raise ValueError("not a DICOM file (no DICM preamble, no known DICOM elements)")
    return ds


def _nifti_rows(path: Path) -> list[TagRow]:
    import nibabel as nib

    header = nib.load(str(path)).header
    rows = []
    for key in header.keys():
        value = header[key]
        text = np.array2string(np.asarray(value), precision=4, max_line_width=10_000)
        if isinstance(value, np.ndarray) and value.dtype.kind == "S":
            text = bytes(value.item() if value.ndim == 0 else value.tobytes()).decode(
                "latin-1", "replace").rstrip("\x00")  # fmt: skip
        rows.append(TagRow(key, key, "", _short(text)))
    return rows


def _image_rows(path: Path) -> list[TagRow]:
    from PIL import Image

    with Image.open(path) as im:
        rows = [
            TagRow("format", "format", "", str(im.format)),
            TagRow("size", "size", "", f"{im.width} x {im.height}"),
            TagRow("mode", "mode", "", str(im.mode)),
        ]
        rows += [TagRow(str(k), str(k), "", _short(str(v))) for k, v in im.info.items()]
    rows.append(TagRow("note", "note", "", "no DICOM header: pixel spacing is not known"))
    return rows


def file_at_slice(paths: list[str], point: np.ndarray, normal: np.ndarray) -> str:
    """Of a series' files, the one whose slice lies nearest ``point`` along ``normal`` (the
    loader keeps the paths, not which slice each holds); the first when positions are absent."""
    if len(paths) <= 1:
        return paths[0] if paths else ""
    placed = _positions(tuple(paths))
    if not placed:
        return paths[0]
    dist = [abs(float((ipp - point) @ normal)) for _, ipp in placed]
    return placed[int(np.argmin(dist))][0]


@lru_cache(maxsize=4)
def _positions(paths: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    """ImagePositionPatient of each file (read once per series: a browser reopened on the same
    series does not read hundreds of headers again)."""
    import pydicom

    out = []
    for p in paths[:4000]:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, force=True,
                                 specific_tags=["ImagePositionPatient"])  # fmt: skip
            out.append((p, np.asarray([float(v) for v in ds.ImagePositionPatient])))
        except Exception:  # noqa: BLE001 - a file without a position cannot be placed
            continue
    return out
