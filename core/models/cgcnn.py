"""CGCNN (Xie & Grossman 2018) property predictor, with atom features computed by our own code.

Graph of a crystal: one node per site, directed edges to the ``max_neighbors`` nearest periodic
neighbours within ``radius`` Å (ties broken by pymatgen's neighbour order), edge feature = Gaussian
expansion of the distance (centres 0..radius step ``gaussian_step``, width ``gaussian_step``).
Unlike the original we keep a variable number of edges instead of padding with fake 9 Å
neighbours, and use standard ``nn.BatchNorm1d`` with running statistics, so in eval mode a
crystal's prediction does not depend on which other crystals share its batch.

Atom features (``atom_features``): one-hot encodings of group (18), period (7), block (4),
valence-electron count (12) and 10-bin encodings of Pauling electronegativity, atomic radius,
first ionisation energy, electron affinity and log molar volume, all from pymatgen ``Element``
data. A property pymatgen lacks (e.g. noble-gas electronegativity) leaves its bins all zero.
Partially occupied sites get the occupancy-weighted mean of their species' features.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pymatgen.core import Element, Structure
from torch import Tensor, nn

from core.models.config import strict_from_dict

# (name, low, high, bins, log-scale)
_BINNED = (
    ("X", 0.5, 4.0, 10, False),
    ("atomic_radius", 0.25, 2.75, 10, False),
    ("ionization_energy", 3.0, 25.0, 10, False),
    ("electron_affinity", -3.0, 3.7, 10, False),
    ("molar_volume", 5.0, 75.0, 10, True),
)
_BLOCKS = ("s", "p", "d", "f")
_NOBLE_Z = (0, 2, 10, 18, 36, 54, 86, 118)
N_ATOM_FEATURES = 18 + 7 + len(_BLOCKS) + 12 + sum(b[3] for b in _BINNED)


def _bin(value: float | None, lo: float, hi: float, n: int, log: bool) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    if value is None or not math.isfinite(value) or (log and value <= 0):
        return out
    if log:
        value, lo, hi = math.log(value), math.log(lo), math.log(hi)
    out[min(max(int((value - lo) / (hi - lo) * n), 0), n - 1)] = 1.0
    return out


def _prop(el: Element, name: str) -> float | None:
    try:
        value = getattr(el, name)
    except (AttributeError, ValueError, KeyError, TypeError):
        return None
    return None if value is None else float(value)


@cache
def atom_features(symbol: str) -> np.ndarray:
    """Feature vector (N_ATOM_FEATURES,) float32 of an element symbol; ValueError if unknown."""
    try:
        el = Element(symbol)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"unknown element {symbol!r}") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for every missing datum
        parts = [np.eye(18, dtype=np.float32)[el.group - 1], np.eye(7, dtype=np.float32)[min(el.row, 7) - 1]]
        block = np.zeros(len(_BLOCKS), dtype=np.float32)
        if el.block in _BLOCKS:
            block[_BLOCKS.index(el.block)] = 1.0
        parts.append(block)
        core = max(z for z in _NOBLE_Z if z < el.Z)
        parts.append(np.eye(12, dtype=np.float32)[min(el.Z - core, 12) - 1])
        parts += [_bin(_prop(el, name), lo, hi, n, log) for name, lo, hi, n, log in _BINNED]
    vec = np.concatenate(parts)
    assert vec.shape == (N_ATOM_FEATURES,)
    vec.setflags(write=False)
    return vec


@dataclass
class CGCNNConfig:
    """Hyper-parameters of :class:`CGCNN` and of its graphs (radius, neighbours, Gaussians)."""

    atom_fea_len: int = 64
    n_conv: int = 3
    h_fea_len: int = 128
    n_h: int = 1
    radius: float = 8.0
    max_neighbors: int = 12
    gaussian_step: float = 0.2
    targets: list[str] = field(default_factory=lambda: ["formation_energy_per_atom"])
    atom_input_len: int = N_ATOM_FEATURES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CGCNNConfig:
        return strict_from_dict(cls, data)

    @property
    def n_gaussians(self) -> int:
        return int(round(self.radius / self.gaussian_step)) + 1


@dataclass
class Graph:
    """One crystal: atom_fea (N, F), center/nbr (E,) long (edge i <- j), dist (E,) Å."""

    atom_fea: Tensor
    center: Tensor
    nbr: Tensor
    dist: Tensor

    @property
    def n_atoms(self) -> int:
        return int(self.atom_fea.shape[0])


@dataclass
class Batch:
    """Concatenated graphs; ``crystal`` (N,) maps each atom to its crystal 0..n_crystals-1."""

    atom_fea: Tensor
    center: Tensor
    nbr: Tensor
    dist: Tensor
    crystal: Tensor
    n_crystals: int

    def to(self, device: str | torch.device) -> Batch:
        return Batch(
            self.atom_fea.to(device),
            self.center.to(device),
            self.nbr.to(device),
            self.dist.to(device),
            self.crystal.to(device),
            self.n_crystals,
        )


def _site_features(structure: Structure) -> np.ndarray:
    rows = []
    for site in structure:
        comp = site.species
        total = sum(comp.values())
        vec = sum(float(occ) * atom_features(sp.symbol) for sp, occ in comp.items())
        rows.append(vec / float(total))
    return np.stack(rows).astype(np.float32)


def build_graph(structure: Structure, cfg: CGCNNConfig) -> Graph:
    """Periodic neighbour graph: each site -> its cfg.max_neighbors nearest within cfg.radius."""
    if len(structure) == 0:
        raise ValueError("empty structure")
    feats = _site_features(structure)
    center, nbr, _, dist = structure.get_neighbor_list(cfg.radius, exclude_self=True)
    order = np.lexsort((dist, center))  # by centre, then by distance (stable)
    center, nbr, dist = center[order], nbr[order], dist[order]
    # rank of each edge within its centre's sorted list
    starts = np.searchsorted(center, center, side="left")
    keep = (np.arange(len(center)) - starts) < cfg.max_neighbors
    return Graph(
        atom_fea=torch.from_numpy(feats),
        center=torch.from_numpy(center[keep].astype(np.int64)),
        nbr=torch.from_numpy(nbr[keep].astype(np.int64)),
        dist=torch.from_numpy(dist[keep].astype(np.float32)),
    )


def collate(graphs: list[Graph]) -> Batch:
    """Concatenate graphs into one Batch (node indices offset per crystal)."""
    if not graphs:
        raise ValueError("cannot collate an empty list of graphs")
    offsets = np.cumsum([0] + [g.n_atoms for g in graphs[:-1]])
    return Batch(
        atom_fea=torch.cat([g.atom_fea for g in graphs]),
        center=torch.cat([g.center + int(o) for g, o in zip(graphs, offsets, strict=True)]),
        nbr=torch.cat([g.nbr + int(o) for g, o in zip(graphs, offsets, strict=True)]),
        dist=torch.cat([g.dist for g in graphs]),
        crystal=torch.cat([torch.full((g.n_atoms,), i, dtype=torch.long) for i, g in enumerate(graphs)]),
        n_crystals=len(graphs),
    )


class ConvLayer(nn.Module):
    """CGCNN gated graph convolution: v_i <- softplus(v_i + BN(sum_j sigma(z_ij W_f) * g(z_ij W_s)))."""

    def __init__(self, atom_fea_len: int, nbr_fea_len: int) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
        self.bn2 = nn.BatchNorm1d(atom_fea_len)

    def forward(self, atom: Tensor, center: Tensor, nbr: Tensor, edge: Tensor) -> Tensor:
        """atom (N, A), center/nbr (E,), edge (E, G) -> (N, A)."""
        z = self.bn1(self.fc(torch.cat([atom[center], atom[nbr], edge], dim=1)))
        gate, core = z.chunk(2, dim=1)
        msg = torch.sigmoid(gate) * F.softplus(core)
        summed = torch.zeros_like(atom).index_add_(0, center, msg)
        return F.softplus(atom + self.bn2(summed))


class CGCNN(nn.Module):
    """forward(batch) -> (B, n_targets) predictions (in the units the targets were trained in)."""

    def __init__(self, cfg: CGCNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        g = cfg.n_gaussians
        self.register_buffer("centres", torch.linspace(0.0, cfg.radius, g), persistent=False)
        self.embedding = nn.Linear(cfg.atom_input_len, cfg.atom_fea_len)
        self.convs = nn.ModuleList(ConvLayer(cfg.atom_fea_len, g) for _ in range(cfg.n_conv))
        hidden: list[nn.Module] = [nn.Linear(cfg.atom_fea_len, cfg.h_fea_len), nn.Softplus()]
        for _ in range(cfg.n_h - 1):
            hidden += [nn.Linear(cfg.h_fea_len, cfg.h_fea_len), nn.Softplus()]
        self.hidden = nn.Sequential(*hidden)
        self.out = nn.Linear(cfg.h_fea_len, len(cfg.targets))

    def expand(self, dist: Tensor) -> Tensor:
        """Gaussian distance expansion (E,) -> (E, G)."""
        return torch.exp(-((dist[:, None] - self.centres) ** 2) / self.cfg.gaussian_step**2)

    def forward(self, batch: Batch) -> Tensor:
        if batch.atom_fea.shape[1] != self.cfg.atom_input_len:
            raise ValueError(
                f"atom features have {batch.atom_fea.shape[1]} columns, model expects {self.cfg.atom_input_len}"
            )
        atom = self.embedding(batch.atom_fea)
        edge = self.expand(batch.dist)
        for conv in self.convs:
            atom = conv(atom, batch.center, batch.nbr, edge)
        pooled = atom.new_zeros(batch.n_crystals, atom.shape[1]).index_add_(0, batch.crystal, atom)
        counts = torch.bincount(batch.crystal, minlength=batch.n_crystals).clamp(min=1)
        pooled = pooled / counts[:, None].to(atom.dtype)
        return self.out(self.hidden(F.softplus(pooled)))
