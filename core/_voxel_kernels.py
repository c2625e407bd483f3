"""Compiled (numba) kernels of the orthogonal-cell voxeliser.

Kept apart from core.voxel so that the maths there stays readable; these loops do the same
computation in one pass over each site's neighbourhood, writing straight into the output arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

GAUSS_NORM = (2.0 * math.pi) ** -1.5


@njit(cache=True, fastmath=False)
def _profile(frac: float, length: float, sigma: float, d: int, n_images: int, out: np.ndarray) -> None:
    """1-D periodic Gaussian profile exp(-x^2 / 2 sigma^2) at grid points i/d (sum over images)."""
    for i in range(d):
        delta = i / d - frac
        delta -= math.floor(delta + 0.5)
        total = 0.0
        for m in range(-n_images, n_images + 1):
            x = (delta + m) * length
            total += math.exp(-x * x / (2.0 * sigma * sigma))
        out[i] = total


@njit(cache=True, parallel=True)
def voxelise_orthogonal(
    frac: np.ndarray,  # (B, N, 3) fractional coordinates in [0, 1)
    weight: np.ndarray,  # (B, N) Z (2 pi)^-3/2 sigma^-3; 0 for padding
    sigma: np.ndarray,  # (B, N) Å
    radius: np.ndarray,  # (B, N) label radius Å; 0 for padding
    cls: np.ndarray,  # (B, N) class ids
    abc: np.ndarray,  # (B, 3) Å
    density: np.ndarray,  # (B, D, D, D) float32 output, zero-initialised
    labels: np.ndarray,  # (B, D, D, D) uint8 output, zero-initialised
) -> None:
    for b in prange(weight.shape[0]):  # crystals are independent: one per thread
        _voxelise_one(frac[b], weight[b], sigma[b], radius[b], cls[b], abc[b], density[b], labels[b])


@njit(cache=True)
def _voxelise_one(frac, weight, sigma, radius, cls, abc, density, labels) -> None:
    d = density.shape[0]
    prof = np.empty((3, d))
    best = np.full((d, d, d), np.inf)
    for n in range(weight.shape[0]):
        if weight[n] == 0.0:
            continue
        s = sigma[n]
        for ax in range(3):
            n_images = int(math.ceil(4.0 * s / abc[ax])) + 1
            _profile(frac[n, ax], abc[ax], s, d, n_images, prof[ax])
        w = weight[n]
        _accumulate_outer(w, prof[0], prof[1], prof[2].astype(np.float32), density)
        _label_site(frac[n], abc, radius[n], cls[n], best, labels)


@njit(cache=True, fastmath=True)
def _accumulate_outer(w, px, py, pz32, density) -> None:
    """density[i, j, k] += w px[i] py[j] pz[k] (the separable Gaussian of one site)."""
    d = density.shape[0]
    for i in range(d):
        wx = w * px[i]
        for j in range(d):
            wxy = np.float32(wx * py[j])
            out = density[i, j]
            for k in range(d):
                out[k] += wxy * pz32[k]


@njit(cache=True)
def _label_site(frac, abc, radius, cls, best, labels) -> None:
    """Give the site's class to grid points within ``radius`` (nearest site wins), periodic."""
    d = labels.shape[0]
    r2 = radius * radius
    reach = np.empty(3, np.int64)
    centre = np.empty(3, np.int64)
    for ax in range(3):
        reach[ax] = int(math.ceil(radius * d / abc[ax])) + 1
        centre[ax] = int(round(frac[ax] * d))
    for di in range(-reach[0], reach[0] + 1):
        i = (centre[0] + di) % d
        dx = i / d - frac[0]
        dx = (dx - math.floor(dx + 0.5)) * abc[0]
        for dj in range(-reach[1], reach[1] + 1):
            j = (centre[1] + dj) % d
            dy = j / d - frac[1]
            dy = (dy - math.floor(dy + 0.5)) * abc[1]
            dxy = dx * dx + dy * dy
            if dxy >= r2:
                continue
            for dk in range(-reach[2], reach[2] + 1):
                k = (centre[2] + dk) % d
                dz = k / d - frac[2]
                dz = (dz - math.floor(dz + 0.5)) * abc[2]
                d2 = dxy + dz * dz
                if d2 < r2 and d2 < best[i, j, k]:
                    best[i, j, k] = d2
                    labels[i, j, k] = cls
