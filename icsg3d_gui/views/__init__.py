"""Thin Qt/pyvista views that subscribe to ``AppState``."""
