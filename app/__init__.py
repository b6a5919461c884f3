"""OsteoView: a viewer for bone and spine radiology with AI predictions.

Layers (see ARCHITECTURE.md): ``app.study`` (loading, geometry), ``app.findings``
(what a model returns), ``app.engine`` (running adapters with ONNX Runtime),
``app.report`` (PDF), ``app.ui`` (the only Qt/VTK code) and ``app.cli``.
"""

__version__ = "0.1.0"
