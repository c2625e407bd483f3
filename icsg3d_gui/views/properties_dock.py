"""Properties dock: formula, space group (with symprec), cell, CGCNN predictions, validity badges."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

from core.units import with_unit
from icsg3d_gui.analysis import COVALENT_OVERLAP
from icsg3d_gui.state import AppState

GOOD, BAD, NEUTRAL, KNOWN = "#1b7f3b", "#b3261e", "#555555", "#2f5d8a"


def badge(
    label: QLabel, ok: bool | None, yes: str, no: str, unknown: str = "–", no_colour: str | None = None
) -> None:
    """Green/red (or ``no_colour``) pill with text; grey when unknown."""
    text, colour = (unknown, NEUTRAL) if ok is None else ((yes, GOOD) if ok else (no, no_colour or BAD))
    label.setText(text)
    label.setStyleSheet(f"QLabel {{ color: white; background: {colour}; border-radius: 6px; padding: 1px 6px; }}")


class PropertiesDock(QWidget):
    """Reads ``state.analysis`` and ``state.properties``; ``symprecChanged`` asks for re-analysis."""

    symprecChanged = Signal(float)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        crystal = QGroupBox("Crystal")
        form = QFormLayout(crystal)
        self.fields: dict[str, QLabel] = {}
        for key, title in (("formula", "Formula"), ("source", "Source"), ("spacegroup", "Space group"),
                           ("cell", "Cell a, b, c (Å)"), ("volume", "Volume (Å³)"), ("density", "Density (g/cm³)"),
                           ("min_distance", "Min. distance (Å)")):
            self.fields[key] = QLabel("–")
            self.fields[key].setWordWrap(True)
            form.addRow(title, self.fields[key])
        self.symprec = QDoubleSpinBox()
        self.symprec.setDecimals(3)
        self.symprec.setRange(0.001, 1.0)
        self.symprec.setSingleStep(0.01)
        self.symprec.setValue(0.1)
        self.symprec.setSuffix(" Å")
        self.symprec.setToolTip("Tolerance of the space-group search (spglib symprec)")
        self.symprec.valueChanged.connect(self.symprecChanged)
        form.addRow("symprec", self.symprec)
        layout.addWidget(crystal)
        valid = QGroupBox("Validity")
        vform = QFormLayout(valid)
        self.badges = {k: QLabel("–") for k in ("struct", "comp", "novel", "recon")}
        vform.addRow("Distances (covalent radii)", self.badges["struct"])
        vform.addRow("Oxidation states", self.badges["comp"])
        vform.addRow("Novelty (training set)", self.badges["novel"])
        vform.addRow("Model's reconstruction", self.badges["recon"])
        layout.addWidget(valid)
        self.pred_box = QGroupBox("Predicted (CGCNN)")
        self.pred_form = QFormLayout(self.pred_box)
        layout.addWidget(self.pred_box)
        layout.addStretch(1)
        state.propertiesChanged.connect(self.refresh)
        state.structureChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        a = self.state.analysis
        f = self.fields
        f["source"].setText(self.state.source or "–")
        if self.state.structure is None or "spacegroup" not in a:
            for key in ("formula", "spacegroup", "cell", "volume", "density", "min_distance"):
                f[key].setText("–")
            f["formula"].setText(a.get("error", "no crystal") if self.state.structure is None else a.get("formula", "–"))
            if a.get("pending"):
                f["spacegroup"].setText("<i>analysing …</i>")
            elif a.get("error") and self.state.structure is not None:
                f["spacegroup"].setText(f"<i>analysis failed: {a['error']}</i>")
            for lab in self.badges.values():
                badge(lab, None, "", "")
        else:
            f["formula"].setText(f"<b>{a['formula']}</b> ({a['n_sites']} sites)")
            f["spacegroup"].setText(f"{a['spacegroup']} (No. {a['spacegroup_number']})")
            f["cell"].setText(", ".join(f"{x:.3f}" for x in a["abc"]))
            f["volume"].setText(f"{a['volume']:.2f}")
            f["density"].setText(f"{a['density']:.3f}")
            f["min_distance"].setText(f"{a['min_distance']:.3f}")
            self._distance_badge(a)
            text, ok = a.get("oxidation_states", "–"), a.get("oxidation_ok")
            badge(self.badges["comp"], ok, text, text, unknown=text)
            novel = a.get("novel")
            # a known crystal is information, not an error: blue, not red
            badge(self.badges["novel"], novel, "new", f"known: {a.get('known')} (training set)", no_colour=KNOWN,
                  unknown="n/a (no training index)" if self.state.has_model else "n/a (no model set)")
            self._reconstruction_badge(a)
        self._refresh_predictions()

    def _reconstruction_badge(self, a: dict) -> None:
        """For an opened crystal: what the model makes of it (encode -> decode), match or not."""
        r = a.get("reconstruction")
        if r is None:
            decoded = self.state.source.startswith(("decoded", "interpolation", "batch"))
            badge(self.badges["recon"], None, "", "", unknown="n/a (a decoded crystal)" if decoded else "–")
            return
        made = r.get("formula") or f"no crystal ({r.get('error') or 'segmentation failed'})"
        badge(self.badges["recon"], bool(r.get("match")), f"{made}: match", f"{made}: no match")

    def _distance_badge(self, a: dict) -> None:
        """Green when no two atoms are closer than 0.7 x their covalent radii (and >= 0.5 Å)."""
        c = a.get("closest") or {}
        if c.get("ratio") is None:
            badge(self.badges["struct"], a["struct_valid"], "ok (one atom)", "too close")
            return
        ok = a["struct_valid"] and c["ratio"] >= COVALENT_OVERLAP
        text = f"{c['pair']} {c['distance']:.2f} Å ({c['ratio']:.2f} × r_cov)"
        badge(self.badges["struct"], ok, f"ok: closest {text}", f"too close: {text}")

    def _refresh_predictions(self) -> None:
        while self.pred_form.rowCount():
            self.pred_form.removeRow(0)
        props = self.state.properties
        if not props:
            if not self.state.has_model:
                reason = "no model set loaded"
            elif not self.state.model_info.get("properties"):
                reason = "this model set has no CGCNN"
            else:
                reason = "none for this crystal"
            self.pred_form.addRow(QLabel(f"<i>{reason}</i>"))
            return
        for name, value in props.items():
            self.pred_form.addRow(name, QLabel(with_unit(name, value) if isinstance(value, float) else str(value)))
