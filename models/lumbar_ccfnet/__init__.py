"""Lumbar MR landmark localisation and disease classification (CCF-Net paper)."""
