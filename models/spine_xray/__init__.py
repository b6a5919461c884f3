"""Spine AP/lateral radiograph segmentation and normal/damaged classification."""
