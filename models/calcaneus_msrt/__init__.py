"""Calcaneus fracture subtypes (MSRT paper): phantoms, networks, training, adapter."""
