"""Crystal <-> grid: periodic electron-density and species-label grids over one conventional cell.

Conventions (fixed; the networks and the app rely on them):
- The grid has ``d`` points per cell axis at fractional positions ``i / d`` (i = 0..d-1), like a
  VASP CHGCAR. It is periodic: point ``d`` is point ``0``. A site at fractional 0 sits on a point.
- Density rho(x) = sum over sites s and periodic images of Z_s (2 pi)^-3/2 sigma_s^-3
  exp(-|x - r_s|^2 / 2 sigma_s^2), in electrons per Å^3, so that sum(rho) * V / d^3 ~= sum Z.
  sigma_s = clip(sigma_frac * mean ionic radius, sigma_min, sigma_max) Å (see core.elements).
- Labels: a grid point within ``label_frac * sigma_s`` of site s gets the class of s (nearest site
  wins, distances are periodic minimum-image); every other point is background (0).
For cells with 90° angles the 3-D Gaussian factorises into three 1-D periodic profiles per atom
(exact, and fast: thousands of perov_5 crystals per second); other cells take a general path that
sums explicit periodic images with the metric of the cell.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from pymatgen.core import Element, Structure

from core.elements import Vocabulary, ionic_radius
from core.structures import Entry, Failure

if TYPE_CHECKING:  # torch and numba are imported where they are used: the app's first frame needs neither
    import torch

GAUSS_NORM = (2.0 * math.pi) ** -1.5
DENSITY_SCALE = 1.0  # e/Å^3: network input is log1p(rho / DENSITY_SCALE)


CELL_CHOICES = ("conventional", "primitive")


@dataclass(frozen=True)
class VoxelConfig:
    """How crystals become grids (saved inside every checkpoint)."""

    d: int = 32
    sigma_frac: float = 0.5
    sigma_min: float = 0.25  # Å: keeps light ions (C4+, N5+) resolvable on the grid
    sigma_max: float = 0.7  # Å: keeps large anions from merging with their neighbours
    label_frac: float = 1.0
    max_voxel: float = 0.45  # Å: a cell whose grid spacing exceeds this is too large for d
    max_sites: int = 80
    # which cell a set of any lattice grids: "conventional" where it fits, else the Niggli-reduced
    # primitive one; "primitive": the Niggli-reduced primitive cell whenever it holds fewer atoms
    # (centred and rhombohedral crystals: a quarter to a half of the atoms, and a finer spacing)
    cell: str = "conventional"

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self) -> None:
        if self.cell not in CELL_CHOICES:
            raise ValueError(f"VoxelConfig cell must be one of {', '.join(CELL_CHOICES)}, got {self.cell!r}")

    @classmethod
    def from_dict(cls, data: dict) -> VoxelConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def sigma(self, symbol: str) -> float:
        """Gaussian width (Å) of an element."""
        return float(np.clip(self.sigma_frac * ionic_radius(symbol), self.sigma_min, self.sigma_max))


@dataclass
class VoxelSample:
    """One voxelised crystal: density (D,D,D) e/Å^3, labels (D,D,D) uint8 class ids, abc (3,) Å."""

    density: np.ndarray
    labels: np.ndarray
    abc: np.ndarray


def _is_tensor(x: object) -> bool:
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported
    return torch is not None and isinstance(x, torch.Tensor)


def normalise_density(rho: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Network input scale: log1p(rho / DENSITY_SCALE) (compresses Z/sigma^3 peaks of 1-40 e/Å^3)."""
    if _is_tensor(rho):
        import torch

        return torch.log1p(rho.clamp_min(0) / DENSITY_SCALE)
    return np.log1p(np.clip(rho, 0, None) / DENSITY_SCALE)


def denormalise_density(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Inverse of ``normalise_density``."""
    if _is_tensor(x):
        import torch

        return torch.expm1(x.clamp_min(0)) * DENSITY_SCALE
    return np.expm1(np.clip(x, 0, None)) * DENSITY_SCALE


def check_representable(structure: Structure, cfg: VoxelConfig) -> str | None:
    """Why a (conventional) crystal cannot be gridded with ``cfg``, or None if it can."""
    lengths = np.array(structure.lattice.abc)
    spacing = lengths.max() / cfg.d
    if spacing > cfg.max_voxel:
        return (
            f"cell too large for the grid: {lengths.max():.2f} Å / {cfg.d} points = {spacing:.2f} Å "
            f"spacing > {cfg.max_voxel} Å"
        )
    if len(structure) > cfg.max_sites:
        return f"{len(structure)} sites: more than the grid resolves ({cfg.max_sites})"
    if len(structure) > 1:
        dist = structure.distance_matrix[np.triu_indices(len(structure), 1)]
        if dist.size and dist.min() < 2.0 * spacing:
            return f"atoms {dist.min():.2f} Å apart: closer than the grid resolves (2 x {spacing:.2f} Å)"
    return None


def gridded_cell(structure: Structure, cfg: VoxelConfig) -> tuple[Structure, str | None]:
    """The cell a crystal is gridded on, and why it cannot be (None when it can).

    ``cfg.cell`` "conventional": the conventional standard cell where it fits the grid: its axes
    follow the symmetry (90° where the lattice allows), so related crystals' densities line up
    axis by axis. Where it does not fit (a centred or rhombohedral cell is 2-4x the primitive one),
    the Niggli-reduced primitive cell: the smallest cell with the shortest, most orthogonal axes,
    hence the finest spacing. ``cfg.cell`` "primitive": that reduced cell whenever it holds fewer
    atoms than the conventional one (a 16^3 grid then spends its points on 2-4x fewer atoms; on
    mp_20 the match rate fell from 0.9 at <= 4 atoms to 0.27 at 13-16), else the conventional cell.
    """
    reason = check_representable(structure, cfg)
    if reason is None and cfg.cell == "conventional":
        return structure, None
    reduced = structure.get_primitive_structure().get_reduced_structure("niggli")
    if reason is None and len(reduced) == len(structure):
        return structure, None
    if len(reduced) < len(structure) or max(reduced.lattice.abc) < max(structure.lattice.abc) - 1e-6:
        if check_representable(reduced, cfg) is None:
            return reduced, None
    return structure, reason


def representable(entries: list[Entry], cfg: VoxelConfig) -> tuple[list[Entry], list[Failure]]:
    """(the entries ``cfg``'s grid resolves, each on its ``gridded_cell``; a Failure with the reason
    for each other one)."""
    usable, failures = [], []
    for entry in entries:
        cell, reason = gridded_cell(entry.structure, cfg)
        if reason:
            failures.append(Failure(entry.id, entry.source, reason))
        elif cell is entry.structure:
            usable.append(entry)
        else:
            note = "; ".join(filter(None, [entry.note, "gridded on the Niggli-reduced primitive cell"]))
            usable.append(replace(entry, structure=cell, note=note))
    return usable, failures


def lattice_parameters(structures: Sequence[Structure], n: int = 3) -> np.ndarray:
    """(N, n) float32 lattice parameters of the cells: a, b, c in Å (n = 3), then alpha, beta,
    gamma in degrees (n = 6): what a VAE's lattice head reads and predicts (``lattice_params``)."""
    if n not in (3, 6):
        raise ValueError(f"lattice parameters: n must be 3 or 6, got {n}")
    rows = [tuple(s.lattice.abc) + (tuple(s.lattice.angles) if n == 6 else ()) for s in structures]
    return np.asarray(rows, dtype=np.float32).reshape(-1, n)


def with_angles(lengths: np.ndarray, structures: Sequence[Structure], n: int) -> np.ndarray:
    """Lengths (B, 3) (possibly permuted by augmentation) extended to the n lattice parameters:
    the structures' angles appended when n = 6."""
    lengths = np.asarray(lengths, dtype=np.float32).reshape(-1, 3)
    if n == 3:
        return lengths
    return np.concatenate([lengths, lattice_parameters(structures, 6)[:, 3:]], axis=1)


def cell_angles(params: Sequence[float]) -> tuple[float, float, float]:
    """alpha, beta, gamma (degrees) of lattice parameters (P,): 90° each when P = 3."""
    return tuple(float(x) for x in params[3:6]) if len(params) >= 6 else (90.0, 90.0, 90.0)


def cell_matrix(params: Sequence[float]) -> np.ndarray:
    """(3, 3) lattice rows in Å (pymatgen's setting) of lattice parameters (P,) (a, b, c[, angles])."""
    from pymatgen.core import Lattice

    return Lattice.from_parameters(*[float(x) for x in params[:3]], *cell_angles(params)).matrix


def is_orthogonal(structure: Structure, tol: float = 1e-3) -> bool:
    """True for cells with three 90° angles (the factorised fast path and cubic augmentation)."""
    return all(abs(angle - 90.0) < tol for angle in structure.lattice.angles)


class Voxeliser:
    """Turns Structures into (density, labels, abc) grids for a fixed config and vocabulary."""

    def __init__(self, cfg: VoxelConfig | None = None, vocab: Vocabulary | None = None) -> None:
        self.cfg = cfg or VoxelConfig()
        self.vocab = vocab or Vocabulary.default()
        self._sigma_cache: dict[int, float] = {}
        self._class_cache: dict[int, int] = {}

    def __call__(self, structure: Structure) -> VoxelSample:
        density, labels, abc = self.batch([structure])
        return VoxelSample(density[0], labels[0], abc[0])

    def site_arrays(self, structures: list[Structure]) -> tuple[np.ndarray, ...]:
        """Padded per-site arrays: frac (B,N,3), Z (B,N), sigma (B,N), class (B,N), abc (B,3)."""
        n_max = max(len(s) for s in structures)
        shape = (len(structures), n_max)
        frac, z = np.zeros(shape + (3,)), np.zeros(shape)
        sigma, cls = np.ones(shape), np.zeros(shape, dtype=np.int64)
        for b, s in enumerate(structures):
            n = len(s)
            frac[b, :n] = s.frac_coords % 1.0
            numbers = s.atomic_numbers
            z[b, :n] = numbers
            sigma[b, :n] = [self._sigma_of_z(x) for x in numbers]
            cls[b, :n] = [self._class_of_z(x) for x in numbers]
        abc = np.array([s.lattice.abc for s in structures], dtype=np.float64)
        return frac, z, sigma, cls, abc

    def _sigma_of_z(self, number: int) -> float:
        if number not in self._sigma_cache:
            self._sigma_cache[number] = self.cfg.sigma(Element.from_Z(number).symbol)
        return self._sigma_cache[number]

    def _class_of_z(self, number: int) -> int:
        if number not in self._class_cache:
            self._class_cache[number] = self.vocab.index(Element.from_Z(number).symbol)
        return self._class_cache[number]

    def batch(self, structures: list[Structure]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grids of many crystals: density (B,D,D,D) f32, labels (B,D,D,D) uint8, abc (B,3) f32."""
        d = self.cfg.d
        if not structures:
            return (
                np.zeros((0, d, d, d), np.float32),
                np.zeros((0, d, d, d), np.uint8),
                np.zeros((0, 3), np.float32),
            )
        abc = np.array([s.lattice.abc for s in structures], dtype=np.float32)
        orthogonal = np.array([is_orthogonal(s) for s in structures])
        if orthogonal.all():  # the common case (cubic, tetragonal, orthorhombic): no copies
            density, labels = self._orthogonal(structures)
            return density, labels, abc
        density = np.zeros((len(structures), d, d, d), np.float32)
        labels = np.zeros((len(structures), d, d, d), np.uint8)
        ortho = np.flatnonzero(orthogonal)
        if ortho.size:
            density[ortho], labels[ortho] = self._orthogonal([structures[i] for i in ortho])
        for i in np.flatnonzero(~orthogonal):
            density[i], labels[i] = self._general(structures[i])
        return density, labels, abc

    def _orthogonal(self, structures: list[Structure]) -> tuple[np.ndarray, np.ndarray]:
        """Factorised Gaussians rho = sum_n w_n px_n (x) py_n (x) pz_n: exact for 90° cells."""
        frac, z, sigma, cls, abc = self.site_arrays(structures)
        d = self.cfg.d
        density = np.zeros((len(structures), d, d, d), np.float32)
        labels = np.zeros((len(structures), d, d, d), np.uint8)
        weight = z * GAUSS_NORM / sigma**3  # padded sites have Z = 0, hence weight 0
        radius = np.where(z > 0, self.cfg.label_frac * sigma, 0.0)
        if len(structures) == 1:  # one crystal (the app): numpy, no numba start-up (~0.5 s)
            _orthogonal_numpy(frac[0], weight[0], sigma[0], radius[0], cls[0], abc[0], density[0], labels[0])
            return density, labels
        from core._voxel_kernels import voxelise_orthogonal

        voxelise_orthogonal(frac, weight, sigma, radius, cls, abc, density, labels)
        return density, labels

    def _general(self, structure: Structure) -> tuple[np.ndarray, np.ndarray]:
        """Any cell, exact with the cell metric: each site's Gaussian summed over the grid points
        (of every periodic image) within CUT_SIGMAS sigma of it: a box of grid indices around
        the site, unwrapped so each index is one image, accumulated modulo d."""
        frac, z, sigma, cls, _ = (a[0] for a in self.site_arrays([structure]))
        d = self.cfg.d
        matrix = structure.lattice.matrix
        # half-width of a sphere of radius r in fractional units along axis i: r |row i of inv(M)^T|
        reach_per_angstrom = np.linalg.norm(np.linalg.inv(matrix), axis=0)
        rho = np.zeros((d, d, d))
        best = np.full((d, d, d), np.inf)
        labels = np.zeros((d, d, d), np.uint8)
        for f, zz, s, c in zip(frac, z, sigma, cls, strict=True):
            if zz <= 0:
                continue
            half = CUT_SIGMAS * s * reach_per_angstrom  # (3,) fractional
            idx = [np.arange(math.floor((f[a] - half[a]) * d), math.ceil((f[a] + half[a]) * d) + 1) for a in range(3)]
            disp = [(i / d - f[a])[:, None] * matrix[a] for a, i in enumerate(idx)]  # (n_a, 3) Å each
            cart = disp[0][:, None, None] + disp[1][None, :, None] + disp[2][None, None, :]
            d2 = np.einsum("xyzk,xyzk->xyz", cart, cart)
            gauss = zz * GAUSS_NORM / s**3 * np.exp(-d2 / (2 * s**2))
            wrapped = np.ix_(*(i % d for i in idx))
            if all(len(i) <= d for i in idx):  # each grid point once: plain fancy-index accumulation
                rho[wrapped] += gauss
            else:  # the box is wider than the cell: a point recurs (several images) and must add up
                np.add.at(rho, wrapped, gauss)
            take = d2 < (self.cfg.label_frac * s) ** 2
            for x, y, w in zip(*np.nonzero(take), strict=True):  # few points: those within one sigma
                i, j, k = idx[0][x] % d, idx[1][y] % d, idx[2][w] % d
                if d2[x, y, w] < best[i, j, k]:
                    best[i, j, k], labels[i, j, k] = d2[x, y, w], c
        return rho.astype(np.float32), labels


CUT_SIGMAS = 7.0  # as the compiled kernel: images beyond 7 sigma add < 2e-11 of the peak


def _orthogonal_numpy(frac, weight, sigma, radius, cls, abc, density, labels) -> None:  # noqa: ANN001
    """One crystal with numpy, the same sums as core._voxel_kernels (density to float rounding,
    labels exactly): per-axis periodic profiles and their outer products; nearest site wins."""
    d = density.shape[0]
    grid = np.arange(d) / d
    best = np.full((d, d, d), np.inf)
    for n in np.flatnonzero(weight):
        profiles, squares = [], []
        for ax in range(3):
            diff = grid - frac[n, ax]
            images = np.arange(
                -math.ceil(CUT_SIGMAS * sigma[n] / abc[ax]) - 1,
                math.ceil(CUT_SIGMAS * sigma[n] / abc[ax]) + 2,
            )
            x = (diff[:, None] + images[None, :]) * abc[ax]
            profiles.append(np.exp(-(x**2) / (2 * sigma[n] ** 2)).sum(axis=1))
            squares.append(((diff - np.floor(diff + 0.5)) * abc[ax]) ** 2)
        density += (weight[n] * profiles[0][:, None, None] * profiles[1][None, :, None]
                    * profiles[2][None, None, :]).astype(np.float32)  # fmt: skip
        d2 = squares[0][:, None, None] + squares[1][None, :, None] + squares[2][None, None, :]
        take = (d2 < radius[n] ** 2) & (d2 < best)
        best[take], labels[take] = d2[take], cls[n]


def density_grid(structure: Structure, cfg: VoxelConfig | None = None) -> np.ndarray:
    """Electron-density grid (D,D,D) float32 of one crystal (e/Å^3)."""
    vocab = Vocabulary.from_structures([structure])
    return Voxeliser(cfg, vocab)(structure).density


# The 48 symmetry operations of the cube act on a periodic grid as axis permutations and flips.
_PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def cubic_operation(index: int) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Operation ``index`` (0..47) as (axis permutation, flips)."""
    perm = _PERMUTATIONS[index // 8]
    flips = tuple(bool(index >> k & 1) for k in range(3))
    return perm, flips  # type: ignore[return-value]


def apply_operation(grid: np.ndarray, perm, flips, shift=(0, 0, 0)) -> np.ndarray:
    """Permute/flip/roll the last three axes of a periodic grid; flips map point i to -i mod d."""
    offset = grid.ndim - 3
    out = np.transpose(grid, tuple(range(offset)) + tuple(offset + p for p in perm))
    for axis, flip in enumerate(flips):
        if flip:
            out = np.roll(np.flip(out, axis=offset + axis), 1, axis=offset + axis)
    if any(shift):
        out = np.roll(out, shift, axis=tuple(range(offset, offset + 3)))
    return np.ascontiguousarray(out)


def augment(
    density: np.ndarray, labels: np.ndarray, abc: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random cubic rotation/reflection and periodic translation of (…,D,D,D) grids and abc (3,)."""
    perm, flips = cubic_operation(int(rng.integers(48)))
    shift = tuple(int(s) for s in rng.integers(density.shape[-1], size=3))
    return (
        apply_operation(density, perm, flips, shift),
        apply_operation(labels, perm, flips, shift),
        np.asarray(abc)[list(perm)],
    )
