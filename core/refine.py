"""Real-space refinement: fit atom positions to a decoded density, as crystallographers refine
a model against an electron-density map; then snap them to the crystal's symmetry.

Why: peak picking (core.segment) reads each atom off its own maximum, but where the decoded
density is blurred or two atoms' tails overlap, the maximum sits off the atom. Refinement renders
the segmented structure with the voxeliser's own Gaussians and moves every atom (and scales its
height) to minimise the squared difference to the decoded grid on the network's log scale, so
every voxel of every atom contributes and overlaps are modelled. Species, count and lattice stay
as decoded. Any cell: orthogonal ones (all decoded cells today) take the factorised
render_orthogonal; skewed ones (hexagonal, monoclinic, triclinic) core.render's general renderer,
which sums each Gaussian with the cell's metric over its periodic images as Voxeliser._general
does. Positions are fitted in fractional coordinates either way.

``symmetrize_positions`` then averages positions over the space group found at SYMPREC: a
tolerance wider than the decoder's own position error and narrower than the real off-centrings
of the training crystals, so decoder noise is snapped while real distortions stay.

The settings (STEPS, LEARNING_RATE, SYMPREC) were chosen on held-out crystals; the figures behind
them are in the model card (resources/models/README.md, "From a decoded grid to a crystal").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from pymatgen.core import Structure

from core.geometry import min_pair_distance
from core.render import render_general
from core.segment import MIN_PEAK_SEPARATION
from core.voxel import GAUSS_NORM, Voxeliser, is_orthogonal, normalise_density

log = logging.getLogger(__name__)

ADAM_BETAS = (0.9, 0.999)
SYMMETRY_CHUNK = 200_000  # operations x sites^2 per array in symmetrize_positions (memory bound)
SYMPREC = 0.3  # Å: symmetry tolerance of decoded structures (see the module docstring)
STEPS, LEARNING_RATE = 30, 0.02  # Adam, lr decaying to 0 (chosen on held-out crystals: model card)


def render_orthogonal(
    frac: torch.Tensor, weight: torch.Tensor, sigma: torch.Tensor, abc: torch.Tensor, d: int
) -> torch.Tensor:
    """Differentiable density (B, D, D, D) of Gaussian atoms in orthogonal cells (as core.voxel).

    frac (B, N, 3) fractional coordinates, weight (B, N) Z (2 pi)^-3/2 sigma^-3 (0 for padding),
    sigma (B, N) Å, abc (B, 3) Å; grid point i sits at i / d as in core.voxel. Three images per
    axis around the nearest one: for sigma <= 0.7 Å and cells >= 2.5 Å the next add < 1e-6 of a peak.
    """
    grid = torch.arange(d, dtype=frac.dtype, device=frac.device) / d
    delta = grid - frac[..., None]  # (B, N, 3, D)
    delta = delta - torch.round(delta)
    inv_two_var = 1.0 / (2 * sigma[..., None, None] ** 2)
    length = abc[:, None, :, None]
    profile = sum(torch.exp(-(((delta + image) * length) ** 2) * inv_two_var) for image in (-1.0, 0.0, 1.0))
    # separable: (B, N, D*D) outer products of x and y profiles, then one batched matmul over atoms
    xy = (weight[..., None, None] * profile[:, :, 0, :, None] * profile[:, :, 1, None, :]).flatten(2)
    return torch.bmm(xy.transpose(1, 2), profile[:, :, 2]).view(-1, d, d, d)


def refine_structures(
    structures: Sequence[Structure],
    densities: np.ndarray,
    voxeliser: Voxeliser,
    steps: int = STEPS,
    lr: float = LEARNING_RATE,
) -> list[Structure]:
    """Structures (any cells) with positions fitted to their densities (B, D, D, D) e/Å^3.

    One batched Adam fit for the orthogonal cells (factorised renderer) and one for the skewed
    ones (general renderer); the crystals' losses are independent sums, so the split changes
    nothing. Each atom also gets a free log-amplitude so a decoder's peak-height error does not
    pull positions.
    """
    if len(structures) != len(densities):
        raise ValueError(f"{len(structures)} structures but {len(densities)} densities")
    if not structures:
        return []
    densities = np.asarray(densities)
    orthogonal = np.array([is_orthogonal(s) for s in structures])
    fitted: list[np.ndarray | None] = [None] * len(structures)
    # callers (the GUI worker) may decode under torch.inference_mode: the fit needs autograd
    with torch.inference_mode(False), torch.enable_grad():
        for flat, group in ((True, np.flatnonzero(orthogonal)), (False, np.flatnonzero(~orthogonal))):
            if group.size:
                frac = _fit_positions([structures[k] for k in group], densities[group], voxeliser, steps, lr, flat)
                for row, k in enumerate(group):
                    fitted[k] = frac[row, : len(structures[k])]
    out = []
    for s, frac in zip(structures, fitted, strict=True):
        moved = Structure(s.lattice, s.species, frac, site_properties=s.site_properties)
        # two atoms can slide into one peak (one amplitude -> 0): keep the segmented positions then
        out.append(moved if min_pair_distance(moved) >= min(MIN_PEAK_SEPARATION, min_pair_distance(s)) else s)
    return out


def _renderer(structures: Sequence[Structure], sigma: torch.Tensor, abc: np.ndarray, d: int,
              orthogonal: bool) -> Callable:  # fmt: skip
    """render(frac (B, N, 3), weight (B, N)) -> (B, D, D, D) for these cells: the factorised path
    when they are all orthogonal, the general one (with each cell's metric) otherwise."""
    if orthogonal:
        lengths = torch.from_numpy(abc).float()
        return lambda frac, weight: render_orthogonal(frac, weight, sigma, lengths, d)
    matrices = torch.from_numpy(np.stack([s.lattice.matrix for s in structures])).float()
    return lambda frac, weight: render_general(frac, weight, sigma, matrices, d)


def _fit_positions(structures, densities: np.ndarray, voxeliser: Voxeliser, steps: int, lr: float,
                   orthogonal: bool) -> np.ndarray:  # fmt: skip
    """Fitted fractional coordinates (B, N, 3) in [0, 1) (padded like Voxeliser.site_arrays) of
    cells that are all orthogonal or all skewed (``orthogonal``)."""
    d = densities.shape[-1]
    frac0, z, sigma_np, _, abc_np = voxeliser.site_arrays(list(structures))
    weight = torch.from_numpy(z * GAUSS_NORM / sigma_np**3).float()
    sigma = torch.from_numpy(sigma_np).float()
    render = _renderer(structures, sigma, abc_np, d, orthogonal)
    target = normalise_density(torch.from_numpy(np.asarray(densities, dtype=np.float32)))
    frac = torch.from_numpy(frac0).float().requires_grad_(True)
    log_amp = torch.zeros_like(weight, requires_grad=True)
    params = (frac, log_amp)
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    # Adam by hand: torch.optim's first use imports torch._dynamo (2 s), too slow for the app
    for step in range(1, steps + 1):
        rendered = render(frac, weight * torch.exp(log_amp))
        loss = ((normalise_density(rendered) - target) ** 2).sum()
        grads = torch.autograd.grad(loss, params)
        step_size = lr * (1.0 - (step - 1) / steps)  # decaying to 0: settle, do not jitter
        with torch.no_grad():
            for p, g, (m, v) in zip(params, grads, moments, strict=True):
                m.mul_(ADAM_BETAS[0]).add_(g, alpha=1 - ADAM_BETAS[0])
                v.mul_(ADAM_BETAS[1]).addcmul_(g, g, value=1 - ADAM_BETAS[1])
                m_hat = m / (1 - ADAM_BETAS[0] ** step)
                v_hat = v / (1 - ADAM_BETAS[1] ** step)
                p.sub_(step_size * m_hat / (v_hat.sqrt() + 1e-8))
    return frac.detach().double().numpy() % 1.0


def symmetrize_positions(structure: Structure, symprec: float) -> Structure:
    """The structure with positions averaged over the space group found at ``symprec`` Å, in its
    own cell (same lattice, sites and order): x_j = mean over operations g of g(x_{g^-1 j}).

    That average is the projection onto positions the group leaves invariant, so a decoded
    perovskite whose atoms sit 0.1 Å off 1/2 comes back on 1/2, while displacements larger than
    about ``symprec`` / 2 off a mirror (a real off-centring) lower the group found and survive. Unlike spglib's
    standardisation it never changes the cell, which must stay the decoded density's.
    """
    import moyopy  # spglib's successor by its authors: the same operations, ~4x faster here

    frac = np.mod(structure.frac_coords, 1.0)
    try:
        cell = moyopy.Cell(structure.lattice.matrix.tolist(), frac.tolist(), list(structure.atomic_numbers))
        operations = moyopy.MoyoDataset(cell, symprec=symprec).operations  # in the input cell's basis
    except Exception as exc:  # moyopy raises when no consistent group exists at this tolerance
        log.debug("no symmetry for %s at %.2f Å: %s", structure.formula, symprec, exc)
        return structure
    rotations, translations = np.asarray(operations.rotations), np.asarray(operations.translations)
    if len(rotations) < 2:
        return structure
    numbers = np.asarray(structure.atomic_numbers)
    total = np.zeros_like(frac)
    chunk = max(1, SYMMETRY_CHUNK // len(frac) ** 2)  # operations per step: bounded (G, N, N) arrays
    for first in range(0, len(rotations), chunk):
        estimates = _images_of_sites(
            frac, numbers, structure.lattice.matrix, rotations[first : first + chunk],
            translations[first : first + chunk], symprec,
        )  # fmt: skip
        if estimates is None:
            return structure  # not a permutation at this tolerance: leave the structure as it is
        total += estimates
    averaged = np.mod(total / len(rotations), 1.0)
    return Structure(structure.lattice, structure.species, averaged, site_properties=structure.site_properties)


def _images_of_sites(frac, numbers, matrix, rotations, translations, symprec: float) -> np.ndarray | None:
    """Sum over the operations g of g(x_i) placed at g's image site j of i (N, 3) fractional,
    unwrapped next to x_j; None when some g does not map the sites onto each other."""
    n = len(frac)
    images = np.einsum("gij,nj->gni", rotations, frac) + translations[:, None, :]  # (G, N, 3)
    delta = images[:, :, None, :] - frac[None, None, :, :]  # (G, N, N, 3): image of site i - site j
    delta -= np.round(delta)
    dist = np.linalg.norm(delta @ matrix, axis=-1)  # (G, N, N) Å
    dist[:, numbers[:, None] != numbers[None, :]] = np.inf
    target = dist.argmin(axis=2)  # (G, N): the site each operation sends each site to
    ops, sites = np.meshgrid(np.arange(len(target)), np.arange(n), indexing="ij")
    if dist[ops, sites, target].max() > 2 * symprec or (np.sort(target, axis=1) != np.arange(n)).any():
        return None
    total = np.zeros_like(frac)
    np.add.at(total, target.ravel(), (frac[target] + delta[ops, sites, target]).reshape(-1, 3))
    return total
