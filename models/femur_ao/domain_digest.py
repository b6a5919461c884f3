"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task femur-ao ... --pin``.
"""

DOMAIN_SHA256 = "8855491e381e027ee67d5c653e55d690c6c838e499ac63dfebfa71a2c3567023"
