"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task lumbar-mri ... --pin``.
"""

DOMAIN_SHA256 = "183020e6655aef9bb4e44acf5893e489ddae90f3f66fa9ebbac0569c4888d3c7"
