"""The segmentation layer of the 3-D view: blobs, their confidences, the caption, and the marks on
sites where the U-Net and the decoder disagree.

``BlobLayer`` owns four actors of the viewer's plotter:
- ``blobs``: one closed surface per segmented element, coloured by element (``scene.label_blobs``);
- ``blob_confidence``: a label "0.97" at each blob of the model's segmentation (the share of the
  atom probability mass around it that its element holds; core.segmentation.Blob);
- ``blobs_caption``: which labels are shown ("U-Net segmentation, mean confidence 0.95" or
  "true labels of the crystal"), or why there is no segmentation;
- ``disagreements``: a red wire sphere around each site of the shown crystal whose element the
  U-Net reads differently, labelled "U-Net: Zr".
What it draws is what ``choose`` and ``marks`` return, so tests can read it back (``shown``,
``shown_marks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyvista as pv

from icsg3d_gui.views import scene
from icsg3d_gui.views.atom_info import label_actor

BLOBS = "blobs"
CONFIDENCE = "blob_confidence"
CAPTION = "blobs_caption"
DISAGREE = "disagreements"
DISAGREE_TEXT = "disagreement_labels"
MARK_RADIUS = 0.75  # Å: the wire sphere around a disputed site


@dataclass
class BlobView:
    """What the layer shows: the label grid, where it comes from, blob labels and disputed sites."""

    labels: np.ndarray | None = None
    symbols: list[str] = field(default_factory=list)  # class id -> element of ``labels``
    caption: str = ""
    confidence_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (N, 3) Cartesian Å
    confidence_texts: list[str] = field(default_factory=list)


def marks(state) -> tuple[np.ndarray, list[str]]:  # noqa: ANN001 (AppState)
    """Cartesian positions (N, 3) and texts of the shown crystal's sites the U-Net reads otherwise."""
    s = state.structure
    disputed = [(i, theirs) for i, _, theirs in state.disagreements if s is not None and i < len(s)]
    if not disputed:
        return np.zeros((0, 3)), []
    return np.array([s[i].coords for i, _ in disputed]), [f"U-Net: {theirs}" for _, theirs in disputed]


def choose(state, settings) -> BlobView:  # noqa: ANN001 (AppState, DisplaySettings)
    """The blob view of the state under the settings (no drawing; see the module doc)."""
    view = BlobView()
    if not settings.show_blobs or state.lattice is None:
        return view
    truth = settings.blob_truth and state.true_labels is not None
    if truth:
        view.labels, view.symbols = state.true_labels, state.true_symbols
        view.caption = "blobs: true labels of the crystal"
        return view
    view.labels, view.symbols = state.labels, state.class_symbols
    if state.labels is None:
        view.caption = f"blobs: {state.segmentation_origin or 'no segmentation'}"
        return view
    mean = np.mean([b.confidence for b in state.blobs]) if state.blobs else None
    note = " (no true labels: not a known crystal)" if settings.blob_truth else ""
    view.caption = f"blobs: {state.segmentation_origin}" + (f", mean confidence {mean:.2f}" if mean is not None else "")
    view.caption += note
    if state.blobs:
        frac = np.array([b.frac for b in state.blobs])
        view.confidence_points = frac @ np.asarray(state.lattice)
        view.confidence_texts = [f"{b.symbol} {b.confidence:.2f}" for b in state.blobs]
    return view


class BlobLayer:
    """Draws a ``BlobView`` on the plotter; ``shown`` is the last one drawn."""

    def __init__(self, plotter: pv.Plotter) -> None:
        self.plotter = plotter
        self.shown = BlobView()
        self.shown_marks: list[str] = []

    def draw_marks(self, points: np.ndarray, texts: list[str]) -> None:
        """Red wire spheres and "U-Net: X" labels on the disputed sites (or none)."""
        self._remove(DISAGREE, DISAGREE_TEXT)
        self.shown_marks = list(texts)
        if len(points):
            spheres = pv.MultiBlock([pv.Sphere(radius=MARK_RADIUS, center=p) for p in points]).combine()
            self.plotter.add_mesh(spheres, name=DISAGREE, color="#d62728", style="wireframe", line_width=2,
                                  render=False, reset_camera=False, show_scalar_bar=False)  # fmt: skip
            self._labels(DISAGREE_TEXT, points, texts, (0.75, 0.1, 0.1))

    def draw(self, view: BlobView, lattice: np.ndarray | None, settings) -> None:  # noqa: ANN001
        self._remove(BLOBS, CONFIDENCE, CAPTION)
        self.shown = view
        if view.labels is not None and lattice is not None:
            mesh = scene.label_blobs(view.labels, lattice, view.symbols, settings.repeat, settings.scheme)
            if mesh is not None and mesh.n_points:
                self.plotter.add_mesh(mesh, name=BLOBS, scalars="rgb", rgb=True, opacity=0.55, smooth_shading=True,
                                      render=False, reset_camera=False, show_scalar_bar=False)  # fmt: skip
        self._labels(CONFIDENCE, view.confidence_points, view.confidence_texts, (0.1, 0.1, 0.1))
        if view.caption:
            self.plotter.add_text(view.caption, position="lower_right", font_size=9, color="black", name=CAPTION,
                                  render=False)  # fmt: skip

    def _labels(self, name: str, points: np.ndarray, texts: list[str], colour: tuple[float, float, float]) -> None:
        if not len(points):
            return
        actor = label_actor(points, texts, "texts", colour, font_size=12, backing=0.6)
        self.plotter.add_actor(actor, name=name, reset_camera=False, render=False, pickable=False)

    def _remove(self, *names: str) -> None:
        for name in names:
            if name in self.plotter.actors:
                self.plotter.remove_actor(name, render=False)
