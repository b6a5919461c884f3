"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task cervical-fracture ... --pin``.
"""

DOMAIN_SHA256 = "1b90f6e1a2ecde7ce3064f0aa0ab29ccbdc345aee3b3d5670c9a975089adae7f"
