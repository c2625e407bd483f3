"""Compiled (numba) kernels of the orthogonal-cell voxeliser.

Kept apart from core.voxel so that the maths there stays readable; these loops do the same
computation in one pass over each site's neighbourhood, writing straight into the output arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

CUT_SIGMAS = 7.0  # exp(-7^2 / 2) = 2e-11 of the peak: far below float32 resolution


@njit(cache=True, fastmath=True)
def _profile(frac: float, length: float, sigma: float, d: int, out: np.ndarray) -> None:
    """1-D periodic Gaussian exp(-x^2 / 2 sigma^2) at grid points i/d, summed over images.

    Walks the unwrapped grid indices within CUT_SIGMAS sigma of the site and folds them onto the
    torus (index mod d), which adds the periodic images. On a regular grid the Gaussian obeys
    g(x + h) = g(x) r(x), r(x + h) = r(x) q with q = exp(-h^2 / sigma^2): 3 exps per profile
    instead of one per point and image (the exps were half of the kernel's time).
    """
    out[:] = 0.0
    h = length / d
    centre = frac * d
    half = int(math.ceil(CUT_SIGMAS * sigma / h))
    start = int(math.floor(centre)) - half
    x = (start - centre) * h
    inv = 1.0 / (2.0 * sigma * sigma)
    g = math.exp(-x * x * inv)
    r = math.exp(-(2.0 * x * h + h * h) * inv)
    q = math.exp(-2.0 * h * h * inv)
    for t in range(2 * half + 2):
        out[(start + t) % d] += g
        g *= r
        r *= q


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
    d = density.shape[1]
    for b in prange(weight.shape[0]):  # crystals are independent: one per thread
        owner = np.empty((d, d, d), np.int16)  # site that labelled each point (-1: none yet)
        owner_d2 = np.empty((d, d, d), np.float32)  # its squared distance (read only where owner >= 0)
        _voxelise_one(frac[b], weight[b], sigma[b], radius[b], cls[b], abc[b], density[b], labels[b], owner, owner_d2)


@njit(cache=True)
def _voxelise_one(frac, weight, sigma, radius, cls, abc, density, labels, owner, owner_d2) -> None:
    d = density.shape[0]
    prof = np.empty((3, d))
    pz32 = np.empty(d, np.float32)
    index = np.empty((3, d + 1), np.int64)
    sq = np.empty((3, d + 1))
    owner[:] = -1
    for n in range(weight.shape[0]):
        if weight[n] == 0.0:
            continue
        for ax in range(3):
            _profile(frac[n, ax], abc[ax], sigma[n], d, prof[ax])
        pz32[:] = prof[2]
        _accumulate_outer(weight[n], prof[0], prof[1], pz32, density)
        _label_site(frac[n], abc, radius[n], cls[n], n, index, sq, owner, owner_d2, labels)


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
def _label_site(frac, abc, radius, cls, site, index, sq, owner, owner_d2, labels) -> None:
    """Give the site's class to grid points within ``radius`` (nearest site wins), periodic.

    Per-axis tables of (grid index, squared minimum-image distance) over the site's window keep
    modulo and floor out of the triple loop.
    """
    d = labels.shape[0]
    r2 = radius * radius
    reach = np.empty(3, np.int64)
    for ax in range(3):
        reach[ax] = min(int(math.ceil(radius * d / abc[ax])) + 1, d // 2)  # a window <= the cell
        centre = int(round(frac[ax] * d))
        for t in range(2 * reach[ax] + 1):
            i = (centre + t - reach[ax]) % d
            x = i / d - frac[ax]
            x = (x - math.floor(x + 0.5)) * abc[ax]
            index[ax, t] = i
            sq[ax, t] = x * x
    for a in range(2 * reach[0] + 1):
        if sq[0, a] >= r2:
            continue
        i = index[0, a]
        for b in range(2 * reach[1] + 1):
            dxy = sq[0, a] + sq[1, b]
            if dxy >= r2:
                continue
            j = index[1, b]
            for c in range(2 * reach[2] + 1):
                d2 = dxy + sq[2, c]
                k = index[2, c]
                if d2 < r2 and (owner[i, j, k] < 0 or d2 < owner_d2[i, j, k]):
                    owner[i, j, k] = site
                    owner_d2[i, j, k] = d2
                    labels[i, j, k] = cls
