"""The reader's report draft (impression, reader name, sign-off), kept without Qt.

A draft is saved as a small JSON sidecar per series under the user's data folder, keyed by the
study and series UIDs, so reopening the series brings it back. Writes are atomic (temporary file
in the same folder, then ``os.replace``): a crash or a full disk never leaves half a draft.
Editing a signed draft withdraws the sign-off: a signature covers the text it was given for.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.atomic import atomic_write_text

DATA_DIR_ENV = "OSTEOVIEW_DATA_DIR"  # overrides the platform's data folder (tests, portable use)
DRAFT_FORMAT = 1


class DraftError(Exception):
    """A draft file that cannot be read or written; the message names the file and the reason."""


def data_dir(default: str | Path | None = None) -> Path:
    """``$OSTEOVIEW_DATA_DIR`` if set, else ``default`` (the viewer passes Qt's AppDataLocation),
    else ``~/.local/share/OsteoView``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    if default:
        return Path(default)
    return Path.home() / ".local" / "share" / "OsteoView"


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class ReportDraft:
    study_uid: str = ""
    series_uid: str = ""
    impression: str = ""
    reader_name: str = ""
    signed_off: str = ""  # time of sign-off, "" while not signed
    signed_by: str = ""
    updated: str = ""

    @property
    def is_signed(self) -> bool:
        return bool(self.signed_off)

    @property
    def is_empty(self) -> bool:
        return not self.impression.strip() and not self.reader_name.strip()

    def edit(self, impression: str | None = None, reader_name: str | None = None) -> bool:
        """Change the text or the reader; a real change withdraws the sign-off. True if changed."""
        changed = False
        if impression is not None and impression != self.impression:
            self.impression, changed = impression, True
        if reader_name is not None and reader_name != self.reader_name:
            self.reader_name, changed = reader_name, True
        if changed:
            self.signed_off = self.signed_by = ""
            self.updated = now_stamp()
        return changed

    def can_sign(self) -> str:
        """Why the draft cannot be signed yet ("" when it can)."""
        if not self.reader_name.strip():
            return "Enter the reader's name to sign off."
        if not self.impression.strip():
            return "Write an impression to sign off."
        return ""

    def sign(self, when: str | None = None) -> None:
        reason = self.can_sign()
        if reason:
            raise ValueError(reason)
        self.signed_off = when or now_stamp()
        self.signed_by = self.reader_name.strip()

    def unsign(self) -> None:
        self.signed_off = self.signed_by = ""

    def status_text(self) -> str:
        if self.is_signed:
            return f"Signed off by {self.signed_by} at {self.signed_off}"
        return "Not signed off"

    # ---- JSON ----------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": DRAFT_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> ReportDraft:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {k: str(data.get(k) or "") for k in cls.__dataclass_fields__}
        draft = cls(**known)
        # a signature is only valid for the name it was made with
        if draft.signed_off and draft.signed_by != draft.reader_name.strip():
            draft.unsign()
        return draft


def draft_path(base: Path, study_uid: str, series_uid: str) -> Path:
    """One file per (study, series): a hash of the UIDs (any characters, any length)."""
    key = hashlib.sha256(f"{study_uid}\n{series_uid}".encode()).hexdigest()[:24]
    return Path(base) / "report-drafts" / f"{key}.json"


def save_draft(draft: ReportDraft, base: Path) -> Path:
    path = draft_path(base, draft.study_uid, draft.series_uid)
    text = json.dumps(draft.to_json(), indent=2, ensure_ascii=False)  # before touching the disk
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise DraftError(f"{path}: cannot save the report draft ({exc.strerror or exc})") from exc
    return path


def load_draft(base: Path, study_uid: str, series_uid: str) -> ReportDraft | None:
    """The saved draft of this series, or None when there is none."""
    path = draft_path(base, study_uid, series_uid)
    if not path.exists():
        return None
    try:
        draft = ReportDraft.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise DraftError(f"{path}: cannot read the report draft ({exc})") from exc
    if (draft.study_uid, draft.series_uid) != (study_uid, series_uid):
        return None  # a hash collision, vanishingly unlikely: treat as no draft
    return draft


def view_caption(
    title: str,
    slice_index: int | None,
    n_slices: int,
    window: tuple[float, float] | None,
    zoom: float | None,
    layers: list[str],
    inverted: bool = False,
) -> str:
    """The caption of a captured view: "Axial 63/124, W 1800 L 400, zoom 1.5x, layers: ..."."""
    parts = [f"{title} {slice_index + 1}/{n_slices}" if slice_index is not None and n_slices > 1
             else title]  # fmt: skip
    if window is not None:
        center, width = window
        parts.append(f"W {width:.0f} L {center:.0f}" + (" inverted" if inverted else ""))
    if zoom is not None and abs(zoom - 1.0) > 0.05:
        parts.append(f"zoom {zoom:.1f}x")
    parts.append("layers: " + (", ".join(layers) if layers else "none"))
    return ", ".join(parts)
