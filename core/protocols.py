"""The interface of a loaded model set, as the app and the library use it: ``ModelSetLike``
(core.pipeline.ModelSet implements it; tests/gui/fakes.py's FakeModelSet is a deterministic
stand-in for the GUI tests) and ``DecodedLike``, one decoded latent vector.

Code that takes a model set types it with these, so that it depends on the interface and not on
the torch-backed class, and a stand-in runs the same code paths as the real set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from core.elements import Vocabulary
    from core.known import KnownCrystals
    from core.voxel import VoxelConfig


@runtime_checkable
class DecodedLike(Protocol):
    """One decoded latent vector: its grids, the recovered crystal (or why not), its properties."""

    density: np.ndarray  # (D,D,D) e/Å^3
    abc: np.ndarray  # (3,) Å
    labels: np.ndarray | None  # (D,D,D) class ids
    structure: Structure | None
    error: str | None
    properties: dict[str, float]  # CGCNN predictions ({} without a CGCNN or a crystal)
    blobs: list  # core.segmentation.Blob of the U-Net's segmentation ([] without a U-Net)
    disagreements: list  # (site, element, the U-Net's element) where the U-Net reads the crystal otherwise


@runtime_checkable
class ModelSetLike(Protocol):
    """What the app's inference thread (icsg3d_gui/handlers.py, worker.py) calls on a model set."""

    latent_dim: int
    n_conditions: int
    vocab: Vocabulary
    voxel_cfg: VoxelConfig
    device: Any  # torch.device or a name
    source: str  # the folder it was loaded from
    property_names: list[str]  # CGCNN targets
    prop_name: str | None  # the conditioning property (decile bins), None without one
    prop_edges: list[float] | None
    domain_lattice: str
    known: KnownCrystals | None  # the training crystals' index (novelty)

    def encode(self, structures: list[Structure], cond: Any = None, frame_search: bool | None = None) -> np.ndarray: ...

    def decode_density(self, z: np.ndarray, cond: Any = None) -> tuple[np.ndarray, np.ndarray]: ...

    def decode(self, z: np.ndarray, cond: Any = None) -> Sequence[DecodedLike]: ...

    def reconstruct(self, structures: list[Structure], cond: Any = None, labels: bool = True) -> Sequence[DecodedLike]: ...

    def predict(self, structures: list[Structure]) -> list[dict[str, float]]: ...

    def sample(self, n: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray: ...

    def around(self, z: np.ndarray, n: int, spread: float = 0.5, seed: int = 0) -> np.ndarray: ...

    def interpolate(self, za: np.ndarray, zb: np.ndarray, steps: int, method: str = "slerp") -> np.ndarray: ...

    def predicted_property(self, z: np.ndarray) -> np.ndarray: ...

    def condition_of(self, value: float | None) -> int: ...

    def domain_problem(self, structure: Structure) -> str | None: ...

    def segment(self, density: np.ndarray, lattice: np.ndarray) -> Any: ...  # core.segmentation.GridSegmentation
