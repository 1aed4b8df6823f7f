"""Rendering: text tables, pictures and JSON files, from plain data (no TensorFlow)."""
