"""Per-voxel estimates of the Gaussian peak under each voxel: the U-Net's ``peak_features``.

The voxeliser draws each atom as Z (2 pi)^-3/2 sigma^-3 exp(-r^2 / 2 sigma^2) with an element's
own sigma (core.voxel), so log(rho) near an isolated atom is exactly a quadratic in x. The three
points (x - h, x, x + h) along each axis fix that quadratic: its curvature gives sigma and its
maximum gives the peak's amplitude, at *every* voxel of the atom, wherever the atom sits between
grid points. Neighbouring elements differ by 1-2 % in sampled peak height, but by far more in
(amplitude, sigma): a threshold on those two numbers types the cations of held-out perov_5
crystals without error (300 selection crystals, session 8), where the sampled heights alone leave
the U-Net reading Bi as Pb. These channels give the network that reading; it still decides, and
learns where overlap from the neighbours (anions) makes the estimate wrong.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.elements import atomic_number
from core.models.blocks import COORD_SCALE

LOG_AMPLITUDE_RANGE = (-4.0, 6.0)  # ln(e/Å^3); real atoms lie in ~[0, 4.5] (O ~0.4, Pb ~3.2)
SIGMA_MAX = 2.0  # Å; real sigmas lie in [0.25, 0.7] (core.voxel.VoxelConfig)
MIN_DENSITY = 1e-6  # e/Å^3: log floor between atoms


def voxel_spacing(x: Tensor) -> Tensor:
    """(B, 3) grid spacing in Å from the coordinate channels 1-3 of a U-Net input (B, 4, D, D, D)
    (``core.models.blocks.make_input``: channel 1 + k steps by abc_k / (d COORD_SCALE) along axis k)."""
    steps = [x[:, 1, 1, 0, 0] - x[:, 1, 0, 0, 0], x[:, 2, 0, 1, 0] - x[:, 2, 0, 0, 0],
             x[:, 3, 0, 0, 1] - x[:, 3, 0, 0, 0]]  # fmt: skip
    return torch.stack(steps, dim=1).float() * COORD_SCALE


def peak_estimates(rho: Tensor, spacing: Tensor, axis_cosines: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """log-amplitude and sigma (Å) of the Gaussian through each voxel and its axis neighbours.

    rho: (B, D, D, D) density in e/Å^3 (periodic); spacing: (B, 3) Å. Returns two (B, D, D, D)
    tensors, clamped to LOG_AMPLITUDE_RANGE and [0, SIGMA_MAX]; where log(rho) is not concave
    (between atoms) the estimates are meaningless but bounded.

    Along each grid axis the parabola through three points gives the projection p_k of the voxel's
    offset from the peak onto that axis. On 90° grids the offset's squared length is sum p_k^2;
    on a skewed grid pass ``axis_cosines`` (B, 3, 3), the Gram matrix of the unit axis vectors M,
    and it is p^T M^-1 p (p = U delta for unit axis rows U, so |delta|^2 = p^T (U U^T)^-1 p).
    """
    log_rho = torch.log(rho.float().clamp_min(MIN_DENSITY))
    log_amp = log_rho.clone()
    inv_sigma2 = torch.zeros_like(log_rho)
    offsets = []  # p_k / h_k: the offset along axis k in steps
    for axis in range(3):
        ahead = torch.roll(log_rho, -1, dims=axis + 1)
        behind = torch.roll(log_rho, 1, dims=axis + 1)
        bend = (2 * log_rho - ahead - behind).clamp_min(1e-3)  # = h^2 / sigma^2 for a Gaussian
        if axis_cosines is None:  # the U-Net's 90° path: no offsets kept
            log_amp = log_amp + (ahead - behind) ** 2 / (8 * bend)
        else:
            offsets.append((ahead - behind) / (2 * bend))
        inv_sigma2 = inv_sigma2 + bend / spacing[:, axis].view(-1, 1, 1, 1) ** 2 / 3
    if axis_cosines is not None:
        proj = torch.stack(offsets, dim=-1) * spacing.float().view(-1, 1, 1, 1, 3)  # (B, D, D, D, 3) Å
        inverse = torch.linalg.inv(axis_cosines.float()).view(-1, 1, 1, 1, 3, 3)
        delta2 = (proj.unsqueeze(-2) @ inverse @ proj.unsqueeze(-1))[..., 0, 0]
        log_amp = log_amp + delta2 * inv_sigma2 / 2
    sigma = inv_sigma2.rsqrt().clamp(0.0, SIGMA_MAX)
    return log_amp.clamp(*LOG_AMPLITUDE_RANGE), sigma


def peak_channels(log_amp: Tensor, sigma: Tensor, k: int) -> Tensor:
    """(B, 2 + 2k, D, D, D): [log-amplitude / 4, sigma / 0.5 - 1, sin/cos(pi 2^j log-amplitude), j < k],
    in fp32, from ``peak_estimates``' (B, D, D, D) tensors."""
    freqs = math.pi * 2.0 ** torch.arange(k, device=log_amp.device, dtype=torch.float32)
    phase = log_amp.unsqueeze(1) * freqs.view(1, k, 1, 1, 1)
    return torch.cat([(log_amp / 4).unsqueeze(1), (sigma / 0.5 - 1).unsqueeze(1), torch.sin(phase),
                      torch.cos(phase)], dim=1)  # fmt: skip


TEMPLATE_SCALE = (0.01, 0.01)  # (ln e/Å^3, Å): about twice the estimates' spread in held-out crystals
TEMPLATE_CENTRE = (2.5, 0.5)  # (ln e/Å^3, Å): the middle of the templates' range
MAX_TEMPLATE_D2 = 100.0  # caps the penalty of far templates (and of garbage estimates between atoms)


def element_templates(symbols: list[str], sigma_of) -> Tensor:  # noqa: ANN001 (str -> float in Å)
    """(1 + len(symbols), 2): each class's (log-amplitude, sigma) as the voxeliser draws it.

    Row 0 (background) is NaN. sigma_of: core.voxel.VoxelConfig.sigma."""
    rows = [[math.nan, math.nan]]
    for symbol in symbols:
        sigma = float(sigma_of(symbol))
        rows.append([math.log(atomic_number(symbol) * (2 * math.pi) ** -1.5 / sigma**3), sigma])
    return torch.tensor(rows, dtype=torch.float32)


def template_log_likelihood(log_amp: Tensor, sigma: Tensor, templates: Tensor) -> Tensor:
    """(B, C, D, D, D): -1/2 the scaled squared distance of each voxel's peak estimate to each
    class's template (capped at MAX_TEMPLATE_D2); 0 for classes without one (background).

    log_amp, sigma: (B, D, D, D) from ``peak_estimates``; templates: (C, 2) from ``element_templates``.
    The squared distance is expanded, |p - t|^2 = |p|^2 - 2 p.t + |t|^2, into one (C, 4) x (4, N)
    product per grid: the direct (B, C, N) broadcast cost ~10x more. Coordinates are centred first
    (TEMPLATE_CENTRE), which keeps the expansion's fp32 rounding below 0.01 of d^2.
    """
    b = log_amp.shape[0]
    u = ((log_amp.float() - TEMPLATE_CENTRE[0]) / TEMPLATE_SCALE[0]).reshape(b, 1, -1)  # (B, 1, N)
    v = ((sigma.float() - TEMPLATE_CENTRE[1]) / TEMPLATE_SCALE[1]).reshape(b, 1, -1)
    feats = torch.cat([u * u + v * v, u, v, torch.ones_like(u)], dim=1)  # (B, 4, N)
    known = torch.isfinite(templates).all(dim=1, keepdim=True)  # (C, 1)
    tu = (templates[:, :1] - TEMPLATE_CENTRE[0]) / TEMPLATE_SCALE[0]
    tv = (templates[:, 1:] - TEMPLATE_CENTRE[1]) / TEMPLATE_SCALE[1]
    coef = torch.cat([torch.ones_like(tu), -2 * tu, -2 * tv, tu * tu + tv * tv], dim=1)  # (C, 4)
    coef = torch.where(known, coef, torch.zeros_like(coef)).float()  # background: d^2 = 0
    d2 = torch.matmul(coef, feats).clamp_(0.0, MAX_TEMPLATE_D2)  # (B, C, N)
    return d2.mul_(-0.5).view(b, -1, *log_amp.shape[1:])
