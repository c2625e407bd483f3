"""Bond rules per element pair (Display dock): one row per pair of the shown crystal's elements,
with min and max distance (Å) and an on/off box. Defaults come from covalent radii x the bond
tolerance (``display_settings.effective_rules``); an edited row is stored in
``DisplaySettings.bond_rules`` and the viewer redraws bonds and polyhedra with it.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGroupBox,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from icsg3d_gui.display_settings import BondRule, effective_rules, set_rule
from icsg3d_gui.views import scene
from icsg3d_gui.views.viewer3d import Viewer3D


class BondRulesBox(QGroupBox):
    """The table of the shown crystal's element pairs; edits go to ``viewer.settings``."""

    def __init__(self, viewer: Viewer3D, parent: QWidget | None = None) -> None:
        super().__init__("Bond rules (Å)", parent)
        self.viewer = viewer
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["pair", "min", "max", "on"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("A bond is drawn when min < d < max and the pair is on; "
                              "defaults: max = tolerance × (r_cov,i + r_cov,j)")  # fmt: skip
        layout.addWidget(self.table)
        self.reset = QPushButton("Defaults from covalent radii")
        self.reset.clicked.connect(lambda: self.viewer.update_settings(bond_rules=()) or self.refresh())
        layout.addWidget(self.reset)
        self.rows: list[BondRule] = []
        viewer.state.structureChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Rows for the shown crystal's pairs (none without a crystal)."""
        st, s = self.viewer.state, self.viewer.settings
        symbols = scene.frac_and_symbols(st.structure)[1] if st.structure is not None else []
        rules = effective_rules(symbols, s.bond_tolerance, s.bond_rules)
        rows = list(rules.values())
        if rows == self.rows and self.table.rowCount() == len(rows):
            return
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, (a, b, lo, hi, on) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(f"{a}–{b}"))
            for col, value in ((1, lo), (2, hi)):
                spin = QDoubleSpinBox()
                spin.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)  # narrow cells: type or wheel
                spin.setRange(0.0, 6.0)
                spin.setDecimals(2)
                spin.setSingleStep(0.05)
                spin.setValue(value)
                spin.valueChanged.connect(lambda _v, row=i: self._edited(row))
                self.table.setCellWidget(i, col, spin)
            check = QCheckBox()
            check.setChecked(on)
            check.toggled.connect(lambda _on, row=i: self._edited(row))
            self.table.setCellWidget(i, 3, check)
        self.table.setFixedHeight(28 + 30 * min(len(rows), 6))

    def rule(self, row: int) -> BondRule:
        """The rule row ``row`` of the table says."""
        a, b = self.rows[row][:2]
        lo, hi = (self.table.cellWidget(row, c).value() for c in (1, 2))
        return (a, b, float(lo), float(hi), bool(self.table.cellWidget(row, 3).isChecked()))

    def set_rule(self, a: str, b: str, lo: float, hi: float, on: bool = True) -> None:
        """Edit the row of pair a-b as a user would (tests, sessions)."""
        for row, rule in enumerate(self.rows):
            if {rule[0], rule[1]} == {a, b} and (a == b) == (rule[0] == rule[1]):
                for col, value in ((1, lo), (2, hi)):
                    self.table.cellWidget(row, col).blockSignals(True)
                    self.table.cellWidget(row, col).setValue(value)
                    self.table.cellWidget(row, col).blockSignals(False)
                self.table.cellWidget(row, 3).blockSignals(True)
                self.table.cellWidget(row, 3).setChecked(on)
                self.table.cellWidget(row, 3).blockSignals(False)
                self._edited(row)
                return
        raise KeyError(f"{a}-{b} is not a pair of the shown crystal")

    def _edited(self, row: int) -> None:
        rule = self.rule(row)
        self.rows[row] = rule
        self.viewer.update_settings(bond_rules=set_rule(self.viewer.settings.bond_rules, rule))
