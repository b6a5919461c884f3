"""The six labels of the paper (Table 1), in the network's output order, and their colours:
one place for the phantom's truth, training, export and the adapter (which never imports the
phantom)."""

from __future__ import annotations

LABELS: tuple[str, ...] = (
    "Calcaneal Tuberosity",
    "Primary Line",
    "Collapse Fracture Block",
    "Calcaneal Body",
    "Posterior Articular Surface",
    "Tongue Fracture Block",
)
LABEL_COLORS: dict[str, tuple[int, int, int]] = {
    "Calcaneal Tuberosity": (230, 25, 75),
    "Primary Line": (255, 225, 25),
    "Collapse Fracture Block": (245, 130, 48),
    "Calcaneal Body": (60, 180, 75),
    "Posterior Articular Surface": (0, 130, 200),
    "Tongue Fracture Block": (145, 30, 180),
}
