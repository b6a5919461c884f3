"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task spine-xray ... --pin``.
"""

DOMAIN_SHA256 = "508687d0a45b31c61e689003dc8dfd341b46042934612cd528dd0c43cfe0c382"
