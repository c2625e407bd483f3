"""Batch dock: N crystals from the model set's sampler (or around the current latent point), in a
sortable, filterable table with a novelty column (new / known: <training id>).

Double-click a row to show it; export writes the CIFs of the rows that pass the filter.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from icsg3d_gui.controller import Controller
from icsg3d_gui.state import AppState

COLUMNS = ("#", "formula", "space group", "sites", "valid", "novelty")


def batch_summary(rows: list[dict]) -> str:
    """"N generated, V valid, K new" and a warning when every crystal of the batch is one crystal."""
    analyses = [row.get("analysis") or {} for row in rows]
    n_valid = sum(1 for a in analyses if a.get("valid"))
    n_new = sum(1 for a in analyses if a.get("novel") is True)
    text = f"{len(rows)} generated, {n_valid} valid, {n_new} new"
    kinds = {(a.get("formula"), a.get("spacegroup")) for a in analyses if a.get("formula")}
    if len(rows) > 1 and len(kinds) == 1 and all(a.get("formula") for a in analyses):
        formula, group = next(iter(kinds))
        text += f" ⚠ all {len(rows)} are one crystal ({formula}, {group}): raise σ or use the sampler"
    return text


class _NumberItem(QTableWidgetItem):
    """Sorts by the number in UserRole, not by text."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if isinstance(a, int | float) and isinstance(b, int | float):
            return a < b
        return super().__lt__(other)


class BatchDock(QWidget):
    def __init__(self, state: AppState, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.rows: list[dict] = []
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.n = QSpinBox()
        self.n.setRange(1, 256)
        self.n.setValue(16)
        self.n.setPrefix("N ")
        self.spread = QDoubleSpinBox()
        self.spread.setRange(0.01, 3.0)
        self.spread.setValue(0.5)
        self.spread.setSingleStep(0.1)
        self.spread.setPrefix("σ ")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setPrefix("seed ")
        self.around = QCheckBox("around current")
        self.around.setToolTip("Sample z + σ N(0, I) around the current point instead of the model set's sampler "
                               "(new compositions on learned prototypes)")
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self.generate)
        for w in (self.n, self.around, self.spread, self.seed, self.generate_button):
            top.addWidget(w)
        layout.addLayout(top)
        filt = QHBoxLayout()
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter by formula or space group")
        self.filter.textChanged.connect(self._apply_filter)
        self.valid_only = QCheckBox("valid only")
        self.valid_only.toggled.connect(self._apply_filter)
        self.new_only = QCheckBox("new only")
        self.new_only.setToolTip("Hide crystals that match one the model set trained on")
        self.new_only.toggled.connect(self._apply_filter)
        filt.addWidget(self.filter, 1)
        filt.addWidget(self.valid_only)
        filt.addWidget(self.new_only)
        layout.addLayout(filt)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.show_row(r))
        layout.addWidget(self.table, 1)
        bottom = QHBoxLayout()
        self.summary = QLabel("")
        self.export_button = QPushButton("Export shown CIFs…")
        self.export_button.clicked.connect(self.export_dialog)
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(self.export_button)
        layout.addLayout(bottom)
        controller.batchReady.connect(self.set_rows)
        state.modelChanged.connect(self._enable)
        self._enable()

    def _enable(self) -> None:
        self.generate_button.setEnabled(self.state.has_model)
        self.export_button.setEnabled(bool(self.rows))

    def generate(self) -> int | None:
        around = self.around.isChecked()
        if around and self.state.z is None:
            self.controller.error.emit("Batch", "No latent point yet: open a crystal the model can encode, or sample.")
            return None
        self.summary.setText("generating …")
        return self.controller.batch(self.state.z, self.n.value(), self.spread.value(), self.seed.value(),
                                     self.state.cond, around=around)

    def set_rows(self, rows: list[dict]) -> None:
        self.rows = list(rows)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            a = row.get("analysis") or {}
            s = row.get("structure")
            novelty = {True: "new", False: f"known: {a.get('known')}"}.get(a.get("novel"), "–")
            cells = (r + 1, a.get("formula", "–") if s is not None else f"failed: {row.get('error')}",
                     a.get("spacegroup", "–"), len(s) if s is not None else 0,
                     "yes" if a.get("valid") else "no", novelty)
            for c, value in enumerate(cells):
                item = _NumberItem(str(value))
                item.setData(Qt.ItemDataRole.UserRole, value if isinstance(value, int) else None)
                if c == 0:
                    item.setData(Qt.ItemDataRole.UserRole + 1, r)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.sortItems(0, Qt.SortOrder.AscendingOrder)  # generation order until the user sorts
        self.table.resizeColumnsToContents()
        self.summary.setText(batch_summary(self.rows))
        self._apply_filter()
        self._enable()

    def _row_index(self, table_row: int) -> int:
        return int(self.table.item(table_row, 0).data(Qt.ItemDataRole.UserRole + 1))

    def _apply_filter(self) -> None:
        needle = self.filter.text().strip().lower()
        for t in range(self.table.rowCount()):
            row = self.rows[self._row_index(t)]
            a = row.get("analysis") or {}
            text = f"{a.get('formula', '')} {a.get('spacegroup', '')}".lower()
            hide = (needle and needle not in text) or (self.valid_only.isChecked() and not a.get("valid")) \
                or (self.new_only.isChecked() and a.get("novel") is not True)
            self.table.setRowHidden(t, bool(hide))

    def visible_indices(self) -> list[int]:
        """Indices into ``rows`` of the rows the filter shows, in table order."""
        return [self._row_index(t) for t in range(self.table.rowCount()) if not self.table.isRowHidden(t)]

    def visible_rows(self) -> list[dict]:
        return [self.rows[i] for i in self.visible_indices()]

    def show_row(self, table_row: int) -> None:
        i = self._row_index(table_row)
        self.controller.show_frame(self.rows[i], f"batch {i + 1}/{len(self.rows)}")

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export shown crystals to folder")
        if folder:
            self.export(folder, self.controller.symprec)

    def export(self, folder: str | Path, symprec: float | None = None) -> list[Path]:
        from core.export import export_cifs

        shown = [(i, self.rows[i].get("structure")) for i in self.visible_indices()]
        items = [(f"batch_{i + 1:03d}_{s.composition.reduced_formula}", s) for i, s in shown if s is not None]
        out, failed = export_cifs(folder, items, symprec)
        if failed:
            lines = [f"{items[k][0]}.cif: {exc}" for k, exc in failed]
            self.controller.error.emit("Some crystals not exported", "\n".join(lines))
        self.summary.setText(f"exported {len(out)} CIFs to {folder}")
        return out
