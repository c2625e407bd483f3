"""The density volume of a non-orthogonal (sheared) cell: VTK's volume mappers need an
axis-aligned ``ImageData``, so the periodic grid is resampled onto a Cartesian box.

The box covers the region the orthogonal path draws (``scene.density_mesh``): the (super)cell
``[0, repeat]`` along each lattice vector plus ``margin`` periodic grid points beyond every face,
i.e. fractional ``[-margin/D, repeat + margin/D]``. Each Cartesian point x takes the density at
its fractional coordinates ``f = x @ inv(L)`` by periodic trilinear interpolation (grid point i
sits at f = i/D); box points outside that parallelepiped get 0, which the opacity curve draws
transparent, so the volume has the cell's shape (VESTA draws a hexagonal cell's density so).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pyvista as pv

from core.volumetric import periodic_trilinear

log = logging.getLogger(__name__)

#: the resampled box holds at most this many points (a large supercell gets a coarser spacing)
MAX_POINTS = 2**21
#: fractional tolerance of the region test: points on the region's faces are inside
REGION_TOL = 1e-6

_CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)


def drawn_region(shape: Sequence[int], repeat: Sequence[int] = (1, 1, 1), margin: int = 0,
                 ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Fractional (lo, hi) (3,) of the region ``scene.density_mesh`` draws for a grid of ``shape``."""
    d = np.asarray(shape, dtype=float)
    return -margin / d, np.asarray(repeat, dtype=float) + margin / d


def finest_spacing(lattice: np.ndarray, shape: Sequence[int]) -> float:
    """The smallest distance between neighbouring grid points along a lattice vector (Å)."""
    lengths = np.linalg.norm(np.asarray(lattice, dtype=float), axis=1)
    return float(np.min(lengths / np.asarray(shape, dtype=float)))


def _box_axes(lattice: np.ndarray, lo: np.ndarray, hi: np.ndarray, spacing: float,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(origin, step, dims) of the axis-aligned box around the parallelepiped [lo, hi] of ``lattice``."""
    cart = (lo + _CORNERS * (hi - lo)) @ lattice
    low, high = cart.min(axis=0), cart.max(axis=0)
    extent = high - low
    dims = np.maximum(np.ceil(extent / spacing).astype(int) + 1, 2)
    if dims.prod() > MAX_POINTS:
        coarser = spacing * (dims.prod() / MAX_POINTS) ** (1 / 3)
        log.debug("sheared volume: spacing %.3f -> %.3f Å (at most %d points)", spacing, coarser, MAX_POINTS)
        dims = np.maximum(np.ceil(extent / coarser).astype(int) + 1, 2)
    return low, extent / (dims - 1), dims


def resample_sheared(
    density: np.ndarray, lattice: np.ndarray, repeat: Sequence[int] = (1, 1, 1), name: str = "rho",
    margin: int = 0, spacing: float | None = None,
) -> pv.ImageData:
    """An axis-aligned ``ImageData`` holding ``density`` (D1, D2, D3) of the cell ``lattice`` (3, 3
    rows a, b, c in Å) over the region ``scene.density_mesh`` draws (``repeat``, ``margin``).

    ``spacing`` (Å) defaults to the grid's finest spacing; the box's own spacing per axis is
    adjusted so that it ends exactly on the region's bounding box. Points outside the region are 0.
    """
    rho = np.asarray(density, dtype=np.float32)
    lat = np.asarray(lattice, dtype=float)
    lo, hi = drawn_region(rho.shape, repeat, margin)
    origin, step, dims = _box_axes(lat, lo, hi, spacing or finest_spacing(lat, rho.shape))
    x, y, z = (origin[k] + step[k] * np.arange(dims[k]) for k in range(3))
    inv = np.linalg.inv(lat)
    # f = (x, y, z) @ inv(L) on a (nz, ny, nx, 3) block: VTK orders points with x fastest
    frac = (z[:, None, None, None] * inv[2] + y[None, :, None, None] * inv[1]
            + x[None, None, :, None] * inv[0]).reshape(-1, 3)  # fmt: skip
    inside = np.all((frac >= lo - REGION_TOL) & (frac <= hi + REGION_TOL), axis=1)
    values = np.zeros(len(frac), dtype=np.float32)
    values[inside] = periodic_trilinear(rho.astype(np.float64), frac[inside])
    grid = pv.ImageData(dimensions=tuple(int(n) for n in dims), spacing=tuple(step), origin=tuple(origin))
    grid.point_data[name] = values
    return grid


def volume_grid(grid: pv.DataSet, density: np.ndarray, lattice: np.ndarray, repeat: Sequence[int] = (1, 1, 1),
                margin: int = 0) -> pv.ImageData:  # fmt: skip
    """The grid the volume mapper draws for ``grid`` (``scene.density_mesh`` of ``density``):
    itself on an axis-aligned cell, else the density resampled over the same region."""
    if isinstance(grid, pv.ImageData):
        return grid
    return resample_sheared(density, lattice, repeat, name="rho", margin=margin)
