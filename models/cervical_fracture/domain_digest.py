"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task cervical-fracture ... --pin``.
"""

DOMAIN_SHA256 = "689f2c01b2bcfcbb054bfdfe10a5257ec58dc27f1de729afc89edb5d04d31e7c"
