"""The crystallographer's tools of the 3-D view, read back from what VTK draws: bond rules per
element pair (and bonds across supercell edges), the (hkl) slice, several isosurfaces picked on the
density histogram, site labels and hover info.

Expected values are computed here independently (brute-force distances, scipy interpolation of
the state's grid, the structure's own sites), never with the viewer's helpers.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy.ndimage import map_coordinates

pytestmark = pytest.mark.gui


# ---- helpers ---------------------------------------------------------------------------------
def drawn_half_sticks(win) -> np.ndarray:  # noqa: ANN001
    """Centres (K, 3) of the drawn half-stick tubes (two per bond), from the bonds actor's mesh
    (its connected pieces: each tube body, and the flat end caps, which are left out)."""
    actor = win.viewer.plotter.actors.get("bonds")
    if actor is None:
        return np.zeros((0, 3))
    win.viewer.render_now()  # smooth shading feeds the mapper through a normals filter: run it
    mesh = actor.mapper.dataset.connectivity()
    ids = np.asarray(mesh.point_data["RegionId"])
    pieces = [mesh.points[ids == r] for r in np.unique(ids)]
    return np.array([p.mean(axis=0) for p in pieces if np.ptp(p, axis=0).max() > 0.2]).reshape(-1, 3)


def expected_half_sticks(win, rules: dict[frozenset, tuple[float, float]]) -> np.ndarray:  # noqa: ANN001
    """Quarter points of every bond between displayed atoms (brute force) allowed by ``rules``."""
    cart, symbols = win.viewer.info.cart, win.viewer.info.symbols
    out = []
    for i in range(len(cart)):
        for j in range(i + 1, len(cart)):
            rule = rules.get(frozenset((symbols[i], symbols[j])))
            d = np.linalg.norm(cart[i] - cart[j])
            if rule is not None and rule[0] < d < rule[1]:
                out += [cart[i] + 0.25 * (cart[j] - cart[i]), cart[i] + 0.75 * (cart[j] - cart[i])]
    return np.asarray(out).reshape(-1, 3)


def assert_same_points(drawn: np.ndarray, expected: np.ndarray, tol: float = 1e-3) -> None:
    assert len(drawn) == len(expected), f"{len(drawn)} half-sticks drawn, {len(expected)} expected"
    for p in expected:
        assert np.linalg.norm(drawn - p, axis=1).min() < tol, f"no bond drawn at {p}"


def show_grid(win, rho: np.ndarray, lattice: np.ndarray) -> None:  # noqa: ANN001
    st = win.state
    st.set_density(rho, lattice)
    st.set_segmentation(None)
    st.set_structure(None, "test grid")


# ---- 1. bond rules -----------------------------------------------------------------------------
def test_bond_rules_per_pair_decide_the_bonds_drawn(make_window, qtbot):
    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    box = win.display.bond_rules
    assert sorted(f"{r[0]}-{r[1]}" for r in box.rows) == ["O-O", "O-Sr", "O-Ti", "Sr-Sr", "Sr-Ti", "Ti-Ti"]
    ti_o = next(r for r in box.rows if r[:2] == ("O", "Ti"))
    assert ti_o[2] == 0.0 and ti_o[3] == pytest.approx(1.1 * (0.66 + 1.60), abs=0.02)  # covalent radii
    box.set_rule("O", "Sr", 0.0, 3.0, on=False)
    only_ti_o = {frozenset(("Ti", "O")): (0.0, ti_o[3])}
    assert_same_points(drawn_half_sticks(win), expected_half_sticks(win, only_ti_o))
    assert len(drawn_half_sticks(win)) == 12  # the TiO6 octahedron: 6 bonds
    box.set_rule("Sr", "Ti", 3.0, 3.5, on=True)  # Sr-Ti = 3.38 Å: the cube's 8 body diagonals
    both = {**only_ti_o, frozenset(("Sr", "Ti")): (3.0, 3.5)}
    assert_same_points(drawn_half_sticks(win), expected_half_sticks(win, both))
    assert len(drawn_half_sticks(win)) == 2 * (6 + 8)
    box.set_rule("O", "Ti", 2.0, 3.0)  # Ti-O = 1.95 Å is now too short
    box.set_rule("Sr", "Ti", 3.0, 3.5, on=False)
    assert "bonds" not in win.viewer.plotter.actors
    box.reset.click()
    assert win.viewer.settings.bond_rules == () and "bonds" in win.viewer.plotter.actors


def test_bonds_cross_the_edges_between_supercell_cells(make_window, qtbot):
    """Na at x = 0.1 and Cl at x = 0.6 of a 4 Å cube: one bond inside a cell, and in a 2x1x1
    supercell a third one across the face between the two cells (Cl 0.6 - Na 1.1)."""
    crystal = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0.1, 0.5, 0.5], [0.6, 0.5, 0.5]])
    win = make_window()
    assert win.controller.show_structure(crystal, "test", encode=False)
    rules = {frozenset(("Na", "Cl")): (0.0, 2.5)}
    win.display.bond_rules.set_rule("Cl", "Na", 0.0, 2.5)
    assert len(drawn_half_sticks(win)) == 2
    win.viewer.update_settings(repeat=(2, 1, 1))
    drawn = drawn_half_sticks(win)
    assert_same_points(drawn, expected_half_sticks(win, rules))
    assert len(drawn) == 6
    for x in (2.9, 3.9):  # the two halves of Cl (x = 2.4 Å) - Na (4.4 Å), across the face x = 4 Å
        assert np.linalg.norm(drawn - np.array([x, 2.0, 2.0]), axis=1).min() < 1e-3, x


# ---- 2. (hkl) slice ----------------------------------------------------------------------------
def plane_wave(d: int, hkl: tuple[int, int, int]) -> np.ndarray:
    """1 + cos(2 pi (h x + k y + l z)): constant on every (hkl) plane."""
    x = np.arange(d) / d
    fx, fy, fz = np.meshgrid(x, x, x, indexing="ij")
    return (1.0 + np.cos(2 * np.pi * (hkl[0] * fx + hkl[1] * fy + hkl[2] * fz))).astype(np.float32)


def test_hkl_slice_is_the_lattice_plane_coloured_by_density(make_window, qtbot):
    from icsg3d_gui.views.viewer3d import DENSITY_BAR

    lattice = np.diag([4.0, 5.0, 6.0])
    win = make_window()
    show_grid(win, plane_wave(16, (1, 1, 1)), lattice)
    win.viewer.update_settings(show_volume=False)
    win.display.hkl.setText("(1 1 1)")
    win.display.hkl.returnPressed.emit()
    win.display.hkl_position.setValue(40)  # plane h x + k y + l z = 0.4 x 3 = 1.2
    assert win.display.layer_checks["show_hkl"].isChecked()
    plane = win.viewer.plotter.actors["density_hkl"].mapper.dataset
    normal = np.array([1 / 4, 1 / 5, 1 / 6])
    normal /= np.linalg.norm(normal)  # h a* + k b* + l c*
    frac = plane.points @ np.linalg.inv(lattice)
    np.testing.assert_allclose(frac.sum(axis=1), 1.2, atol=1e-4)  # every point on the plane x+y+z = 1.2
    centred = plane.points - plane.points.mean(axis=0)
    assert np.abs(centred @ normal).max() < 1e-4
    rho = np.asarray(plane.point_data["rho"])
    np.testing.assert_allclose(rho, 1 + np.cos(2 * np.pi * 1.2), atol=0.05)  # the grid's value on that plane
    assert list(win.viewer.plotter.scalar_bars.keys()) == [DENSITY_BAR]  # the slice carries the colour bar
    # another plane through the same grid is not constant: the check above can fail
    win.display.hkl.setText("110")
    win.display.hkl.returnPressed.emit()
    other = win.viewer.plotter.actors["density_hkl"].mapper.dataset
    assert np.ptp(np.asarray(other.point_data["rho"])) > 1.0
    win.display.layer_checks["show_hkl"].setChecked(False)
    assert "density_hkl" not in win.viewer.plotter.actors and not list(win.viewer.plotter.scalar_bars.keys())


# ---- 3. isosurfaces picked on the histogram ------------------------------------------------------
def sampled(win, points: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The state's periodic grid at Cartesian ``points``, trilinear (scipy, independent of VTK)."""
    st = win.state
    idx = (points @ np.linalg.inv(st.lattice)) * np.asarray(st.density.shape)
    return map_coordinates(st.density.astype(float), idx.T, order=1, mode="grid-wrap")


def test_several_isosurfaces_follow_the_current_grid(make_window, qtbot):
    from PySide6.QtCore import QPoint, Qt

    win = make_window()
    win.open_gallery("NaCl_rocksalt")
    panel = win.display.iso_panel
    hist = panel.histogram
    assert hist.vmax == pytest.approx(float(win.state.density.max()))
    qtbot.mouseClick(hist, Qt.MouseButton.LeftButton, pos=QPoint(int(hist.level_x(0.1)), 20))
    panel.add_level()
    panel.set_selected_fraction(0.5)
    panel.opacity.setValue(0.8)
    assert win.display.layer_checks["show_iso"].isChecked()
    levels = win.viewer.settings.iso_levels
    assert len(levels) == 2 and levels[0][0] == pytest.approx(0.1, abs=0.02) and levels[1][0] == 0.5
    win.open_gallery("CsCl_cscl")  # the levels stay fractions; their values follow the new grid
    assert hist.vmax == pytest.approx(float(win.state.density.max()))
    vmax = float(win.state.density.max())
    win.viewer.render_now()
    for i, (fraction, colour, opacity) in enumerate(levels):
        actor = win.viewer.plotter.actors[f"density_iso_{i}"]
        mesh = actor.mapper.dataset
        assert mesh.n_points > 0
        np.testing.assert_allclose(sampled(win, np.asarray(mesh.points)), fraction * vmax, rtol=1e-3, atol=1e-4)
        assert actor.prop.opacity == pytest.approx(opacity)
        assert np.allclose(actor.prop.color.float_rgb, tuple(int(colour[k:k + 2], 16) / 255 for k in (1, 3, 5)))
    panel.remove_level()
    assert "density_iso_1" not in win.viewer.plotter.actors and "density_iso_0" in win.viewer.plotter.actors


# ---- 4. labels and hover -------------------------------------------------------------------------
def test_labels_name_each_drawn_atom_by_its_site(make_window, qtbot):
    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    win.display.layer_checks["show_labels"].setChecked(True)
    mapper = win.viewer.plotter.actors["labels"].GetMapper()
    data = mapper.GetInput()
    texts = data.GetPointData().GetAbstractArray("labels")
    labels = [texts.GetValue(i) for i in range(texts.GetNumberOfValues())]
    points = np.array([data.GetPoint(i) for i in range(data.GetNumberOfPoints())])
    structure = win.state.structure
    assert len(labels) == len(points) == 15  # Sr at 8 corners, Ti, O on 6 faces
    for text, point in zip(labels, points, strict=True):
        site = structure[int(text.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")) - 1]
        assert text.startswith(site.specie.symbol)
        diff = structure.lattice.get_fractional_coords(point) - site.frac_coords
        assert np.allclose(diff, np.round(diff), atol=1e-6), (text, point)
    win.display.layer_checks["show_labels"].setChecked(False)
    assert "labels" not in win.viewer.plotter.actors


def test_hover_names_the_atom_under_the_mouse(make_window, qtbot):
    win = make_window()
    win.resize(1500, 900)  # the test window's default leaves the 3-D view too narrow to aim at
    qtbot.wait(50)
    win.open_gallery("SrTiO3_perovskite")
    viewer = win.viewer
    viewer.view_along_uvw((1, 1, 0))  # Ti in the middle, no atom in front of it
    viewer.render_now()
    ren = viewer.plotter.renderer
    ti = next(i for i, s in enumerate(win.state.structure) if s.specie.symbol == "Ti")
    centre = win.state.structure[ti].coords
    ren.SetWorldPoint(*centre, 1.0)
    ren.WorldToDisplay()
    x, y, _ = ren.GetDisplayPoint()
    seen = []
    viewer.atomHovered.connect(seen.append)
    text = viewer.hover_at(x + 3, y - 2)
    assert text.startswith(f"Ti{ti + 1} ") and f"site {ti + 1}" in text and "frac (0.500, 0.500, 0.500)" in text
    corner = viewer.plotter.actors["hover_info"]
    assert corner.GetText(0) == text  # drawn in the lower-left corner
    assert seen == [text]
    assert viewer.hover_at(2, 2) is None and "hover_info" not in viewer.plotter.actors  # empty space
    # looking down a, O (x = 0), Ti (x = 0.5) and O (x = 1) overlap on screen: the one in front is named
    viewer.view_along(0)
    viewer.render_now()
    ren.SetWorldPoint(*centre, 1.0)
    ren.WorldToDisplay()
    x, y, _ = ren.GetDisplayPoint()
    camera = np.asarray(viewer.plotter.camera.position)
    a = win.state.structure.lattice.a
    front = min((0.0, 1.0), key=lambda fx: np.linalg.norm(camera - np.array([fx * a, centre[1], centre[2]])))
    text = viewer.hover_at(x, y)
    assert text.startswith("O") and f"frac ({front:.3f}, 0.500, 0.500)" in text, text


def test_a_resting_mouse_gets_the_hover_info(make_window, qtbot):
    """The real path: a mouse move over the view -> (after it rests) the atom's info in the status bar."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    win = make_window()
    win.resize(1500, 900)
    qtbot.wait(50)
    win.open_gallery("SrTiO3_perovskite")
    viewer = win.viewer
    viewer.view_along_uvw((1, 1, 0))
    viewer.render_now()
    ren = viewer.plotter.renderer
    ren.SetWorldPoint(*win.state.structure[1].coords, 1.0)  # site 2: Ti in the gallery's SrTiO3
    ren.WorldToDisplay()
    x, y, _ = ren.GetDisplayPoint()
    widget = viewer.plotter.interactor
    ratio = widget.devicePixelRatioF()
    pos = QPointF(x / ratio, widget.height() - y / ratio)  # Qt: origin top left, logical pixels
    event = QMouseEvent(QMouseEvent.Type.MouseMove, pos, widget.mapToGlobal(pos), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    qtbot.waitUntil(lambda: "hover_info" in viewer.plotter.actors, timeout=3000)
    assert win.statusBar().currentMessage().startswith("Ti2 (site 2, Ti): frac (0.500, 0.500, 0.500)")


def test_viewer_tool_settings_survive_a_session(make_window, qtbot):
    import json

    from icsg3d_gui import session

    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    win.display.bond_rules.set_rule("O", "Sr", 0.0, 3.0, on=False)
    win.display.iso_panel.add_level()
    win.viewer.update_settings(show_hkl=True, slice_hkl=(1, 1, 0), show_labels=True)
    data = json.loads(json.dumps(session.to_dict(win)))
    win2 = make_window()
    session.apply(win2, data)
    s1, s2 = win.viewer.settings, win2.viewer.settings
    assert (s2.bond_rules, s2.iso_levels, s2.slice_hkl) == (s1.bond_rules, s1.iso_levels, s1.slice_hkl)
    assert {"density_hkl", "labels", "density_iso_1"} <= set(win2.viewer.plotter.actors)
    assert [r for r in win2.display.bond_rules.rows if r[:2] == ("O", "Sr")][0][4] is False
    assert win2.display.iso_panel.list.count() == 2
