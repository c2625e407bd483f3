"""A small deterministic stand-in for ``core.pipeline.ModelSet`` (unit tests of the worker/GUI logic).

It implements the interface the app calls, ``core.protocols.ModelSetLike``, with numpy only: the decoded
density is a NaCl-like pair of Gaussian blobs whose positions and cell follow z[0], z[1]; the
crystal is rock-salt NaCl with a = 5.0 + 0.2 * tanh(z[0]). ``delay`` simulates inference time and
every call is counted (thread-safe), so the tests can check what actually ran.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Lattice, Structure

from core.conditions import to_bin
from core.domain import domain_problem
from core.elements import Vocabulary
from core.voxel import VoxelConfig

FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


def rocksalt(a: float, cation: str = "Na", anion: str = "Cl") -> Structure:
    """Conventional rock-salt cell built from coordinates (Structure.from_spacegroup takes seconds)."""
    coords = np.concatenate([FCC, (FCC + 0.5) % 1.0])
    return Structure(Lattice.cubic(a), [cation] * 4 + [anion] * 4, coords)


@dataclass
class FakeDecoded:
    density: np.ndarray
    labels: np.ndarray
    structure: Structure | None
    error: str | None
    abc: np.ndarray
    blobs: list = field(default_factory=list)
    disagreements: list = field(default_factory=list)
    properties: dict = field(default_factory=dict)  # CGCNN predictions, as core.pipeline.Decoded has them


def _blobs(rho: np.ndarray, labels: np.ndarray, vocab: Vocabulary, confidence: float = 0.9) -> list:
    """One Blob per labelled component, at its density maximum."""
    from scipy import ndimage

    from core.segmentation import Blob

    comps, n = ndimage.label(labels > 0)
    out = []
    for k in range(1, n + 1):
        idx = np.unravel_index(np.argmax(np.where(comps == k, rho, -1)), rho.shape)
        out.append(Blob(np.array(idx) / rho.shape[0], vocab.symbol(int(labels[idx])), confidence))
    return out


class FakeModelSet:
    def __init__(self, latent_dim: int = 16, d: int = 12, delay: float = 0.0, fail_decode: bool = False,
                 disagree: bool = False) -> None:  # fmt: skip
        self.latent_dim = latent_dim
        self.temperature = 1.0  # the prior spread a real set reads from its meta.json ("sampling")
        self.n_conditions = 11
        # every element, so that no gallery crystal is outside this fake model set's domain
        self.vocab = Vocabulary.default()
        self.voxel_cfg = VoxelConfig(d=d, max_voxel=1.0)  # a coarse test grid: every gallery cell fits
        self.device = "cpu"
        self.source = "fake"
        self.property_names = ["formation_energy"]
        self.prop_name: str | None = None  # no conditioning property: no latent property read-out
        self.prop_edges: list[float] | None = None
        self.domain_lattice = "any"
        self.known = None  # no training-crystal index
        self.delay = delay
        self.fail_decode = fail_decode
        self.disagree = disagree  # decoded crystals: the "U-Net" reads site 1 (Na) as K
        self.calls: dict[str, int] = {}
        self.decoded_z: list[np.ndarray] = []
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1
        if self.delay:
            time.sleep(self.delay)

    def _a(self, z: np.ndarray) -> float:
        return 5.0 + 0.2 * float(np.tanh(z[0]))

    def _grid(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.voxel_cfg.d
        x = np.arange(d) / d
        shift = 0.1 * float(np.tanh(z[1])) if len(z) > 1 else 0.0
        rho = np.zeros((d, d, d), np.float32)
        labels = np.zeros((d, d, d), np.int64)
        for centre, (amp, cls) in zip((0.0 + shift, 0.5), ((3.0, self.vocab.index("Na")), (5.0, self.vocab.index("Cl"))), strict=True):
            diff = (x - centre + 0.5) % 1.0 - 0.5
            g = np.exp(-(diff**2) / (2 * 0.08**2))
            blob = amp * g[:, None, None] * g[None, :, None] * g[None, None, :]
            rho += blob.astype(np.float32)
            labels[blob > 0.5 * amp] = cls
        return rho, labels

    def encode(self, structures: list, cond: list[int] | None = None, frame_search: bool | None = None) -> np.ndarray:
        self._count("encode")
        out = []
        for s in structures:
            seed = sum(ord(c) for c in s.composition.reduced_formula)
            out.append(np.random.default_rng(seed).standard_normal(self.latent_dim))
        return np.asarray(out, dtype=np.float32)

    def decode_density(self, z: np.ndarray, cond) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        self._count("decode_density")
        with self._lock:
            self.decoded_z.append(np.asarray(z[0]).copy())
        grids = np.stack([self._grid(zi)[0] for zi in z])
        abc = np.array([[self._a(zi)] * 3 for zi in z], dtype=np.float32)
        return grids, abc

    def decode(self, z: np.ndarray, cond) -> list[FakeDecoded]:  # noqa: ANN001
        self._count("decode")
        out = []
        for zi in z:
            rho, labels = self._grid(zi)
            a = self._a(zi)
            abc = np.array([a, a, a], np.float32)
            if self.fail_decode:
                out.append(FakeDecoded(rho, labels, None, "no atoms found", abc))
                continue
            blobs = _blobs(rho, labels, self.vocab)
            crystal = rocksalt(a)
            out.append(FakeDecoded(rho, labels, crystal, None, abc, blobs, [(0, "Na", "K")] if self.disagree else [],
                                   self._properties(crystal)))  # fmt: skip
        return out

    def segment(self, density: np.ndarray, lattice: np.ndarray):  # noqa: ANN201 (core.segmentation.GridSegmentation)
        """A stand-in U-Net: on this set's grid (the real resampling and domain checks), voxels above
        a third of the maximum are Cl, each density maximum a blob of confidence 0.8. Skewed cells
        get the real peak-template reading, as ModelSet.segment gives them."""
        from core.segmentation import GridSegmentation, segment_with_templates, to_model_grid

        self._count("segment")
        if not np.allclose(Lattice(lattice).angles, 90.0, atol=1e-3):
            return segment_with_templates(self, density, lattice)
        rho, _ = to_model_grid(self, density, lattice)
        labels = np.where(rho > rho.max() / 3, self.vocab.index("Cl"), 0).astype(np.uint8)
        return GridSegmentation(labels=labels, blobs=_blobs(rho, labels, self.vocab, 0.8))

    def reconstruct(self, structures: list, cond=None, labels: bool = True) -> list[FakeDecoded]:  # noqa: ANN001
        return self.decode(self.encode(structures), cond)

    def predict(self, structures: list) -> list[dict[str, float]]:
        self._count("predict")
        return [self._properties(s) for s in structures]

    @staticmethod
    def _properties(structure: Structure) -> dict[str, float]:
        return {"formation_energy": -2.0 + 0.01 * structure.lattice.a}

    def sample(self, n: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
        self._count("sample")
        return (np.random.default_rng(seed).standard_normal((n, self.latent_dim)) * temperature).astype(np.float32)

    def around(self, z: np.ndarray, n: int, spread: float = 0.5, seed: int = 0) -> np.ndarray:
        self._count("around")
        rng = np.random.default_rng(seed)
        return (np.asarray(z, np.float32)[None] + spread * rng.standard_normal((n, self.latent_dim))).astype(np.float32)

    def interpolate(self, za: np.ndarray, zb: np.ndarray, steps: int, method: str = "slerp") -> np.ndarray:
        t = np.linspace(0.0, 1.0, steps)[:, None]
        return ((1 - t) * za[None] + t * zb[None]).astype(np.float32)

    def predicted_property(self, z: np.ndarray) -> np.ndarray:
        return -2.0 + 0.1 * np.tanh(np.asarray(z, np.float32)[:, 0])

    def condition_of(self, value: float | None) -> int:
        return to_bin(value, self.prop_edges)

    def domain_problem(self, structure: Structure) -> str | None:
        return domain_problem(structure, self.vocab, self.voxel_cfg, self.domain_lattice)
