"""Calcaneus fracture multi-label classification (MSRT paper): phantoms, and later the model."""
