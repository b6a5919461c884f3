"""The sha256 of this task's shipped ``weights/domain.json`` (the input-domain model),
pinned in code like the weights so that widening the domain is a reviewed change.

Written by ``python -m app.analysis.domain_calibrate --task lumbar-mri ... --pin``.
"""

DOMAIN_SHA256 = "38327fa544f2a30be5140b74f0d735d6f697ec9bbd6d3eef79193514804490e6"
