"""Isosurfaces in the Display dock: a histogram of the shown density to pick isovalues on
(VESTA/OVITO style: click or drag on it), and the list of levels, each with its colour and
opacity. Levels are stored in ``DisplaySettings.iso_levels`` as fractions of the grid's maximum;
the histogram and the list show them in e/Å^3 of the grid on screen.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QColorDialog,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from icsg3d_gui.display_settings import ISO_COLOURS, IsoLevel
from icsg3d_gui.views.viewer3d import Viewer3D

BINS = 60
MAX_LEVELS = 5


class DensityHistogram(QWidget):
    """Histogram of the density values (log counts); vertical lines at the isovalues. A click
    or drag emits ``picked`` with the value under the mouse as a fraction of the maximum."""

    picked = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(70)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Density histogram (log counts): click or drag to set the selected isovalue")
        self.counts = np.zeros(0)
        self.vmax = 0.0
        self.levels: tuple[IsoLevel, ...] = ()
        self.selected = 0

    def set_density(self, density: np.ndarray | None) -> None:
        if density is None or density.size == 0:
            self.counts, self.vmax = np.zeros(0), 0.0
        else:
            self.vmax = float(density.max())
            top = self.vmax if self.vmax > 0 else 1.0
            self.counts, _ = np.histogram(density, bins=BINS, range=(0.0, top))
        self.update()

    def set_levels(self, levels: tuple[IsoLevel, ...], selected: int) -> None:
        self.levels, self.selected = tuple(levels), selected
        self.update()

    def level_x(self, fraction: float) -> float:
        """Widget x of the value ``fraction`` x maximum (the inverse of a click)."""
        return 4.0 + float(fraction) * (self.width() - 8.0)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("white"))
        w, h = self.width() - 8.0, self.height() - 4.0
        if len(self.counts):
            heights = np.log1p(self.counts) / max(np.log1p(self.counts).max(), 1e-9)
            bar = w / len(heights)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor("#9aa5b1"))
            for i, frac in enumerate(heights):
                p.drawRect(QRectF(4.0 + i * bar, 2.0 + h * (1 - frac), max(bar - 1, 1.0), h * frac))
        for i, (fraction, colour, _opacity) in enumerate(self.levels):
            p.setPen(QPen(QColor(colour), 3 if i == self.selected else 1.5))
            x = self.level_x(fraction)
            p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        p.setPen(QColor("#333333"))
        p.drawText(self.rect().adjusted(0, 0, -4, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
                   f"max {self.vmax:.2f} e/Å³")  # fmt: skip
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        self._pick(event.position().x())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._pick(event.position().x())

    def _pick(self, x: float) -> None:
        fraction = (x - 4.0) / max(self.width() - 8.0, 1.0)
        self.picked.emit(float(np.clip(fraction, 0.01, 0.99)))


class IsoPanel(QWidget):
    """Histogram + list of isosurface levels (add, remove, colour, opacity) for ``viewer``."""

    levelsChanged = Signal()  # the levels were edited here (the isosurface layer is switched on)

    def __init__(self, viewer: Viewer3D, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.selected = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        caption = QLabel("Isosurfaces: click the histogram to set the selected level")
        caption.setWordWrap(True)  # never the widest thing in the dock
        layout.addWidget(caption)
        self.histogram = DensityHistogram()
        self.histogram.picked.connect(self.set_selected_fraction)
        layout.addWidget(self.histogram)
        self.list = QListWidget()
        self.list.setMaximumHeight(74)
        self.list.currentRowChanged.connect(self._row_changed)
        layout.addWidget(self.list)
        row = QHBoxLayout()
        self.add_button, self.remove_button = QPushButton("+"), QPushButton("−")
        self.add_button.setToolTip("Add an isosurface level")
        self.remove_button.setToolTip("Remove the selected level")
        self.colour_button = QPushButton("colour…")
        self.colour_button.setToolTip("Colour of the selected isosurface")
        self.opacity = QDoubleSpinBox()
        self.opacity.setPrefix("opacity ")
        self.opacity.setRange(0.05, 1.0)
        self.opacity.setSingleStep(0.05)
        self.opacity.setToolTip("Opacity of the selected isosurface")
        for w in (self.add_button, self.remove_button):
            w.setMaximumWidth(30)
        self.add_button.clicked.connect(self.add_level)
        self.remove_button.clicked.connect(self.remove_level)
        self.colour_button.clicked.connect(self._ask_colour)
        self.opacity.valueChanged.connect(lambda v: self._edit(opacity=v))
        for w in (self.add_button, self.remove_button, self.colour_button, self.opacity):
            row.addWidget(w)
        row.addStretch(1)
        layout.addLayout(row)
        viewer.state.densityChanged.connect(self.refresh)
        self.refresh()

    @property
    def levels(self) -> tuple[IsoLevel, ...]:
        return tuple(self.viewer.settings.iso_levels)

    def refresh(self) -> None:
        """Show the settings' levels and the current grid (after a density or session change)."""
        levels = self.levels
        self.selected = min(self.selected, max(len(levels) - 1, 0))
        self.histogram.set_density(self.viewer.state.density)
        self.histogram.set_levels(levels, self.selected)
        vmax = self.histogram.vmax
        self.list.blockSignals(True)
        if self.list.count() != len(levels):  # rebuilt only when levels come or go (not per slider step)
            self.list.clear()
            for _ in levels:
                self.list.addItem(QListWidgetItem())
        for i, (fraction, colour, opacity) in enumerate(levels):
            item = self.list.item(i)
            item.setText(f"{fraction * vmax:.3f} e/Å³  ({fraction:.0%} of max, opacity {opacity:.2f})")
            item.setForeground(QColor(colour))
        self.list.setCurrentRow(self.selected)
        self.list.blockSignals(False)
        self.remove_button.setEnabled(len(levels) > 1)
        self.add_button.setEnabled(len(levels) < MAX_LEVELS)
        if levels:
            self.opacity.blockSignals(True)
            self.opacity.setValue(levels[self.selected][2])
            self.opacity.blockSignals(False)

    def set_levels(self, levels: tuple[IsoLevel, ...]) -> None:
        self.viewer.update_settings(iso_levels=tuple(levels), show_iso=True)
        self.refresh()
        self.levelsChanged.emit()

    def set_selected_fraction(self, fraction: float) -> None:
        """The selected level moves to ``fraction`` of the maximum (histogram click)."""
        self._edit(fraction=float(fraction))

    def add_level(self) -> None:
        levels = self.levels
        if len(levels) >= MAX_LEVELS:
            return
        used = {c for _, c, _ in levels}
        colour = next((c for c in ISO_COLOURS if c not in used), ISO_COLOURS[len(levels) % len(ISO_COLOURS)])
        fraction = min(0.95, (max(f for f, _, _ in levels) + 0.25) if levels else 0.25)
        self.selected = len(levels)
        self.set_levels((*levels, (fraction, colour, 0.35)))

    def remove_level(self) -> None:
        levels = list(self.levels)
        if len(levels) > 1:
            levels.pop(self.selected)
            self.selected = max(0, self.selected - 1)
            self.set_levels(tuple(levels))

    def _edit(self, fraction: float | None = None, colour: str | None = None, opacity: float | None = None) -> None:
        levels = list(self.levels)
        if not levels:
            return
        f, c, o = levels[self.selected]
        levels[self.selected] = (f if fraction is None else fraction, c if colour is None else colour,
                                 o if opacity is None else float(opacity))  # fmt: skip
        self.set_levels(tuple(levels))

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.selected = row
            self.refresh()

    def _ask_colour(self) -> None:
        levels = self.levels
        if levels:
            colour = QColorDialog.getColor(QColor(levels[self.selected][1]), self, "Isosurface colour")
            if colour.isValid():
                self._edit(colour=colour.name())
