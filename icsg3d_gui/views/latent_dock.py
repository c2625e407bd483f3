"""Latent dock: sliders along the principal directions of the encoded gallery, condition bin,
reset, random (seed + temperature), undo/redo and bookmarks.

z = base + sum_k (slider_k / 100) * scale_k * component_k, with scale_k the standard deviation
of the encoded gallery along component k (a slider spans -3..+3 sigma). While a slider moves the
worker decodes density only (latest wins); 250 ms after the last move, or on release, it runs
the full decode (segmentation, crystal, CGCNN) and the point goes on the undo history.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from icsg3d_gui.controller import Controller
from icsg3d_gui.state import AppState

N_SLIDERS = 8
SLIDER_RANGE = 300  # slider units; 100 = one standard deviation of the gallery
SETTLE_MS = 250


def condition_labels(n: int, prop_name: str | None, edges: list[float]) -> list[str]:
    """Combo labels of the n condition bins: value ranges when the bin edges are known."""
    labels = []
    for i in range(n - 1):
        if prop_name and len(edges) == n - 2:
            lo = f"{edges[i - 1]:.2f}" if i > 0 else "−∞"
            hi = f"{edges[i]:.2f}" if i < len(edges) else "∞"
            labels.append(f"{prop_name} {lo} … {hi}")
        else:
            labels.append(f"decile {i}")
    return labels + ["unknown"]


class LatentDock(QWidget):
    def __init__(self, state: AppState, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.base: np.ndarray | None = None
        self.components: np.ndarray | None = None  # (K, L)
        self.scales: np.ndarray | None = None  # (K,)
        self.settle = QTimer(self)
        self.settle.setSingleShot(True)
        self.settle.setInterval(SETTLE_MS)
        self.settle.timeout.connect(self._settled)
        layout = QVBoxLayout(self)
        self.message = QLabel("Loading model set …")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("QLabel { color: #8a4b00; }")
        layout.addWidget(self.message)
        layout.addWidget(self._slider_box())
        layout.addWidget(self._sampling_box())
        layout.addWidget(self._history_box())
        layout.addStretch(1)
        controller.latentBaseChanged.connect(self._new_base)
        controller.latentNotice.connect(self.set_notice)
        state.latentChanged.connect(self._show_latent_property)
        controller.galleryEncoded.connect(self.set_directions)
        state.modelChanged.connect(self._model_changed)
        state.historyChanged.connect(self._history_changed)
        self._set_enabled(False)

    # ---- construction --------------------------------------------------------------------
    def _slider_box(self) -> QGroupBox:
        box = QGroupBox("Principal directions (gallery PCA)")
        self.slider_box = box
        grid = QGridLayout(box)
        self.sliders: list[QSlider] = []
        self.value_labels: list[QLabel] = []
        self.names: list[QLabel] = []
        for k in range(N_SLIDERS):
            name, value = QLabel(f"PC{k + 1}"), QLabel("+0.00σ")
            value.setMinimumWidth(52)
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(-SLIDER_RANGE, SLIDER_RANGE)
            s.setPageStep(25)
            s.valueChanged.connect(self._moved)
            s.sliderReleased.connect(self._settled)
            grid.addWidget(name, k, 0)
            grid.addWidget(s, k, 1)
            grid.addWidget(value, k, 2)
            self.sliders.append(s)
            self.value_labels.append(value)
            self.names.append(name)
        self.live = QCheckBox("Live density while dragging")
        self.live.setChecked(True)
        grid.addWidget(self.live, N_SLIDERS, 0, 1, 2)
        self.prop_label = QLabel("")
        self.prop_label.setToolTip("The VAE's latent property head at the current point (no decoding needed)")
        grid.addWidget(self.prop_label, N_SLIDERS + 1, 0, 1, 3)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Sliders back to the base crystal")
        self.reset_button.clicked.connect(self.reset)
        grid.addWidget(self.reset_button, N_SLIDERS, 2)
        return box

    def _sampling_box(self) -> QGroupBox:
        box = QGroupBox("Sample")
        row = QHBoxLayout(box)
        self.cond = QComboBox()
        self.cond.setToolTip("Condition: property decile bin of the conditional VAE")
        self.cond.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.cond.currentIndexChanged.connect(self._cond_changed)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setPrefix("seed ")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 3.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(1.0)
        self.temperature.setPrefix("T ")
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("z ~ N(0, T²) with this seed (the seed then advances)")
        self.random_button.clicked.connect(self.random)
        for w in (QLabel("bin"), self.cond, self.seed, self.temperature, self.random_button):
            row.addWidget(w)
        return box

    def _history_box(self) -> QGroupBox:
        box = QGroupBox("History")
        row = QHBoxLayout(box)
        self.undo_button, self.redo_button = QPushButton("Undo"), QPushButton("Redo")
        self.undo_button.clicked.connect(self.undo)
        self.redo_button.clicked.connect(self.redo)
        self.bookmark_button = QPushButton("Bookmark")
        self.bookmark_button.clicked.connect(self.bookmark)
        self.bookmarks = QComboBox()
        self.bookmarks.setPlaceholderText("bookmarks")
        self.bookmarks.activated.connect(self._goto_bookmark)
        for w in (self.undo_button, self.redo_button, self.bookmark_button, self.bookmarks):
            row.addWidget(w)
        return box

    # ---- model / directions --------------------------------------------------------------
    def set_model_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(not self.state.has_model or "Loading" in text)

    def _show_latent_property(self) -> None:
        name, value = self.state.model_info.get("prop_name"), self.state.latent_property
        self.prop_label.setText(f"latent {name} head: {value:.3f}" if name and value is not None else "")

    def set_notice(self, text: str) -> None:
        """A warning shown above the sliders until the next base point."""
        self.message.setText(text)
        self.message.setVisible(True)

    def _model_changed(self) -> None:
        info = self.state.model_info
        self.cond.blockSignals(True)
        self.cond.clear()
        n = int(info.get("n_conditions", 1))
        self.cond.addItems(condition_labels(n, info.get("prop_name"), info.get("prop_edges") or []))
        self.cond.setCurrentIndex(n - 1)
        self.cond.blockSignals(False)
        self.temperature.setValue(float(info.get("temperature", 1.0)))  # the set's own (model card)
        self.message.setText("Encoding the gallery for the principal directions …")
        self._set_enabled(self.state.has_model)

    def set_directions(self, pca: dict) -> None:
        """Use the principal components (K, L) and their spreads (K,) of the encoded gallery or,
        for a set that encodes few gallery crystals, of its training crystals (``pca["source"]``)."""
        self.components = np.asarray(pca["components"], dtype=np.float32)
        self.scales = np.asarray(pca["scales"], dtype=np.float32)
        source = pca.get("source", "gallery")
        self.slider_box.setTitle(f"Principal directions ({source} PCA)")
        k = len(self.components)
        for i, (name, s) in enumerate(zip(self.names, self.sliders, strict=True)):
            name.setVisible(i < k)
            s.setVisible(i < k)
            self.value_labels[i].setVisible(i < k)
            if i < k:
                name.setToolTip(f"PC{i + 1}: {source} σ = {self.scales[i]:.3f}")
        self.message.setVisible(False)
        if self.base is None:
            self.base = np.asarray(pca["mean"], dtype=np.float32)

    def _set_enabled(self, on: bool) -> None:
        for w in (*self.sliders, self.reset_button, self.random_button, self.cond, self.seed,
                  self.temperature, self.bookmark_button, self.live):
            w.setEnabled(on)
        self._history_changed()

    # ---- latent moves --------------------------------------------------------------------
    def current_z(self) -> np.ndarray | None:
        if self.base is None:
            return None
        z = self.base.copy()
        if self.components is not None:
            for s, comp, scale in zip(self.sliders, self.components, self.scales, strict=False):
                z += (s.value() / 100.0) * scale * comp
        return z

    def _moved(self, _value: int = 0) -> None:
        for s, lab in zip(self.sliders, self.value_labels, strict=True):
            lab.setText(f"{s.value() / 100:+.2f}σ")
        z = self.current_z()
        if z is None or not self.state.has_model:
            return
        if self.live.isChecked():
            self.controller.request_latent(z, self.cond.currentIndex(), full=False)
        self.settle.start()

    def _settled(self) -> None:
        self.settle.stop()
        z = self.current_z()
        if z is not None and self.state.has_model:
            self.controller.request_latent(z, self.cond.currentIndex(), full=True)

    def _cond_changed(self, _index: int) -> None:
        self._settled()

    def _new_base(self) -> None:
        """A new base point (encoded crystal, random, undo): sliders back to zero."""
        if self.state.z is None:
            return
        self.base = self.state.z.copy()
        if self.state.has_model and self.components is not None:
            self.message.setVisible(False)
        self._zero_sliders()
        if 0 <= self.state.cond < self.cond.count():
            self.cond.blockSignals(True)
            self.cond.setCurrentIndex(self.state.cond)
            self.cond.blockSignals(False)

    def _zero_sliders(self) -> None:
        for s in self.sliders:
            s.blockSignals(True)
            s.setValue(0)
            s.blockSignals(False)
        for lab in self.value_labels:
            lab.setText("+0.00σ")

    def reset(self) -> None:
        self._zero_sliders()
        self._settled()

    def random(self) -> None:
        if not self.state.has_model:
            return
        # the worker samples: the model set's fitted latent mixture lands on crystals, N(0, I)
        # mostly does not (core/latent_prior.py)
        self.controller.random_point(self.seed.value(), self.temperature.value(), self.cond.currentIndex())
        self.seed.setValue(self.seed.value() + 1)

    # ---- history -------------------------------------------------------------------------
    def undo(self) -> None:
        self.controller.undo()

    def redo(self) -> None:
        self.controller.redo()

    def bookmark(self) -> None:
        self.state.add_bookmark()

    def _goto_bookmark(self, index: int) -> None:
        self.controller.goto_bookmark(index)

    def _history_changed(self) -> None:
        names = [p.label for p in self.state.bookmarks]
        if names != [self.bookmarks.itemText(i) for i in range(self.bookmarks.count())]:
            self.bookmarks.clear()
            self.bookmarks.addItems(names)
        h = self.state.history
        on = self.state.has_model
        self.undo_button.setEnabled(on and h.can_undo())
        self.redo_button.setEnabled(on and h.can_redo())
