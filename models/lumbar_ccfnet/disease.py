"""Which objects of the lumbar MR phantom are diseased (``t2_signal.py`` draws the disease): each
disc degenerates with its own probability, commonest low down, and a vertebra is likelier to be
diseased next to a diseased disc, as the paper's context module assumes."""

from __future__ import annotations

import numpy as np

from models.lumbar_ccfnet.anatomy import DISCS, OBJECTS, VERTEBRAE

STATUS = ("normal", "diseased")
# Degeneration is commonest at the lowest discs.
DEFAULT_DISC_PROBS = (0.12, 0.15, 0.2, 0.3, 0.45, 0.45)
DEFAULT_VERTEBRA_PROB = 0.15
CONTEXT_BOOST = 0.35  # added to a vertebra's disease probability per diseased neighbouring disc


def choose_status(
    rng: np.random.Generator,
    disc_probs: tuple[float, ...],
    vertebra_prob: float,
    forced: dict[str, str] | None,
) -> dict[str, str]:
    """Each object's status: ``forced`` (missing objects normal) or drawn."""
    if forced is not None:
        bad = {k: v for k, v in forced.items() if k not in OBJECTS or v not in STATUS}
        if bad:
            raise ValueError(f"bad status entries {bad}; objects {OBJECTS}, values {STATUS}")
        return {n: forced.get(n, "normal") for n in OBJECTS}
    if len(disc_probs) != len(DISCS):
        raise ValueError(f"disc_probs needs {len(DISCS)} values ({', '.join(DISCS)})")
    draws = rng.random(len(OBJECTS))
    out = {d: STATUS[int(draws[5 + k] < disc_probs[k])] for k, d in enumerate(DISCS)}
    for k, v in enumerate(VERTEBRAE):
        # Vertebra Lk sits between discs k (above) and k + 1 (below) in DISCS order.
        near = (out[DISCS[k]] == "diseased") + (out[DISCS[k + 1]] == "diseased")
        out[v] = STATUS[int(draws[k] < vertebra_prob + CONTEXT_BOOST * near)]
    return {n: out[n] for n in OBJECTS}
