"""Who and what was analysed (``StudyRef``), and its anonymised copy for outputs that leave the
site: identifiers replaced by a keyed pseudonym (see ``app.findings.pseudonym``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from app.findings.pseudonym import installation_key, pseudonym
from app.study.model import PatientInfo, Series, Study


@dataclass
class StudyRef:
    """The identifiers a report and a summary row show."""

    study_uid: str = ""
    series_uid: str = ""
    modality: str = ""
    body_part: str = ""
    series_description: str = ""
    kind: str = ""
    source: str = ""
    patient: PatientInfo = field(default_factory=PatientInfo)
    anonymised: bool = False

    @classmethod
    def from_series(cls, study: Study | None, series: Series, source: str = "") -> StudyRef:
        return cls(
            study_uid=study.study_uid if study else "",
            series_uid=series.series_uid,
            modality=series.modality,
            body_part=series.body_part,
            series_description=series.description,
            kind=series.kind,
            source=str(source),
            patient=replace(study.patient) if study else PatientInfo(),
        )

    def identifier(self) -> str:
        """What the pseudonym is computed from: the study, else the series, else the source."""
        return self.study_uid or self.series_uid or self.source

    def anonymous_id(self, key: bytes | None = None) -> str:
        """Stable pseudonym: the same study and key give the same id in every run. Without a
        key, the installation's secret (created on first use)."""
        return pseudonym(self.identifier(), key if key is not None else installation_key())

    def anonymised_copy(self, key: bytes | None = None, anonymous_id: str = "") -> StudyRef:
        """Identifiers replaced by the pseudonym (``anonymous_id`` when the caller already
        chose it, e.g. a batch naming the study's folder); an anonymised ref stays as it is."""
        if self.anonymised:
            return replace(self)
        anon = anonymous_id or self.anonymous_id(key)
        return replace(
            self,
            study_uid=anon,
            series_uid="",
            source="",
            series_description="",
            patient=PatientInfo(name="Anonymised", patient_id=anon),
            anonymised=True,
        )

    def to_json(self) -> dict:
        d = asdict(self)
        d["patient"] = asdict(self.patient)
        return d

    @classmethod
    def from_json(cls, d: dict) -> StudyRef:
        d = dict(d)
        patient = PatientInfo(**{k: str(v) for k, v in (d.pop("patient", {}) or {}).items()})
        known = {f for f in cls.__dataclass_fields__ if f != "patient"}
        return cls(patient=patient, **{k: v for k, v in d.items() if k in known})
