"""The reading room's PACS link: DICOMweb (QIDO-RS search, WADO-RS retrieve into a bounded local
cache, STOW-RS store) through ``dicomweb-client``, and credentials that never touch the disk in
plain text.

Layer: like ``app.analysis`` (may import ``app.study`` and ``app.findings``); the CLI and the
viewer call it, never the other way round.
"""

from app.pacs.errors import PacsCancelled, PacsError

__all__ = ["PacsCancelled", "PacsError"]
