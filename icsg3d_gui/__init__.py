"""ICSG3D Studio desktop app (PySide6 + pyvistaqt): ``icsg3d-gui``, entry point ``icsg3d_gui.app:main``.

Imports ``core``; ``core`` never imports this package.
"""
