"""Relax decoded crystals in a classical interatomic potential: positions only, the cell kept.

Why: a decoded density places each atom to a fraction of a voxel (0.55 Å at d = 16), so the bond
lengths and angles of a decoded or generated crystal scatter far more than a real crystal's
(carbon_24 samples: nearest neighbours 1.11-1.60 Å, 5-95 %, against 1.35-1.52 Å), and COV's
CrystalNN fingerprints read exactly those. CDVAE cleans its samples the same way in spirit (a
learned force field, Langevin steps); here a few hundred steps of a published potential do it. The
cell stays as decoded: relaxing it too (at the data's 10 GPa) was worse on held-out crystals and
eight times slower (model card, carbon_24).

The potential is Tersoff's (Phys. Rev. B 39, 5566 (1989)) for carbon, parameters as LAMMPS's
SiC.tersoff and ASE's ``ase.calculators.tersoff`` (tests check energy and forces against ASE's,
which loops in Python: ~1-3 s a crystal; this one batches many crystals in one torch graph, with
forces by autograd). Crystals holding an element the potential lacks are returned unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Structure


@dataclass(frozen=True)
class TersoffParameters:
    """One element's Tersoff parameters in LAMMPS order (m, gamma, lambda3, c, d, h, n, beta,
    lambda2, B, R, D, lambda1, A); energies eV, lengths Å."""

    m: float
    gamma: float
    lambda3: float
    c: float
    d: float
    h: float
    n: float
    beta: float
    lambda2: float
    B: float
    R: float
    D: float
    lambda1: float
    A: float


# Tersoff 1989 carbon (LAMMPS potentials/SiC.tersoff, "C C C" line)
TERSOFF_CARBON = TersoffParameters(3.0, 1.0, 0.0, 3.8049e4, 4.3484, -0.57058, 0.72751, 1.5724e-7, 2.2119,
                                   346.74, 1.95, 0.15, 3.4879, 1393.6)  # fmt: skip
POTENTIALS = {"tersoff_c": ("C", TERSOFF_CARBON)}
SKIN = 0.5  # Å beyond the cutoff kept in each neighbour list; lists are rebuilt every round


def _cutoff(r: torch.Tensor, p: TersoffParameters) -> torch.Tensor:
    """Tersoff's smooth cutoff: 1 below R - D, 0 above R + D."""
    x = ((r - p.R) / p.D).clamp(-1.0, 1.0)
    return 0.5 * (1.0 - torch.sin(0.5 * math.pi * x))


@dataclass
class _Neighbours:
    """Pairs (i, j, image) of a batch of crystals within the cutoff + SKIN, and their triplets."""

    i: torch.Tensor  # (P,) centre atom (batch-wide index)
    j: torch.Tensor  # (P,) neighbour atom
    shift: torch.Tensor  # (P, 3) Cartesian image offset of j, Å
    t_ij: torch.Tensor  # (T,) pair index of (i, j) in each triplet
    t_ik: torch.Tensor  # (T,) pair index of (i, k), same centre, another pair


def _neighbours(structures: Sequence[Structure], radius: float) -> _Neighbours:
    centres, others, shifts, offset = [], [], [], 0
    for s in structures:
        c, o, images, _ = s.get_neighbor_list(radius, exclude_self=True)
        centres.append(c + offset)
        others.append(o + offset)
        shifts.append(np.asarray(images, dtype=float).reshape(-1, 3) @ s.lattice.matrix)
        offset += len(s)
    i = np.concatenate(centres).astype(np.int64)
    j = np.concatenate(others).astype(np.int64)
    t_ij, t_ik = _triplets(i)
    return _Neighbours(torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(np.concatenate(shifts)),
                       torch.from_numpy(t_ij), torch.from_numpy(t_ik))  # fmt: skip


def _triplets(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (p, q), p != q, of pair indices that share a centre atom, vectorised:
    pair p, sorted by centre, is repeated once per pair of its centre's group."""
    order = np.argsort(centre, kind="stable")
    _, group_start, group_size = np.unique(centre[order], return_index=True, return_counts=True)
    size = np.repeat(group_size, group_size)  # (P,) the group size of each sorted pair
    start = np.repeat(group_start, group_size)
    first = np.repeat(np.arange(len(order)), size)
    within = np.arange(len(first)) - np.repeat(np.cumsum(size) - size, size)
    second = np.repeat(start, size) + within
    keep = first != second
    return order[first[keep]], order[second[keep]]


def tersoff_energies(positions: torch.Tensor, nb: _Neighbours, owner: torch.Tensor, n_crystals: int,
                     p: TersoffParameters = TERSOFF_CARBON) -> torch.Tensor:  # fmt: skip
    """Energy of each crystal (n_crystals,), eV. positions (N, 3) Cartesian Å of all crystals'
    atoms; owner (N,) the crystal of each atom; nb the pairs and triplets (``_neighbours``)."""
    vec = positions[nb.j] + nb.shift - positions[nb.i]  # (P, 3)
    r = vec.norm(dim=1).clamp_min(1e-6)
    fc = _cutoff(r, p)
    cos = (vec[nb.t_ij] * vec[nb.t_ik]).sum(1) / (r[nb.t_ij] * r[nb.t_ik])  # (T,)
    g = p.gamma * (1 + p.c**2 / p.d**2 - p.c**2 / (p.d**2 + (p.h - cos) ** 2))
    term = fc[nb.t_ik] * g
    if p.lambda3:
        term = term * torch.exp((p.lambda3 * (r[nb.t_ij] - r[nb.t_ik])) ** p.m)
    zeta = torch.zeros_like(r).index_add(0, nb.t_ij, term)  # (P,)
    # clamp: zeta ** n has an infinite slope at 0 (n < 1); an isolated pair has zero gradient there
    bond_order = (1 + (p.beta * zeta.clamp_min(1e-12)) ** p.n) ** (-0.5 / p.n)
    pair = 0.5 * fc * (p.A * torch.exp(-p.lambda1 * r) - bond_order * p.B * torch.exp(-p.lambda2 * r))
    return torch.zeros(n_crystals, dtype=positions.dtype).index_add(0, owner[nb.i], pair)


def relax_structures(structures: Sequence[Structure], potential: str = "tersoff_c", steps: int = 300,
                     fmax: float = 0.05, rebuild_every: int = 25) -> list[Structure]:  # fmt: skip
    """Each crystal with its atoms moved to a local minimum of ``potential`` (cell, species and
    order kept): FIRE (ASE's settings), each crystal its own step size and mixing, all in one
    batch; neighbour lists rebuilt every ``rebuild_every`` steps; a crystal stops moving once every
    force on it is below ``fmax`` eV/Å. Crystals with other elements come back as they were."""
    out = list(structures)
    todo, params = _covered(structures, potential)
    if not todo:
        return out
    # forces need autograd, also when the caller decodes under no_grad or inference_mode (the app)
    with torch.inference_mode(False), torch.enable_grad():
        relaxed = _relax_batch([structures[k] for k in todo], params, steps, fmax, rebuild_every)
    for k, structure in zip(todo, relaxed, strict=True):
        out[k] = structure
    return out


def _covered(structures: Sequence[Structure | None], potential: str) -> tuple[list[int], TersoffParameters]:
    """Indices of the crystals made only of ``potential``'s element, and its parameters."""
    if potential not in POTENTIALS:
        raise ValueError(f"unknown potential {potential!r}; known: {sorted(POTENTIALS)}")
    element, params = POTENTIALS[potential]
    todo = [k for k, s in enumerate(structures) if s is not None and {e.symbol for e in s.composition} == {element}]
    return todo, params


def _stacked(batch: Sequence[Structure]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Cartesian positions of all atoms (N, 3), the crystal of each (N,), atoms per crystal."""
    sizes = [len(s) for s in batch]
    owner = torch.from_numpy(np.repeat(np.arange(len(batch)), sizes))
    return torch.from_numpy(np.concatenate([s.cart_coords for s in batch])).double(), owner, sizes


def _relax_batch(batch: list[Structure], params: TersoffParameters, steps: int, fmax: float,
                 rebuild_every: int) -> list[Structure]:  # fmt: skip
    x, owner, sizes = _stacked(batch)
    fire = _Fire(x, owner, len(batch))
    for step in range(steps):
        if step % rebuild_every == 0:
            # wrapped into the cell, and the positions with them: the lists' image offsets refer to these
            batch = _moved(batch, fire.x, sizes)
            fire.x = _stacked(batch)[0]
            nb = _neighbours(batch, params.R + params.D + SKIN)
        x = fire.x.clone().requires_grad_(True)
        forces = -torch.autograd.grad(tersoff_energies(x, nb, owner, len(batch), params).sum(), x)[0]
        if not fire.step(forces, fmax):
            break
    return _moved(batch, fire.x, sizes)


def _moved(batch: Sequence[Structure], positions: torch.Tensor, sizes: list[int]) -> list[Structure]:
    """Each crystal of ``batch`` with its sites at its slice of the stacked Cartesian positions."""
    return [Structure(s.lattice, s.species, cart.detach().numpy(), coords_are_cartesian=True, to_unit_cell=True,
                      site_properties=s.site_properties or None)
            for s, cart in zip(batch, torch.split(positions, sizes), strict=True)]  # fmt: skip


class _Fire:
    """FIRE (Bitzek et al., PRL 97, 170201 (2006)) as ase.optimize.FIRE, one state per crystal."""

    DT, DT_MAX, MAX_STEP, N_MIN, F_INC, F_DEC, A_START, F_A = 0.1, 1.0, 0.2, 5, 1.1, 0.5, 0.1, 0.99

    def __init__(self, x: torch.Tensor, owner: torch.Tensor, n: int) -> None:
        self.x, self.owner, self.n = x, owner, n
        self.v = torch.zeros_like(x)
        self.dt = torch.full((n,), self.DT, dtype=x.dtype)
        self.a = torch.full((n,), self.A_START, dtype=x.dtype)
        self.n_pos = torch.zeros(n, dtype=torch.long)

    def _per_crystal(self, values: torch.Tensor) -> torch.Tensor:  # (N,) per atom -> (n,) summed
        return torch.zeros(self.n, dtype=values.dtype).index_add(0, self.owner, values)

    def step(self, f: torch.Tensor, fmax: float) -> bool:
        """One step; False when every crystal is converged (nothing moved)."""
        active = self._per_crystal((f.norm(dim=1) >= fmax).to(f.dtype)) > 0  # (n,)
        if not bool(active.any()):
            return False
        vf = self._per_crystal((self.v * f).sum(1))
        f_norm = self._per_crystal((f * f).sum(1)).sqrt().clamp_min(1e-12)
        v_norm = self._per_crystal((self.v * self.v).sum(1)).sqrt()
        up = vf > 0
        o = self.owner
        mixed = (1 - self.a[o, None]) * self.v + self.a[o, None] * f / f_norm[o, None] * v_norm[o, None]
        self.v = torch.where(up[o, None], mixed, torch.zeros_like(self.v))
        grow = up & (self.n_pos > self.N_MIN)
        self.dt = torch.where(grow, (self.dt * self.F_INC).clamp_max(self.DT_MAX), self.dt)
        self.a = torch.where(grow, self.a * self.F_A, self.a)
        self.dt = torch.where(up, self.dt, self.dt * self.F_DEC)
        self.a = torch.where(up, self.a, torch.full_like(self.a, self.A_START))
        self.n_pos = torch.where(up, self.n_pos + 1, torch.zeros_like(self.n_pos))
        self.v = self.v + self.dt[o, None] * f
        dr = self.dt[o, None] * self.v
        dr_norm = self._per_crystal((dr * dr).sum(1)).sqrt()
        scale = torch.where(dr_norm > self.MAX_STEP, self.MAX_STEP / dr_norm.clamp_min(1e-12), torch.ones_like(dr_norm))
        dr = dr * (scale * active)[o, None]  # converged crystals stay where they are
        self.v = self.v * active[o, None]
        self.x = self.x + dr
        return True


def energies_per_atom(structures: Sequence[Structure | None], potential: str = "tersoff_c") -> np.ndarray:
    """Energy per atom of each crystal in ``potential`` (eV/atom; NaN for None or other elements).

    Real carbon_24 crystals, relaxed by DFT at 10 GPa, lie at -7.36 to -5.84 eV/atom in Tersoff's
    potential (1-99 %; median -6.88); a decode far above that has bonds no real carbon has."""
    out = np.full(len(structures), np.nan)
    todo, params = _covered(structures, potential)
    if todo:
        batch = [structures[k] for k in todo]
        x, owner, sizes = _stacked(batch)
        with torch.inference_mode(False), torch.no_grad():
            energy = tersoff_energies(x, _neighbours(batch, params.R + params.D + SKIN), owner, len(batch), params)
        out[todo] = energy.numpy() / np.array(sizes)
    return out
