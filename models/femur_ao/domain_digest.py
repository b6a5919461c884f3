"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task femur-ao ... --pin``.
"""

DOMAIN_SHA256 = "12fce5b2e5ea5c52d6e9016e35e18003ac413ee787f2940cab1ae4d566609d6a"
