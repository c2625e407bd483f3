"""Differentiable densities of Gaussian atoms in any cell: core.voxel's sums, in torch.

rho(x) = sum over sites n and periodic images of w_n exp(-|x - r_n|^2 / 2 sigma_n^2), with
w_n = Z_n (2 pi)^-3/2 sigma_n^-3 (core.voxel), sampled on the (d, d, d) grid at fractional i / d of
a cell whose lattice vectors are the rows of ``matrix`` (pymatgen's convention). The Gaussians are
not separable along skewed axes, so each width of Gaussian (one per element) is summed whichever
of two exact ways is cheaper:

- real space, as Voxeliser._general: each Gaussian on the box of grid indices within CUT_SIGMAS
  sigma of the site along every axis, unwrapped so each index is one periodic image, added in
  modulo d. Cost ~ (14 sigma / voxel)^3 per site: cheap for narrow Gaussians in large cells.
- reciprocal space (Poisson summation: the periodic sum of a Gaussian is a Fourier series):
  rho(f) = 1/V sum_h Z exp(-2 pi^2 sigma^2 |h B|^2) exp(2 pi i h.(f - f_n)), B the reciprocal basis,
  over the integer h within CUT_SIGMAS reciprocal sigmas (1 / (2 pi sigma)), synthesised on the
  grid by three per-axis Fourier matrices (aliasing included). Cost ~ (cell / sigma)^3 terms plus
  H d^3 for the synthesis: cheap for wide Gaussians in small cells (wurtzite ZnO, d = 32: 10x).
Both truncate where the Gaussian is below exp(-CUT_SIGMAS^2 / 2) ~ 2e-11 of its peak, so either
agrees with the voxeliser to float precision.
"""

from __future__ import annotations

import math

import torch

from core.voxel import CUT_SIGMAS, GAUSS_NORM

REAL_SPACE_COST = 4  # an exp, a product and a scatter (and their gradients) per real-space point


def render_cell(
    frac: torch.Tensor,
    weight: torch.Tensor,
    sigma: torch.Tensor,
    matrix: torch.Tensor,
    d: int,
    method: str | None = None,
) -> torch.Tensor:
    """Density (D, D, D) in e/Å^3 of Gaussian atoms in any cell, differentiable in frac and weight.

    frac (N, 3) fractional coordinates, weight (N,) Z (2 pi)^-3/2 sigma^-3 (sites with 0 are
    skipped: padding), sigma (N,) Å, matrix (3, 3) Å with the lattice vectors as rows. Sites of one
    width are summed together, in real or reciprocal space, whichever costs less (module docstring),
    or as ``method`` ("real", "reciprocal") says.
    """
    if method not in (None, "real", "reciprocal"):
        raise ValueError(f"unknown method {method!r}: 'real', 'reciprocal' or None (the cheaper)")
    matrix64 = matrix.detach().double()
    inverse = torch.linalg.inv(matrix64)  # columns: the reciprocal basis vectors (1/Å)
    chol = torch.linalg.cholesky(matrix64 @ matrix64.T).to(frac.dtype)  # G = L L^T: u.G.u = |L^T u|^2
    reach = inverse.norm(dim=0)  # fractional half-width per Å of a sphere, per axis
    lengths = matrix64.norm(dim=1)  # Å: the largest |h_a| within |k| is |k| |a_a|
    rho = frac.new_zeros(d**3)
    spectrum: list[tuple] = []
    live = weight.detach() != 0
    for s in torch.unique(sigma[live]).tolist():
        sel = torch.nonzero(live & (sigma == s)).flatten()
        half = (CUT_SIGMAS * s * reach).tolist()
        boxes = [math.ceil(2 * h * d) + 2 for h in half]  # covers floor((f - h) d) .. ceil((f + h) d)
        orders = [int(CUT_SIGMAS / (2 * math.pi * s) * length) for length in lengths.tolist()]
        terms = math.prod(2 * m + 1 for m in orders)
        real_cost = REAL_SPACE_COST * len(sel) * math.prod(boxes)
        if method == "real" or (
            method is None and real_cost <= len(sel) * terms + (2 * orders[0] + 1) * d**3
        ):
            rho = _add_boxes(rho, frac[sel], weight[sel], s, boxes, half, chol, d)
        else:
            spectrum.append((sel, s, orders))
    if spectrum:
        rho = rho + _synthesis(frac, weight, spectrum, inverse, d).flatten()
    return rho.view(d, d, d)


def _add_boxes(
    rho, frac, weight, s: float, boxes: list[int], half: list[float], chol, d: int
) -> torch.Tensor:
    """rho (D^3,) plus the Gaussians of width s of n sites, frac (n, 3), weight (n,), each on its
    (K0, K1, K2) = ``boxes`` grid indices from floor((f - half) d); half (3,) fractional, chol (3, 3)."""
    start = torch.floor((frac.detach() - frac.new_tensor(half)) * d).long()  # (n, 3)
    idx = [start[:, a, None] + torch.arange(k, device=frac.device) for a, k in enumerate(boxes)]  # (n, K_a)
    u = [i.to(frac.dtype) / d - frac[:, a, None] for a, i in enumerate(idx)]  # (n, K_a) fractional
    # components of L^T u (Å): the last needs u2 only, the middle (u1, u2), the first all three
    c2 = chol[2, 2] * u[2]  # (n, K2)
    c1 = chol[1, 1] * u[1][:, :, None] + chol[2, 1] * u[2][:, None, :]  # (n, K1, K2)
    c0 = (
        chol[0, 0] * u[0][:, :, None, None]
        + (chol[1, 0] * u[1][:, :, None] + chol[2, 0] * u[2][:, None, :])[:, None]
    )  # (n, K0, K1, K2)
    scale = -0.5 / s**2
    plane = weight[:, None, None] * torch.exp((c1**2 + c2[:, None, :] ** 2) * scale)  # (n, K1, K2)
    values = torch.exp(c0**2 * scale) * plane[:, None]  # (n, K0, K1, K2)
    i0, i1, i2 = (i % d for i in idx)
    flat = (i0[:, :, None, None] * d + i1[:, None, :, None]) * d + i2[:, None, None, :]
    return rho.index_add(0, flat.flatten(), values.flatten())


def _synthesis(frac, weight, groups: list[tuple], inverse: torch.Tensor, d: int) -> torch.Tensor:
    """Density (D, D, D) of the sites in ``groups`` [(indices (n,), sigma, orders (3,))] from their
    structure factor F(h) over |h_a| <= max order (H0, H1, H2), then 1/V Re sum_h F(h) e^(2 pi i h.i/d)."""
    orders = [max(g[2][a] for g in groups) for a in range(3)]
    h = [torch.arange(-m, m + 1, dtype=torch.float64) for m in orders]  # (H_a,)
    k = (
        h[0][:, None, None, None] * inverse[:, 0]
        + h[1][:, None, None] * inverse[:, 1]
        + h[2][:, None] * inverse[:, 2]
    )
    k2 = (k**2).sum(-1)  # (H0, H1, H2) |h B|^2 in 1/Å^2
    cdtype = torch.complex128 if frac.dtype == torch.float64 else torch.complex64
    factor = torch.zeros(k2.shape, dtype=cdtype)
    for sel, s, _ in groups:
        z = weight[sel] / (GAUSS_NORM / s**3)  # (n,) Z times the fitted amplitude
        phase = [
            torch.exp(-2j * math.pi * frac[sel, a, None] * h[a].to(frac.dtype)) for a in range(3)
        ]  # (n, H_a)
        sites = torch.einsum("n,na,nb,nc->abc", z.to(cdtype), *phase)  # (H0, H1, H2)
        factor = factor + sites * torch.exp(-2 * math.pi**2 * s**2 * k2).to(cdtype)
    grid = torch.arange(d, dtype=torch.float64) / d
    fourier = [torch.exp(2j * math.pi * hh[:, None] * grid).to(cdtype) for hh in h]  # (H_a, D)
    rho = torch.einsum("abc,ck->abk", factor, fourier[2])
    rho = torch.einsum("abk,bj->ajk", rho, fourier[1])
    rho = torch.einsum("ajk,ai->ijk", rho, fourier[0])
    return rho.real * float(abs(torch.linalg.det(inverse)))  # 1/V


def render_general(
    frac: torch.Tensor,
    weight: torch.Tensor,
    sigma: torch.Tensor,
    matrices: torch.Tensor,
    d: int,
    method: str | None = None,
) -> torch.Tensor:
    """``render_cell`` of a batch: frac (B, N, 3), weight (B, N), sigma (B, N), matrices (B, 3, 3)
    -> (B, D, D, D)."""
    cells = [render_cell(frac[b], weight[b], sigma[b], matrices[b], d, method) for b in range(len(frac))]
    return torch.stack(cells)
