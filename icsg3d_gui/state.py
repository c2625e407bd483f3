"""The application state: one QObject with change signals; views subscribe, nothing renders here.

What is on screen is always ``AppState``: a crystal (``structure``, may be None for a density
without a recovered crystal), the density grid it is shown with and that grid's cell, the
segmentation (labels), the latent vector and condition that produced it (None for a crystal
opened from a file and not yet encoded), and the properties. Latent moves go into a history with
undo/redo; bookmarks are named latent vectors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

from icsg3d_gui.display_settings import DisplaySettings

log = logging.getLogger(__name__)

HISTORY_LIMIT = 200


@dataclass
class LatentPoint:
    """A point of the latent space the user visited (undo/redo history or bookmark)."""

    z: np.ndarray
    cond: int
    label: str = ""


@dataclass
class History:
    """Linear undo/redo list of latent points; pushing after an undo drops the redo branch."""

    items: list[LatentPoint] = field(default_factory=list)
    index: int = -1

    def push(self, point: LatentPoint) -> None:
        cur = self.current()
        if cur is not None and cur.cond == point.cond and np.allclose(cur.z, point.z):
            return
        del self.items[self.index + 1 :]
        self.items.append(point)
        if len(self.items) > HISTORY_LIMIT:
            self.items.pop(0)
        self.index = len(self.items) - 1

    def current(self) -> LatentPoint | None:
        return self.items[self.index] if 0 <= self.index < len(self.items) else None

    def can_undo(self) -> bool:
        return self.index > 0

    def can_redo(self) -> bool:
        return self.index < len(self.items) - 1

    def undo(self) -> LatentPoint | None:
        if not self.can_undo():
            return None
        self.index -= 1
        return self.items[self.index]

    def redo(self) -> LatentPoint | None:
        if not self.can_redo():
            return None
        self.index += 1
        return self.items[self.index]

    def goto(self, index: int) -> LatentPoint | None:
        """Make entry ``index`` the current one (later entries stay for redo); None if out of range."""
        if not 0 <= index < len(self.items):
            return None
        self.index = index
        return self.items[index]


class AppState(QObject):
    """Single source of truth for what the app shows. Signals carry no payload: read the state."""

    structureChanged = Signal()
    densityChanged = Signal()
    segmentationChanged = Signal()
    propertiesChanged = Signal()
    latentChanged = Signal()
    historyChanged = Signal()
    modelChanged = Signal()
    modelSetChanged = Signal()  # another model set was chosen (it may still be loading)
    displayChanged = Signal()  # how the 3-D view draws (DisplaySettings) changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.display = DisplaySettings()  # how the 3-D view draws what is shown (UI-free)
        self.structure = None  # pymatgen Structure | None
        self.source: str = ""  # "gallery:<id>", a file path, "decoded", "interpolation 3/8", ...
        self.density: np.ndarray | None = None  # (D, D, D) float32, electrons/Å^3
        self.lattice: np.ndarray | None = None  # (3, 3) rows a, b, c of the density's cell, Å
        self.labels: np.ndarray | None = None  # (D, D, D) the model's segmentation: class ids, 0 = background
        self.class_symbols: list[str] = []  # class id -> element symbol ("" for background)
        self.blobs: list = []  # core.segmentation.Blob of ``labels``: position, element, confidence
        self.true_labels: np.ndarray | None = None  # the shown crystal's own label grid (known crystals)
        self.true_symbols: list[str] = []  # class id -> element symbol of ``true_labels``
        self.disagreements: list = []  # (site, element, the U-Net's element) of the shown decoded crystal
        self.properties: dict[str, float] = {}  # CGCNN predictions
        self.analysis: dict = {}  # formula, space group, validity badges (see analysis.py)
        self.z: np.ndarray | None = None  # (L,) latent vector of what is shown, None if not encoded
        self.cond: int = 0
        self.preview = False  # True while a slider drags: the views may trade quality for speed
        self.latent_property: float | None = None  # the VAE's property head at z (model_info["prop_name"])
        self.model_info: dict = {}  # filled when a model set is loaded; empty = "no model" mode
        self.history = History()
        self.segmentation_origin = ""  # "true labels of the crystal" or the model's segmentation
        self.structure_serial = 0  # increases with every set_structure (not id(): Python reuses ids)
        self.bookmarks: list[LatentPoint] = []
        self.model_set_name = ""  # "perov_5" (shipped) or a folder's name; "" before any is chosen
        self.models_dir: str = ""  # folder of the chosen model set

    # ---- setters: each emits exactly the signals whose data changed --------------------------
    def set_structure(self, structure, source: str = "") -> None:  # noqa: ANN001
        """Show a crystal (or None when the last decode gave no crystal)."""
        self.structure = structure
        self.structure_serial += 1  # names this showing of a crystal for late worker answers
        self.source = source
        self.structureChanged.emit()

    def set_display(self, settings: DisplaySettings) -> None:
        """New display settings (a whole DisplaySettings: it is immutable by convention)."""
        self.display = settings
        self.displayChanged.emit()

    def set_density(self, density: np.ndarray | None, lattice: np.ndarray | None) -> None:
        """density (D, D, D) on the cell ``lattice`` (3, 3)."""
        self.density = None if density is None else np.asarray(density, dtype=np.float32)
        self.lattice = None if lattice is None else np.asarray(lattice, dtype=float)
        self.densityChanged.emit()

    def set_segmentation(self, labels: np.ndarray | None, class_symbols: list[str] | None = None,
                         origin: str = "", blobs: list | None = None, disagreements: list | None = None,
                         true_labels: np.ndarray | None = None, true_symbols: list[str] | None = None) -> None:  # fmt: skip
        """The model's segmentation (D, D, D) of the shown grid, its blobs, and (when known) the
        crystal's true labels; ``origin`` says which model made it (shown beside the blobs)."""
        self.labels = labels
        self.segmentation_origin = origin
        if class_symbols is not None:
            self.class_symbols = list(class_symbols)
        self.blobs = list(blobs or [])
        self.disagreements = list(disagreements or [])
        self.true_labels = true_labels
        self.true_symbols = list(true_symbols or [])
        self.segmentationChanged.emit()

    def set_properties(self, properties: dict[str, float], analysis: dict | None = None) -> None:
        self.properties = dict(properties)
        if analysis is not None:
            self.analysis = dict(analysis)
        self.propertiesChanged.emit()

    def set_latent(self, z: np.ndarray | None, cond: int | None = None) -> None:
        self.z = None if z is None else np.asarray(z, dtype=np.float32).copy()
        if cond is not None:
            self.cond = int(cond)
        self.latentChanged.emit()

    def set_model_set(self, name: str, models_dir: str) -> None:
        """Choose a model set. Latent points of another set mean nothing in this one: the
        latent vector, undo history and bookmarks are cleared."""
        self.model_set_name, self.models_dir = name, str(models_dir)
        self.z = None
        self.history = History()
        self.bookmarks = []
        self.modelSetChanged.emit()
        self.latentChanged.emit()
        self.historyChanged.emit()

    def set_model_info(self, info: dict) -> None:
        self.model_info = dict(info)
        self.modelChanged.emit()

    # ---- history -------------------------------------------------------------------------
    def record(self, label: str = "") -> None:
        """Push the current latent point on the undo history (called when a move settles)."""
        if self.z is None:
            return
        self.history.push(LatentPoint(self.z.copy(), self.cond, label))
        self.historyChanged.emit()

    def undo(self) -> LatentPoint | None:
        point = self.history.undo()
        if point is not None:
            self.historyChanged.emit()
        return point

    def redo(self) -> LatentPoint | None:
        point = self.history.redo()
        if point is not None:
            self.historyChanged.emit()
        return point

    def goto(self, index: int) -> LatentPoint | None:
        """Jump to history entry ``index``; the caller decodes the point it returns."""
        point = self.history.goto(index)
        if point is not None:
            self.historyChanged.emit()
        return point

    def add_bookmark(self, name: str | None = None) -> LatentPoint | None:
        """Bookmark the current latent point (default name: "<n>: <formula>")."""
        if self.z is None:
            return None
        name = name or f"{len(self.bookmarks) + 1}: {self.analysis.get('formula', '?')}"
        point = LatentPoint(self.z.copy(), self.cond, name)
        self.bookmarks.append(point)
        self.historyChanged.emit()
        return point

    @property
    def has_model(self) -> bool:
        return bool(self.model_info.get("loaded"))
