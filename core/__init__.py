"""ICSG3D core: headless library for voxel generative models of crystals.

No Qt, pyvista or matplotlib imports anywhere under this package (a test enforces it).
"""

import os

# spglib >= 2.1 prints every failed tolerance attempt to stderr (thousands of lines while reading
# a data set, spglib issue #338); the results are unaffected. SPGLIB_WARNING=ON brings them back.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

__version__ = "0.1.0"
