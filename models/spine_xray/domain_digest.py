"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task spine-xray ... --pin``.
"""

DOMAIN_SHA256 = "5b5ca410914a7ddff966e170e137830b628688c057b1d7fcdc9d7dde05c447b6"
