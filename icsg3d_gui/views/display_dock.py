"""Display dock: layer toggles, transfer function, isosurfaces over a histogram, slices (a, b, c
and (hkl)), atoms, bond rules, supercell, view buttons."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from icsg3d_gui.views.bond_rules import BondRulesBox
from icsg3d_gui.views.iso_panel import IsoPanel
from icsg3d_gui.views.viewer3d import Viewer3D

CMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "coolwarm", "Blues", "Greys")
OPACITIES = ("translucent", "sigmoid", "linear", "geom", "sigmoid_3", "sigmoid_10", "linear_r")
LAYERS = (
    ("show_volume", "Density volume"), ("show_iso", "Isosurfaces"), ("show_slices", "Slice planes"),
    ("show_hkl", "(hkl) slice"), ("show_blobs", "Segmentation blobs"), ("show_atoms", "Atoms"),
    ("show_bonds", "Bonds"), ("show_labels", "Labels"), ("show_cell", "Unit cell"), ("show_polyhedra", "Polyhedra"),
    ("blob_truth", "Blobs: true labels"),
)


def parse_uvw(text: str) -> tuple[int, int, int] | None:
    """"1 1 0", "[1,-1,0]", "110" or "1-10" -> (u, v, w); None if it is not a direction. Also
    reads Miller indices "(1 1 1)"."""
    import re

    cleaned = text.strip().strip("[]()")
    parts = re.findall(r"-?\d+", cleaned)
    if len(parts) != 3 and re.fullmatch(r"(-?\d){3}", cleaned.replace(" ", "")):
        parts = re.findall(r"-?\d", cleaned)
    if len(parts) != 3:
        return None
    uvw = tuple(int(p) for p in parts)
    return None if uvw == (0, 0, 0) else uvw  # type: ignore[return-value]


def _slider(lo: int, hi: int, value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


class DisplayDock(QWidget):
    """Edits ``viewer.settings``; each change redraws through ``Viewer3D.update_settings``."""

    def __init__(self, viewer: Viewer3D, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        s = viewer.settings
        layout = QVBoxLayout(self)
        layout.addWidget(self._layers_box(s))
        layout.addWidget(self._volume_box(s))
        layout.addWidget(self._atoms_box(s))
        self.bond_rules = BondRulesBox(viewer)
        layout.addWidget(self.bond_rules)
        layout.addWidget(self._view_box())
        layout.addStretch(1)

    def _layers_box(self, s) -> QGroupBox:  # noqa: ANN001
        box = QGroupBox("Layers")
        grid = QGridLayout(box)
        self.layer_checks: dict[str, QCheckBox] = {}
        for i, (key, label) in enumerate(LAYERS):
            cb = QCheckBox(label)
            cb.setChecked(getattr(s, key))
            cb.toggled.connect(lambda on, k=key: self.viewer.update_settings(**{k: on}))
            grid.addWidget(cb, i // 2, i % 2)
            self.layer_checks[key] = cb
        return box

    def _volume_box(self, s) -> QGroupBox:  # noqa: ANN001
        box = QGroupBox("Density")
        form = QFormLayout(box)
        self.cmap = QComboBox()
        self.cmap.addItems(CMAPS)
        self.cmap.currentTextChanged.connect(lambda t: self.viewer.update_settings(cmap=t))
        form.addRow("Colour map", self.cmap)
        self.opacity = QComboBox()
        self.opacity.addItems(OPACITIES)
        self.opacity.currentTextChanged.connect(lambda t: self.viewer.update_settings(opacity=t))
        form.addRow("Opacity curve", self.opacity)
        self.range_lo, self.range_hi = QDoubleSpinBox(), QDoubleSpinBox()
        for spin, val in ((self.range_lo, s.clim_fraction[0]), (self.range_hi, s.clim_fraction[1])):
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.05)
            spin.setValue(val)
            spin.valueChanged.connect(self._range_changed)
        row = QHBoxLayout()
        row.addWidget(self.range_lo)
        row.addWidget(self.range_hi)
        form.addRow("Range (× max)", row)
        self.log_scale = QCheckBox("log scale")
        self.log_scale.setToolTip("Logarithmic colour/opacity mapping: light anions stay visible next to heavy cations")
        self.log_scale.toggled.connect(lambda on: self.viewer.update_settings(log_scale=on))
        form.addRow("", self.log_scale)
        self.vol_opacity = _slider(5, 100, int(s.volume_opacity * 100))
        self.vol_opacity.valueChanged.connect(lambda v: self.viewer.update_settings(volume_opacity=v / 100))
        form.addRow("Volume opacity", self.vol_opacity)
        self.iso_panel = IsoPanel(self.viewer)
        self.iso_panel.levelsChanged.connect(lambda: self._check("show_iso"))
        form.addRow(self.iso_panel)  # the full width: the histogram is the picker
        self.slice_sliders = []
        for axis, name in enumerate("abc"):
            sl = _slider(0, 100, int(s.slice_frac[axis] * 100))
            sl.valueChanged.connect(self._slices_changed)
            self.slice_sliders.append(sl)
            form.addRow(f"Slice ⟂ {name}", sl)
        row = QHBoxLayout()
        self.hkl = QLineEdit(" ".join(map(str, s.slice_hkl)))
        self.hkl.setMaximumWidth(70)
        self.hkl.setToolTip("Miller indices of the (hkl) slice, e.g. 1 1 0 or 111, then Enter")
        self.hkl.returnPressed.connect(self._hkl_entered)
        self.hkl_position = _slider(0, 100, int(s.hkl_position * 100))
        self.hkl_position.setToolTip("Position of the (hkl) plane across the cell")
        self.hkl_position.valueChanged.connect(lambda v: self.viewer.update_settings(hkl_position=v / 100))
        row.addWidget(self.hkl)
        row.addWidget(self.hkl_position)
        form.addRow("(hkl) slice", row)
        return box

    def _atoms_box(self, s) -> QGroupBox:  # noqa: ANN001
        box = QGroupBox("Crystal")
        form = QFormLayout(box)
        self.radius = _slider(5, 100, int(s.radius_scale * 100))
        self.radius.valueChanged.connect(lambda v: self.viewer.update_settings(radius_scale=v / 100))
        form.addRow("Atom radius", self.radius)
        self.bond_tol = QDoubleSpinBox()
        self.bond_tol.setRange(0.5, 2.0)
        self.bond_tol.setSingleStep(0.05)
        self.bond_tol.setValue(s.bond_tolerance)
        self.bond_tol.setToolTip("Bond when d < tolerance × (r_cov,i + r_cov,j)")
        self.bond_tol.valueChanged.connect(self._tolerance_changed)
        form.addRow("Bond tolerance", self.bond_tol)
        self.scheme = QComboBox()
        self.scheme.addItems(["VESTA", "Jmol"])
        self.scheme.currentTextChanged.connect(lambda t: self.viewer.update_settings(scheme=t))
        form.addRow("Colours", self.scheme)
        row = QHBoxLayout()
        self.repeat = []
        for _ in range(3):
            spin = QSpinBox()
            spin.setRange(1, 4)
            spin.valueChanged.connect(self._repeat_changed)
            row.addWidget(spin)
            self.repeat.append(spin)
        form.addRow("Supercell", row)
        return box

    def _view_box(self) -> QGroupBox:
        box = QGroupBox("View")
        rows = QVBoxLayout(box)
        row = QHBoxLayout()
        second = QHBoxLayout()  # two short rows: the dock must not widen (the 3-D view would shrink)
        rows.addLayout(row)
        rows.addLayout(second)
        for axis, name in enumerate("abc"):
            b = QPushButton(f"along {name}")
            b.setToolTip(f"Look down the {name} axis")
            b.clicked.connect(lambda _=False, ax=axis: self.viewer.view_along(ax))
            row.addWidget(b)
        reset = QPushButton("Reset")
        reset.clicked.connect(self.viewer.reset_view)
        row.addWidget(reset)
        self.uvw = QLineEdit()
        self.uvw.setPlaceholderText("[uvw]")
        self.uvw.setMaximumWidth(70)
        self.uvw.setToolTip("Look down a lattice direction, e.g. 1 1 0 or 111, then Enter")
        self.uvw.returnPressed.connect(self._uvw_entered)
        second.addWidget(self.uvw)
        self.orthographic = QCheckBox("ortho")
        self.orthographic.setToolTip("Parallel projection (no perspective)")
        self.orthographic.toggled.connect(lambda on: self.viewer.update_settings(orthographic=bool(on)))
        second.addWidget(self.orthographic)
        self.lock_camera = QCheckBox("lock")
        self.lock_camera.setToolTip("Keep the camera when the cell changes (otherwise it refits to each new cell)")
        self.lock_camera.toggled.connect(lambda on: self.viewer.update_settings(lock_camera=bool(on)))
        second.addWidget(self.lock_camera)
        second.addStretch(1)
        return box

    def refresh(self) -> None:
        """Show ``viewer.settings`` in the widgets (after a session restore), without feedback."""
        s = self.viewer.settings
        values = [(cb, getattr(s, key)) for key, cb in self.layer_checks.items()]
        values += [(self.log_scale, s.log_scale), (self.range_lo, s.clim_fraction[0]),
                   (self.range_hi, s.clim_fraction[1]), (self.vol_opacity, int(s.volume_opacity * 100)),
                   (self.hkl_position, int(s.hkl_position * 100)), (self.radius, int(s.radius_scale * 100)),
                   (self.bond_tol, s.bond_tolerance), (self.cmap, s.cmap), (self.opacity, s.opacity),
                   (self.scheme, s.scheme), (self.lock_camera, s.lock_camera),
                   (self.orthographic, s.orthographic)]
        values += [(sl, int(f * 100)) for sl, f in zip(self.slice_sliders, s.slice_frac, strict=True)]
        values += [(sp, int(r)) for sp, r in zip(self.repeat, s.repeat, strict=True)]
        for widget, value in values:
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentText(str(value))
            else:
                widget.setValue(value)
            widget.blockSignals(False)
        self.hkl.setText(" ".join(map(str, s.slice_hkl)))
        self.iso_panel.refresh()
        self.bond_rules.refresh()

    def _tolerance_changed(self, value: float) -> None:
        self.viewer.update_settings(bond_tolerance=value)
        self.bond_rules.refresh()  # the default rules follow the tolerance

    def _hkl_entered(self) -> None:
        hkl = parse_uvw(self.hkl.text())
        if hkl is None:
            self.hkl.setStyleSheet("QLineEdit { background: #ffd6d6; }")
            return
        self.hkl.setStyleSheet("")
        self.viewer.update_settings(slice_hkl=hkl, show_hkl=True)
        self._check("show_hkl")

    def _check(self, key: str) -> None:
        """Tick a layer box the viewer already shows (no feedback)."""
        box = self.layer_checks[key]
        box.blockSignals(True)
        box.setChecked(bool(getattr(self.viewer.settings, key)))
        box.blockSignals(False)

    def _uvw_entered(self) -> None:
        uvw = parse_uvw(self.uvw.text())
        if uvw is None:
            self.uvw.setStyleSheet("QLineEdit { background: #ffd6d6; }")
            return
        self.uvw.setStyleSheet("")
        self.viewer.view_along_uvw(uvw)

    def _range_changed(self) -> None:
        self.viewer.update_settings(clim_fraction=(self.range_lo.value(), self.range_hi.value()))

    def _slices_changed(self) -> None:
        frac = tuple(sl.value() / 100 for sl in self.slice_sliders)
        self.viewer.update_settings(slice_frac=frac)

    def _repeat_changed(self) -> None:
        self.viewer.update_settings(repeat=tuple(sp.value() for sp in self.repeat))
