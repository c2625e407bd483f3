"""ICSG3D core: headless library for voxel generative models of crystals.

No Qt, pyvista or matplotlib imports anywhere under this package (a test enforces it).
"""

__version__ = "0.1.0"
