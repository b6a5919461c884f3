"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task calcaneus-fracture ... --pin``.
"""

DOMAIN_SHA256 = "5792cb6b43e4a50df6ba9721fdd04a5d5ca842e08406b4603386eac89959ffa7"
