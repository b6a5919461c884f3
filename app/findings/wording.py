"""How a finding's decision reads, in one place for the viewer, the report, the CLI and the SR.

A reader wants the decision in words per side, level or label ("right: no fracture",
"C3: fracture", "L4-L5: disease"), never "normal ... POSITIVE": a positive call of a normal
class means nothing is wrong. Only abnormal findings are drawn in colour; a result outside the
training domain makes no call at all (``AnalysisResult.no_call``) and reads "no call".
"""

from __future__ import annotations

from dataclasses import dataclass

from app.findings.types import AnalysisResult, Finding

NO_CALL = "no call"


@dataclass(frozen=True)
class Decision:
    text: str  # "right: no fracture", "C3: fracture", "Primary Line: absent", "C3: no call"
    abnormal: bool  # an abnormal call: the only kind drawn in colour
    no_call: bool = False  # outside the training domain: no decision, shown greyed

    @property
    def words(self) -> str:
        """The decision without its subject ("no fracture"), for a row already under it."""
        return self.text.split(": ", 1)[-1]


def subject_of(f: Finding) -> str:
    """What the decision is about: the finding's subject, else its side, else (when the class
    names an abnormality, like a vertebra's "fracture") its label, read as words."""
    if f.subject:
        return f.subject
    if f.side:
        return f.side
    return f.label.replace("_", " ") if f.term else ""


def decide(f: Finding, no_call: bool = False) -> Decision:
    """The decision on ``f`` in words; ``no_call`` when the result takes none."""
    subject = subject_of(f)
    if no_call:
        what = subject or f.label.replace("_", " ")
        return Decision(f"{what}: {NO_CALL}", False, True)
    if f.term:
        if f.normal_class:
            words = f"no {f.term}" if f.positive else "not normal"
        else:
            words = f.term if f.positive else f"no {f.term}"
    elif f.normal_class:
        words = "normal" if f.positive else "not normal"
    else:
        # a class without a named abnormality: its label is present or absent
        words = f"{f.label} {'present' if f.positive else 'absent'}"
        if not subject:
            words = f"{f.label}: {'present' if f.positive else 'absent'}"
            return Decision(words, f.abnormal)
    return Decision(f"{subject}: {words}" if subject else words, f.abnormal)


def decide_in(result: AnalysisResult, f: Finding) -> Decision:
    """``decide`` with the result's no-call state."""
    return decide(f, bool(result.no_call))
