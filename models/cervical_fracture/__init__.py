"""Cervical spine fracture on CT (RSNA 2022): phantoms, networks, training, export, adapter.

Only ``adapter``, ``inference``, ``pipeline`` and ``phantom`` are needed at run time (numpy +
onnxruntime); ``networks``, ``train``, ``export``, ``flops`` import torch/MONAI.
"""
