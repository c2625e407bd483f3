"""Interpolation dock: A -> B in latent space (linear or slerp), frame scrubber, play, export all."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.conditions import UNKNOWN_BIN
from icsg3d_gui.controller import Controller
from icsg3d_gui.state import AppState

log = logging.getLogger(__name__)

CURRENT = "Current crystal"
OPEN_FILE = "Open file…"
PLAY_MS = 400


STRIP_COLUMNS = ("#", "formula", "space group", "valid", "novelty", "CGCNN")


def strip_cells(index: int, frame: dict) -> tuple[str, ...]:
    """One filmstrip row: frame number, formula, space group, validity, novelty, first prediction."""
    from core.units import with_unit

    s, a = frame.get("structure"), frame.get("analysis") or {}
    if s is None:
        return (str(index + 1), f"no crystal ({frame.get('error')})", "–", "–", "–", "–")
    novelty = {True: "new", False: f"known: {a.get('known')}"}.get(a.get("novel"), "–")
    props = frame.get("properties") or {}
    first = next(iter(props.items()), None)
    return (str(index + 1), s.composition.reduced_formula, a.get("spacegroup", "–"),
            {True: "yes", False: "no"}.get(a.get("valid"), "–"), novelty,
            f"{first[0]} {with_unit(*first)}" if first else "–")  # fmt: skip


class InterpolationDock(QWidget):
    """Interpolation between two crystals: end points, steps, method, a filmstrip of the frames."""

    def __init__(self, state: AppState, controller: Controller, gallery_ids: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.frames: list[dict] = []
        self._files: dict[str, object] = {}  # "file:<path>" -> Structure
        layout = QVBoxLayout(self)
        self.message = QLabel("Needs a trained model set.")
        self.message.setStyleSheet("QLabel { color: #8a4b00; }")
        layout.addWidget(self.message)
        form = QFormLayout()
        self.a, self.b = QComboBox(), QComboBox()
        for combo, default in ((self.a, 0), (self.b, min(1, len(gallery_ids) - 1))):
            combo.addItems([CURRENT, OPEN_FILE] + list(gallery_ids))
            combo.setCurrentIndex(2 + default if gallery_ids else 0)
            combo.activated.connect(lambda _i, c=combo: self._maybe_open(c))
            form.addRow("A" if combo is self.a else "B", combo)
        self.steps = QSpinBox()
        self.steps.setRange(2, 64)
        self.steps.setValue(8)
        form.addRow("Steps", self.steps)
        self.method = QComboBox()
        self.method.addItems(["slerp", "linear"])
        form.addRow("Method", self.method)
        layout.addLayout(form)
        self.run_button = QPushButton("Interpolate")
        self.run_button.clicked.connect(self.run)
        layout.addWidget(self.run_button)
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, 0)
        self.scrubber.valueChanged.connect(self.show_frame)
        self.frame_label = QLabel("no frames")
        row = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._play)
        self.export_button = QPushButton("Export all CIFs…")
        self.export_button.clicked.connect(self.export_dialog)
        row.addWidget(self.play_button)
        row.addWidget(self.export_button)
        layout.addWidget(self.scrubber)
        layout.addWidget(self.frame_label)
        layout.addLayout(row)
        # the filmstrip: one row per frame, click to show it
        self.strip = QTableWidget(0, len(STRIP_COLUMNS))
        self.strip.setHorizontalHeaderLabels(STRIP_COLUMNS)
        self.strip.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.strip.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.strip.verticalHeader().setVisible(False)
        self.strip.cellClicked.connect(lambda r, _c: self.scrubber.setValue(r))
        layout.addWidget(self.strip, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(PLAY_MS)
        self.timer.timeout.connect(self._next_frame)
        controller.interpolationReady.connect(self.set_frames)
        state.modelChanged.connect(self._model_changed)
        self._model_changed()

    def _model_changed(self) -> None:
        on = self.state.has_model
        self.message.setVisible(not on)
        for w in (self.a, self.b, self.steps, self.method, self.run_button):
            w.setEnabled(on)
        self._frames_enabled()

    def _frames_enabled(self) -> None:
        has = bool(self.frames)
        for w in (self.scrubber, self.play_button, self.export_button):
            w.setEnabled(has)

    def _maybe_open(self, combo: QComboBox) -> None:
        if combo.currentText() != OPEN_FILE:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Interpolation end point", "", "Crystals (*.cif *.vasp *.poscar)")
        if not path:
            combo.setCurrentIndex(0)
            return
        self.add_file_endpoint(combo, path)

    def add_file_endpoint(self, combo: QComboBox, path: str) -> bool:
        """Read a file as an end point (errors go to the controller's message box)."""
        from core.structures import read_structure

        try:
            structure = read_structure(path)
        except Exception as exc:  # noqa: BLE001
            self.controller.error.emit("Cannot open crystal", str(exc))
            combo.setCurrentIndex(0)
            return False
        key = f"file:{path}"
        self._files[key] = structure
        if combo.findText(key) < 0:
            combo.addItem(key)
        combo.setCurrentText(key)
        return True

    def _endpoint(self, combo: QComboBox):  # noqa: ANN202 (np.ndarray | Structure | None)
        text = combo.currentText()
        if text == CURRENT:
            return self.state.z if self.state.z is not None else self.state.structure
        if text in self._files:
            return self._files[text]
        return f"gallery:{text}" if text else None  # resolved and encoded in the worker

    def run(self) -> int | None:
        a, b = self._endpoint(self.a), self._endpoint(self.b)
        if a is None or b is None:
            self.controller.error.emit("Interpolation", "Choose two end points (the current view has no crystal).")
            return None
        self.frame_label.setText("decoding frames …")
        return self.controller.interpolate(a, b, self.steps.value(), self.method.currentText(), UNKNOWN_BIN)

    def set_frames(self, frames: list[dict]) -> None:
        self.frames = list(frames)
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, max(0, len(self.frames) - 1))
        self.scrubber.setValue(0)
        self.scrubber.blockSignals(False)
        self._frames_enabled()
        self._fill_strip()
        if self.frames:
            self.show_frame(0)

    def _fill_strip(self) -> None:
        self.strip.setRowCount(len(self.frames))
        for r, frame in enumerate(self.frames):
            for c, text in enumerate(strip_cells(r, frame)):
                self.strip.setItem(r, c, QTableWidgetItem(text))
        self.strip.resizeColumnsToContents()

    def show_frame(self, index: int) -> None:
        if not 0 <= index < len(self.frames):
            return
        frame = self.frames[index]
        source = f"interpolation {index + 1}/{len(self.frames)}"
        self.controller.show_frame(frame, source)
        s = frame.get("structure")
        text = s.composition.reduced_formula if s is not None else f"no crystal ({frame.get('error')})"
        self.frame_label.setText(f"frame {index + 1}/{len(self.frames)}: {text}")

    def _play(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "Play")
        self.timer.start() if on else self.timer.stop()

    def _next_frame(self) -> None:
        if self.frames:
            self.scrubber.setValue((self.scrubber.value() + 1) % len(self.frames))

    def stop(self) -> None:
        self.timer.stop()

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export frames to folder")
        if folder:
            self.export_frames(folder, self.controller.symprec)

    def export_frames(self, folder: str | Path, symprec: float | None = None) -> list[Path]:
        """frame_XX_<formula>.cif for every frame with a crystal; existing files are not replaced."""
        from core.export import export_cifs

        frames = [(i, frame.get("structure")) for i, frame in enumerate(self.frames)]
        skipped = {i: f"frame {i + 1}: no crystal" for i, s in frames if s is None}
        kept = [(i, s) for i, s in frames if s is not None]
        items = [(f"frame_{i + 1:02d}_{s.composition.reduced_formula}", s) for i, s in kept]
        out, failed = export_cifs(folder, items, symprec)
        skipped.update({kept[k][0]: f"frame {kept[k][0] + 1}: {exc}" for k, exc in failed})
        if skipped:
            self.controller.error.emit("Some frames not exported", "\n".join(skipped[i] for i in sorted(skipped)))
        self.frame_label.setText(f"exported {len(out)} CIFs to {folder}")
        return out
