"""Latent map dock: the encoded gallery projected on its first two principal directions.

Points are coloured by a property (density, number of elements, lattice constant); hovering shows
the crystal, clicking opens it; a star marks the latent point on screen, updated as sliders move.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolTip, QVBoxLayout, QWidget

from icsg3d_gui.state import AppState

PICK_RADIUS_PX = 8


class LatentMapDock(QWidget):
    """Emits ``chosen(gallery_id)`` when a point is clicked."""

    chosen = Signal(str)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.pca: dict | None = None
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Colour by"))
        self.colour = QComboBox()  # filled from the gallery result's "colours"
        self.colour.currentTextChanged.connect(self._draw)
        row.addWidget(self.colour, 1)
        layout.addLayout(row)
        self.figure = Figure(figsize=(4, 3.2), dpi=90, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumSize(240, 200)  # a collapsed canvas makes constrained layout warn
        self.ax = self.figure.add_subplot(111)
        layout.addWidget(self.canvas, 1)
        self.hint = QLabel("Needs a trained model set (the gallery is encoded with it).")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self._scatter = None
        self._marker = None
        self._on_screen = False
        self._colorbar = None
        self.canvas.mpl_connect("motion_notify_event", self._hover)
        self.canvas.mpl_connect("button_press_event", self._click)
        state.latentChanged.connect(self._update_marker)

    def set_gallery(self, pca: dict) -> None:
        """pca: worker 'gallery' result (xy (B, 2), ids, formulas, colours {label: (B,)}, mean, components)."""
        self.pca = pca
        current = self.colour.currentText()
        self.colour.blockSignals(True)
        self.colour.clear()
        self.colour.addItems(list(pca["colours"]))
        if current in pca["colours"]:
            self.colour.setCurrentText(current)
        self.colour.blockSignals(False)
        self.hint.setText("Hover for the crystal, click to open it. ★ = what is shown.")
        self._draw()

    def _draw(self) -> None:
        if self.pca is None or self.colour.currentText() not in self.pca["colours"]:
            return
        self.figure.clear()
        self.ax = self.figure.add_subplot(111)
        values = np.asarray(self.pca["colours"][self.colour.currentText()], dtype=float)
        xy = np.asarray(self.pca["xy"])
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")  # NaN: no value
        self._scatter = self.ax.scatter(xy[:, 0], xy[:, 1], c=values, cmap=cmap, s=28, edgecolors="k",
                                        linewidths=0.3, plotnonfinite=True)
        self._colorbar = self.figure.colorbar(self._scatter, ax=self.ax, label=self.colour.currentText())
        self.ax.set_xlabel("PC1")
        self.ax.set_ylabel("PC2")
        self.ax.set_title("Encoded gallery", fontsize=10)
        (self._marker,) = self.ax.plot([], [], marker="*", color="#d62728", markersize=16, markeredgecolor="k",
                                       linestyle="none")
        self._update_marker()

    def project(self, z: np.ndarray) -> np.ndarray:
        """(2,) coordinates of a latent vector on the map."""
        comps = np.asarray(self.pca["components"])[:2]
        return (np.asarray(z, dtype=float) - np.asarray(self.pca["mean"])) @ comps.T

    def set_shown(self, shown: bool) -> None:
        """Connected to the dock's visibilityChanged: a tabbed-away dock stays isVisible() in Qt,
        so the dock's own signal says whether the map is on screen."""
        self._on_screen = shown
        if shown:
            self._update_marker()

    def _update_marker(self) -> None:
        # a matplotlib redraw costs 100-250 ms on a busy 2-core machine: never while the map is
        # off screen (each slider step would pay it)
        if self.pca is None or self._marker is None or not self._on_screen:
            return
        if self.state.z is None or len(self.state.z) != len(self.pca["mean"]):
            self._marker.set_data([], [])
        else:
            x, y = self.project(self.state.z)
            self._marker.set_data([x], [y])
        self.canvas.draw_idle()

    def _nearest(self, event) -> int | None:  # noqa: ANN001 (matplotlib MouseEvent)
        if self.pca is None or event.inaxes is not self.ax or event.x is None:
            return None
        pix = self.ax.transData.transform(np.asarray(self.pca["xy"]))
        dist = np.hypot(pix[:, 0] - event.x, pix[:, 1] - event.y)
        i = int(np.argmin(dist))
        return i if dist[i] <= PICK_RADIUS_PX else None

    def _hover(self, event) -> None:  # noqa: ANN001
        i = self._nearest(event)
        if i is None:
            QToolTip.hideText()
            return
        label = self.colour.currentText()
        text = (f"{self.pca['formulas'][i]}  ({self.pca['ids'][i]})\n"
                f"{label}: {float(self.pca['colours'][label][i]):.3g}")
        QToolTip.showText(QCursor.pos(), text, self.canvas)

    def _click(self, event) -> None:  # noqa: ANN001
        i = self._nearest(event)
        if i is not None:
            self.chosen.emit(self.pca["ids"][i])
