"""Helpers shared by several tasks' phantom generators: radiograph drawing, split by step
(outlines in mm ``xray_outline``, the pixel grid and masks ``xray_grid``, projected attenuation
``xray_density``, exposure and film look ``xray_render``), and writing a phantom as a DICOM study
with its truth (``study_writer``)."""
