"""Proximal femur AO fracture classification with weakly-supervised localisation (issue 5).

Paper: Jimenez-Sanchez, Kazi et al., shared/papers/femur_weakly_supervised.txt. The adapter
(``adapter.py``) needs numpy + onnxruntime only; ``networks.py``, ``train.py`` and
``export.py`` need torch + MONAI. See MODEL_CARD.md.
"""
