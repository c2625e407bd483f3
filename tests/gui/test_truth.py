"""What is drawn is what the state says: the volume mapper's input against the state's grid, and
the camera against the cell, after every kind of update (gallery, file, slider, Random,
interpolation frame, batch row, undo/redo).

These read the data VTK actually draws (``actor.mapper.dataset``), not the app's own state:
pyvista's ``add_volume`` copies its input, so a view that updates the grid it passed in would
pass a state check and still show the first crystal.
"""

from __future__ import annotations

import numpy as np
import pytest

from icsg3d_gui.views import scene
from tests.gui.conftest import fake_window_with_crystal, run_interpolation, wait_for_model
from tests.gui.fakes import FakeModelSet

pytestmark = pytest.mark.gui

CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)


def drawn_volume(win):  # noqa: ANN001, ANN201
    return win.viewer.plotter.actors["density_volume"].mapper.dataset


def projected_cell(win, grow: float = 1.0) -> np.ndarray:
    """Display coordinates (8, 2) of the shown (super)cell's corners, through the live camera
    (``grow``: the cell scaled about its centre, for the atoms and density that stick out)."""
    ren = win.viewer.plotter.renderer
    lat = win.viewer._lattice()
    centre = 0.5 * lat.sum(axis=0)
    out = []
    for corner in centre + grow * (CORNERS @ lat - centre):
        ren.SetWorldPoint(*corner, 1.0)
        ren.WorldToDisplay()
        out.append(ren.GetDisplayPoint()[:2])
    return np.asarray(out)


def assert_draws_state(win) -> None:  # noqa: ANN001
    """The volume on screen holds the state's density over the state's cell, and the camera frames
    that cell: all of it in view, and not a speck (>= 25 % of the view's smaller side)."""
    st, viewer = win.state, win.viewer
    viewer.render_now()
    expected = scene.density_mesh(st.density, st.lattice, viewer.settings.repeat, name="rho",
                                  margin=viewer._margin(st.density))
    drawn = drawn_volume(win)
    np.testing.assert_allclose(np.asarray(drawn.point_data["rho"]), np.asarray(expected.point_data["rho"]),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(drawn.bounds, expected.bounds, atol=1e-4)
    width, height = viewer.plotter.renderer.GetSize()
    xy = projected_cell(win)
    assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= width).all(), f"cell cut off: x {xy[:, 0]} of {width}"
    assert (xy[:, 1] >= 0).all() and (xy[:, 1] <= height).all(), f"cell cut off: y {xy[:, 1]} of {height}"
    span = (xy.max(axis=0) - xy.min(axis=0)).max()
    assert span >= 0.25 * min(width, height), f"cell drawn as a speck: {span:.0f} px of {width}x{height}"
    bar = next(iter(viewer.plotter.scalar_bars.values()), None)
    if bar is not None:  # the colour bar never sits on the cell
        bar_left = bar.GetPositionCoordinate().GetValue()[0] * width
        right = projected_cell(win, grow=1.3)[:, 0].max()  # corner atoms stick out of the cell
        assert right < bar_left, f"crystal under the colour bar: x {right:.0f} >= {bar_left:.0f}"


def test_gallery_sequence_draws_each_crystal(make_window, qtbot):
    win = make_window()
    for name in ("NaCl_rocksalt", "CsCl_cscl", "ZnS_zincblende", "SrTiO3_perovskite", "KCl_rocksalt",
                 "SrTiO3_perovskite"):
        assert win.open_gallery(name), name
        assert_draws_state(win)


def test_opened_file_replaces_the_volume(make_window, qtbot, tmp_path):
    from tests.gui.fakes import rocksalt

    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    path = tmp_path / "big.cif"
    rocksalt(7.5, "Rb", "I").to(filename=str(path))
    assert win.open_path(path)
    assert win.state.structure.composition.reduced_formula == "RbI"
    assert_draws_state(win)


def test_lock_keeps_the_camera(make_window, qtbot):
    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    win.viewer.render_now()
    before = np.asarray(win.viewer.plotter.camera.position)
    win.viewer.update_settings(lock_camera=True)
    win.open_gallery("KCl_rocksalt")
    np.testing.assert_allclose(win.viewer.plotter.camera.position, before)
    win.viewer.update_settings(lock_camera=False)
    win.open_gallery("NaCl_rocksalt")
    assert_draws_state(win)


def test_every_latent_update_draws_its_density(make_window, qtbot):
    model = FakeModelSet()
    win = fake_window_with_crystal(make_window, qtbot, model)
    first = win.state.density.copy()

    def settled(source: str) -> None:
        qtbot.waitUntil(lambda: win.state.source.startswith(source) and win.controller.worker.idle(),
                        timeout=10000)
        assert_draws_state(win)

    # slider drag (the live path) and settle
    slider = win.latent.sliders[1]
    slider.setValue(250)
    win.latent.settle.stop()
    qtbot.waitUntil(lambda: win.state.preview and not np.allclose(win.state.density, first), timeout=10000)
    assert_draws_state(win)
    slider.sliderReleased.emit()
    settled("decoded")
    # Random
    dragged = win.state.density.copy()
    win.latent.random()
    qtbot.waitUntil(lambda: not np.allclose(win.state.density, dragged), timeout=10000)
    settled("")
    # undo / redo
    win.latent.undo()
    qtbot.waitUntil(lambda: win.controller.worker.idle(), timeout=10000)
    assert_draws_state(win)
    win.latent.redo()
    qtbot.waitUntil(lambda: win.controller.worker.idle(), timeout=10000)
    assert_draws_state(win)


def test_interpolation_frames_and_batch_rows_draw_their_density(make_window, qtbot, boxes):
    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    dock = win.interp
    run_interpolation(win, qtbot, "NaCl_rocksalt", "KCl_rocksalt", 5, boxes)
    assert boxes["critical"] == []
    densities = []
    for i in (0, 4, 2):
        dock.scrubber.setValue(i)
        assert_draws_state(win)
        densities.append(np.asarray(drawn_volume(win).point_data["rho"]).copy())
    assert not np.allclose(densities[0], densities[1])  # the frames differ, so this checks something
    # batch rows
    batch = win.batch
    batch.n.setValue(4)
    batch.spread.setValue(1.5)
    batch.generate()
    qtbot.waitUntil(lambda: len(batch.rows) == 4, timeout=10000)
    shown = []
    for row in range(4):
        batch.show_row(row)
        assert_draws_state(win)
        shown.append(np.asarray(drawn_volume(win).point_data["rho"]).copy())
    assert any(not np.allclose(shown[0], s) for s in shown[1:])


def _screenshot_run(tmp_path, monkeypatch, files: list) -> tuple[int, object]:  # noqa: ANN001
    """main(FILES --screenshot) with the window it used kept for inspection."""
    from icsg3d_gui import app as app_module

    if not __import__("os").environ.get("DISPLAY"):
        pytest.skip("needs an X display")
    seen = {}
    real = app_module.take_screenshot

    def keep(app, window, path, timeout_s=120.0):  # noqa: ANN001, ANN202
        out = real(app, window, path, timeout_s)
        actor = window.viewer.plotter.actors.get("density_volume")
        seen["density"] = None if actor is None else np.asarray(actor.mapper.dataset.point_data["rho"]).copy()
        seen["history"] = [p.label for p in window.state.history.items]
        seen["formula"] = window.state.structure.composition.reduced_formula if window.state.structure else None
        seen["status"] = window.statusBar().currentMessage()
        return out

    monkeypatch.setattr(app_module, "take_screenshot", keep)
    code = app_module.main([*map(str, files), "--screenshot", str(tmp_path / "shot.png"),
                            "--models", str(tmp_path / "none"), "--size", "900x600"])
    return code, seen


def test_files_on_the_command_line_open_in_turn(qtbot, tmp_path, monkeypatch):
    from tests.gui.fakes import rocksalt

    nacl, kcl = tmp_path / "NaCl.cif", tmp_path / "KCl.cif"
    rocksalt(5.64).to(filename=str(nacl))
    rocksalt(6.29, "K", "Cl").to(filename=str(kcl))
    code, both = _screenshot_run(tmp_path, monkeypatch, [nacl, kcl])
    assert code == 0 and both["formula"] == "KCl"
    code, alone = _screenshot_run(tmp_path, monkeypatch, [kcl])
    assert code == 0
    np.testing.assert_allclose(both["density"], alone["density"])  # the same picture either way


def test_a_file_that_fails_in_screenshot_mode_exits_nonzero_and_says_why(qtbot, tmp_path, monkeypatch):
    broken = tmp_path / "cut.cif"
    broken.write_text("data_x\n_cell_length_a 5\n")
    code, seen = _screenshot_run(tmp_path, monkeypatch, [broken])
    assert code == 1
    assert "cut.cif" in seen["status"]
    assert seen["formula"] is None and seen["density"] is None  # no default crystal passed off as the file


def test_small_screen_keeps_the_cell_in_view_and_clear_of_the_colour_bar(make_window, qtbot):
    win = make_window()
    win.resize(1366, 768)
    qtbot.wait(50)
    for name in ("SrTiO3_perovskite", "KCl_rocksalt"):
        assert win.open_gallery(name)
        assert_draws_state(win)
    # the docks leave the 3-D view a real share of the window (a wide dock row once squeezed it to 100 px)
    assert win.viewer.width() >= 0.3 * win.width(), (win.viewer.width(), win.width())


def test_slices_are_translucent_and_carry_the_colour_bar_when_the_volume_is_off(make_window, qtbot):
    from icsg3d_gui.views.viewer3d import DENSITY_BAR

    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    viewer = win.viewer
    viewer.update_settings(show_volume=False, show_slices=True)
    actor = viewer.plotter.actors["density_slices"]
    assert actor.prop.opacity < 1.0
    assert list(viewer.plotter.scalar_bars.keys()) == [DENSITY_BAR]
    viewer.update_settings(show_slices=False)
    assert list(viewer.plotter.scalar_bars.keys()) == []
    viewer.update_settings(show_volume=True, show_slices=True)
    assert list(viewer.plotter.scalar_bars.keys()) == [DENSITY_BAR]  # one bar, the volume's


def test_density_files_open_as_they_are_and_draw_their_grid(make_window, qtbot, tmp_path):
    """A user's CHGCAR or cube opens like a CIF: its own grid is what the view draws."""
    from core.export import export_density
    from core.voxel import VoxelConfig, density_grid
    from tests.gui.fakes import rocksalt

    crystal = rocksalt(5.64)
    rho = density_grid(crystal, VoxelConfig(d=20))
    win = make_window()
    for name in ("CHGCAR", "nacl.cube"):
        export_density(tmp_path / name, rho, crystal)
        assert win.open_path(tmp_path / name)
        assert win.state.density.shape == (20, 20, 20)
        np.testing.assert_allclose(win.state.density, rho, rtol=1e-4, atol=1e-5 * rho.max())
        assert "density from a" in win.state.source and win.state.labels is None
        assert_draws_state(win)
    (tmp_path / "CHGCAR_broken").write_text("not a chgcar\n")
    assert not win.open_path(tmp_path / "CHGCAR_broken")


def test_view_along_uvw_and_orthographic(make_window, qtbot):
    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    viewer = win.viewer
    win.display.uvw.setText("1 1 0")
    win.display.uvw.returnPressed.emit()
    cam = viewer.plotter.camera
    look = np.asarray(cam.focal_point) - np.asarray(cam.position)
    look /= np.linalg.norm(look)
    assert abs(abs(np.dot(look, [1, 1, 0] / np.sqrt(2))) - 1) < 1e-6  # looking down [110]
    assert_draws_state(win)
    win.display.orthographic.setChecked(True)
    assert cam.GetParallelProjection() == 1
    win.display.uvw.setText("nonsense")
    win.display.uvw.returnPressed.emit()
    assert "background" in win.display.uvw.styleSheet()  # marked, camera unchanged


def test_coordination_polyhedra(make_window, qtbot):
    from icsg3d_gui.views.viewer3d import POLYHEDRA

    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    win.display.layer_checks["show_polyhedra"].setChecked(True)
    mesh = win.viewer.plotter.actors[POLYHEDRA].mapper.dataset
    assert mesh.n_cells == 8 and mesh.n_points == 6  # one TiO6 octahedron; Sr's 12-fold cage is not drawn
    centre = mesh.points.mean(axis=0)
    np.testing.assert_allclose(centre, [3.905 / 2] * 3, atol=1e-6)  # around Ti at the body centre
    win.viewer.update_settings(repeat=(2, 1, 1))
    assert win.viewer.plotter.actors[POLYHEDRA].mapper.dataset.n_cells == 16  # one per cell of the supercell
    win.display.layer_checks["show_polyhedra"].setChecked(False)
    assert POLYHEDRA not in win.viewer.plotter.actors


def test_numpy_grids_with_a_cell_open_like_a_cif(make_window, qtbot, tmp_path, boxes):
    """.npz (density + lattice [+ atoms]) and .npy + sidecar cell draw their own grid; with atoms
    and a model set the Properties dock gets the model's reconstruction; a .npy without its cell
    is refused with the file and the reason."""
    from core.export import export_density
    from core.voxel import VoxelConfig, density_grid
    from tests.gui.fakes import rocksalt

    crystal = rocksalt(5.64)
    rho = density_grid(crystal, VoxelConfig(d=14))
    win = make_window(FakeModelSet())
    wait_for_model(qtbot, win)
    export_density(tmp_path / "nacl.npz", rho, crystal)
    assert win.open_path(tmp_path / "nacl.npz")
    np.testing.assert_allclose(win.state.density, rho)
    assert win.state.structure.composition.reduced_formula == "NaCl"
    assert_draws_state(win)
    qtbot.waitUntil(lambda: "reconstruction" in win.state.analysis, timeout=10000)
    assert win.state.analysis["reconstruction"]["formula"] == "NaCl"
    # a bare grid on a sheared cell: its own cell is drawn, no atoms
    lattice = np.array([[5.0, 0, 0], [1.0, 5.0, 0], [0, 0, 6.0]])
    export_density(tmp_path / "bare.npy", rho, None, lattice=lattice)
    assert win.open_path(tmp_path / "bare.npy")
    assert win.state.structure is None and "atoms" not in win.viewer.plotter.actors
    np.testing.assert_allclose(win.state.lattice, lattice)
    cell = win.viewer.plotter.actors["cell"].mapper.dataset
    np.testing.assert_allclose(np.asarray(cell.points)[:8].max(axis=0), lattice.sum(axis=0))
    assert_draws_sheared_volume(win)  # sheared: the volume is drawn, resampled onto an axis-aligned box
    (tmp_path / "bare.json").unlink()
    assert not win.open_path(tmp_path / "bare.npy")
    title, text = boxes["critical"][-1]
    assert "bare.npy" in text and "no cell" in text


def test_a_model_set_change_reloads_in_the_worker_and_redraws(make_window, qtbot, tmp_path, monkeypatch):
    """Models > a shipped set or a folder: the new set loads in the inference thread; the shown
    crystal is voxelised again on the new set's grid and drawn, the camera framing it."""
    import threading

    from PySide6.QtWidgets import QFileDialog

    first = FakeModelSet(d=12)
    win = fake_window_with_crystal(make_window, qtbot, first, "SrTiO3_perovskite")
    assert win.state.density.shape == (12, 12, 12)
    assert "perov_5" in [a.text() for a in win.model_actions.values()]  # the shipped set is listed
    win.batch.n.setValue(2)
    win.batch.generate()
    qtbot.waitUntil(lambda: len(win.batch.rows) == 2 and win.controller.worker.idle(), timeout=10000)
    second = FakeModelSet(d=10)
    threads = []

    def loader_for(folder, device):  # noqa: ANN001, ANN202
        def load():  # noqa: ANN202
            threads.append(threading.current_thread())
            return second
        return load

    win.controller.loader_for = loader_for
    folder = tmp_path / "other_set"
    (folder / "vae").mkdir(parents=True)
    (folder / "vae" / "meta.json").write_text("{}")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    from icsg3d_gui import dialogs

    assert dialogs.open_model_set(win)
    assert win.state.model_set_name == "other_set" and win.state.z is None and not win.state.history.items
    qtbot.waitUntil(lambda: win.state.has_model and win.state.z is not None and win.controller.worker.idle(),
                    timeout=10000)
    assert threads and threads[0] is not threading.main_thread()
    assert second.calls.get("encode", 0) >= 1
    assert win.state.density.shape == (10, 10, 10)  # the crystal on the new set's grid
    assert win.state.structure.composition.reduced_formula == "SrTiO3"
    assert_draws_state(win)
    # a batch row of the old set is still shown as it was decoded, but without its latent point
    win.batch.show_row(0)
    assert win.state.z is None and "model set" in win.state.source and win.state.density.shape == (12, 12, 12)
    assert_draws_state(win)
    # a folder that is not a model set is refused with its name
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    assert not dialogs.open_model_set(win)
    assert win.state.model_set_name == "other_set"


# ---- sheared (non-orthogonal) cells: the volume is resampled onto an axis-aligned box ----------


def trilinear(rho: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Periodic trilinear interpolation of ``rho`` (point i at fractional i/D) at ``frac`` (N, 3),
    written out over the 8 corners (independent of the app's scipy-based resampling)."""
    d = np.asarray(rho.shape)
    pos = np.asarray(frac, dtype=float) * d
    base = np.floor(pos).astype(int)
    w = pos - base
    out = np.zeros(len(pos))
    for corner in CORNERS.astype(int):
        idx = np.mod(base + corner, d)
        weight = np.prod(np.where(corner == 1, w, 1.0 - w), axis=1)
        out += weight * rho[idx[:, 0], idx[:, 1], idx[:, 2]]
    return out


def region_box(lattice: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(xmin, xmax, ymin, ymax, zmin, zmax) of the parallelepiped [lo, hi] (fractional) of ``lattice``."""
    cart = (lo + CORNERS * (hi - lo)) @ lattice
    return np.stack([cart.min(axis=0), cart.max(axis=0)], axis=1).ravel()


def check_resampled(grid, rho: np.ndarray, lattice: np.ndarray, lo: np.ndarray, hi: np.ndarray,  # noqa: ANN001
                    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``grid`` (ImageData) covers the box of the region [lo, hi] and holds ``rho`` interpolated at
    each point's fractional coordinates inside it, 0 outside; returns (fractional, value) inside."""
    import pyvista as pv

    assert isinstance(grid, pv.ImageData)
    np.testing.assert_allclose(grid.bounds, region_box(lattice, lo, hi), atol=1e-4)
    points = np.asarray(grid.points)
    frac = points @ np.linalg.inv(lattice)
    values = np.asarray(grid.point_data["rho"])
    inside = np.all((frac > lo + 1e-4) & (frac < hi - 1e-4), axis=1)
    outside = np.any((frac < lo - 1e-4) | (frac > hi + 1e-4), axis=1)
    assert 0.2 < inside.mean() < 0.95 and outside.any()  # a sheared cell does not fill its box
    np.testing.assert_allclose(values[inside], trilinear(rho, frac[inside]), rtol=1e-5, atol=1e-5)
    assert not values[outside].any(), "density drawn outside the cell's region"
    return frac[inside], values[inside]


def wurtzite():  # noqa: ANN201
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.hexagonal(3.25, 5.2), ["Zn", "O", "Zn", "O"],
                     [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.5], [2 / 3, 1 / 3, 0.88]])  # fmt: skip


def assert_draws_sheared_volume(win) -> None:  # noqa: ANN001
    """The volume actor of a sheared cell is a vtkVolume over an axis-aligned ImageData that holds
    the state's density at each point's fractional coordinates within the drawn region
    (the (super)cell plus the periodic margin), 0 outside it."""
    import vtk

    st, viewer = win.state, win.viewer
    viewer.render_now()
    actor = viewer.plotter.actors.get("density_volume")
    assert isinstance(actor, vtk.vtkVolume), "no density volume drawn on a sheared cell"
    d = np.asarray(st.density.shape, dtype=float)
    margin = viewer._margin(st.density)
    lo, hi = -margin / d, np.asarray(viewer.settings.repeat, dtype=float) + margin / d
    check_resampled(actor.mapper.dataset, st.density, np.asarray(st.lattice), lo, hi)


def test_sheared_cell_draws_the_density_volume(make_window, qtbot, tmp_path):
    """Wurtzite ZnO (hexagonal): the density volume is drawn (not swapped for an isosurface), its
    values are the state's density over the cell and its margin, its peak sits on a Zn atom; the
    isosurface levels still draw on request, and a supercell widens the resampled region."""
    from pymatgen.io.cif import CifWriter

    path = tmp_path / "ZnO.cif"
    CifWriter(wurtzite()).write_file(str(path))
    win = make_window()
    assert win.open_path(path)
    st, plotter = win.state, win.viewer.plotter
    assert not scene.is_axis_aligned(st.lattice)
    assert_draws_sheared_volume(win)
    assert not any(name.startswith("density_iso_") for name in plotter.actors)  # the iso panel is off
    drawn = plotter.actors["density_volume"].mapper.dataset
    peak = np.asarray(drawn.points)[int(np.argmax(drawn.point_data["rho"]))]
    zn = np.array([site.frac_coords for site in st.structure if site.specie.symbol == "Zn"])
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    images = (zn[:, None] + shifts[None]).reshape(-1, 3) @ st.lattice
    assert np.linalg.norm(images - peak, axis=1).min() < 0.2, "the drawn density's peak is not on a Zn atom"
    win.viewer.update_settings(show_iso=True)  # the iso panel's levels draw on the sheared grid as before
    iso = plotter.actors["density_iso_0"].mapper.dataset
    assert iso.n_points > 0
    win.viewer.update_settings(repeat=(2, 1, 2), show_iso=False)
    assert_draws_sheared_volume(win)
    assert "density_iso_0" not in plotter.actors


def test_sheared_resampling_interpolates_the_periodic_grid():
    """resample_sheared on a tiny monoclinic grid of a smooth periodic function: values at the
    box's points match the function at their fractional coordinates (to the trilinear error) and
    an independent trilinear interpolation exactly; the region is the cells plus the margin."""
    from core.volumetric import periodic_trilinear
    from icsg3d_gui.views.sheared_volume import resample_sheared

    beta = np.radians(105.0)
    lattice = np.array([[4.0, 0, 0], [0, 5.0, 0], [6.0 * np.cos(beta), 0, 6.0 * np.sin(beta)]])
    shape = (10, 12, 14)

    def smooth(f: np.ndarray) -> np.ndarray:
        t = 2 * np.pi * np.asarray(f)
        return 2.0 + np.cos(t[..., 0]) + 0.5 * np.sin(t[..., 1]) * np.cos(t[..., 2]) + 0.3 * np.sin(t[..., 2])

    axes = [np.arange(n) / n for n in shape]
    rho = smooth(np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)).astype(np.float32)
    idx = np.array([[0, 0, 0], [3, 7, 13], [9, 11, 5]])
    at_nodes = periodic_trilinear(rho, idx / np.asarray(shape) + np.array([1, -2, 3]))  # periodic images
    np.testing.assert_allclose(at_nodes, rho[idx[:, 0], idx[:, 1], idx[:, 2]], atol=1e-6)
    repeat, margin = (1, 2, 1), 2
    grid = resample_sheared(rho, lattice, repeat, name="rho", margin=margin)
    spacing = min(np.linalg.norm(lattice, axis=1) / np.asarray(shape))
    assert max(grid.spacing) <= 1.01 * spacing  # about the grid's finest spacing
    lo, hi = -margin / np.asarray(shape), np.asarray(repeat) + margin / np.asarray(shape)
    frac, values = check_resampled(grid, rho, lattice, lo, hi)
    # the trilinear error of the smooth function; grid points off by half a voxel would be ~0.3 off
    assert np.abs(values - smooth(frac)).max() < 0.08
