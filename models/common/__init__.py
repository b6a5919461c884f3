"""Helpers shared by several tasks' phantom generators (radiograph rendering)."""
