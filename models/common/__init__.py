"""Helpers shared by several tasks' phantom generators: radiograph rendering (``xray_render``)
and writing a phantom as a DICOM study with its truth (``study_writer``)."""
