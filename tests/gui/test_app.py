"""The app end to end under Xvfb: real window, real 3-D view, a fake (or the real) model set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure
from PySide6.QtWidgets import QMessageBox

from icsg3d_gui import dialogs
from tests.gui.conftest import run_interpolation, wait_for_model
from tests.gui.fakes import FakeModelSet

pytestmark = pytest.mark.gui


def test_gallery_crystal_without_models(make_window, qtbot):
    win = make_window()
    assert win.open_gallery("NaCl_rocksalt")
    st = win.state
    assert st.structure.composition.reduced_formula == "NaCl"
    assert st.density.shape == (32, 32, 32) and st.density.max() > 0
    np.testing.assert_allclose(np.diag(st.lattice), st.structure.lattice.abc)
    actors = win.viewer.plotter.actors
    assert {"density_volume", "atoms", "bonds", "cell", "legend"} <= set(actors)
    assert "No trained models" in win.model_label.toolTip()
    from PySide6.QtWidgets import QTabBar

    visible = [tuple(tb.tabText(i) for i in range(tb.count())) for tb in win.findChildren(QTabBar) if tb.isVisible()]
    assert sorted(visible) == [("Gallery", "Display", "Latent map"), ("Properties", "Interpolation", "Batch", "History")]
    assert not win.latent.sliders[0].isEnabled()
    qtbot.waitUntil(lambda: win.properties.fields["spacegroup"].text().startswith("Fm-3m"), timeout=20000)
    assert win.state.analysis["valid"] and win.state.analysis["match"] == "NaCl_rocksalt"
    # right-click picking: an atom and the distance to the previous one (Na-Cl = a/2)
    assert win.viewer.pick((0.05, 0.0, 0.0)).startswith("Na")
    text = win.viewer.pick((2.82, 0.0, 0.0))
    assert text.startswith("Cl") and "distance to Na" in text and "2.820 Å" in text
    assert win.viewer.pick((1.4, 1.4, 1.4)) is None  # empty space
    # layers switch off and on without leaking actors
    n = len(actors)
    for _ in range(2):
        win.viewer.update_settings(show_volume=False, show_iso=True, show_slices=True, show_blobs=True)
        win.viewer.update_settings(show_volume=True, show_iso=False, show_slices=False, show_blobs=False)
    assert len(win.viewer.plotter.actors) == n and len(win.viewer.plotter.scalar_bars) == 1
    # a crystal with another cell rebuilds the volume: the colour bar must follow its new range
    win.open_gallery("KCl_rocksalt")
    bar = next(iter(win.viewer.plotter.scalar_bars.values()))
    lut = win.viewer.plotter.actors["density_volume"].mapper.lookup_table
    assert bar.GetLookupTable().GetRange() == pytest.approx(lut.GetRange())
    assert lut.GetRange()[1] == pytest.approx(0.5 * max(win.state.density.max(), 4.0), rel=1e-4)


def test_slider_decodes_live_then_full_on_release(make_window, qtbot):
    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.open_gallery("NaCl_rocksalt")
    qtbot.waitUntil(lambda: win.state.z is not None, timeout=5000)  # encoded in the worker
    qtbot.waitUntil(lambda: "formation_energy" in win.state.properties, timeout=5000)  # CGCNN on the opened crystal
    before = win.state.density.copy()
    slider = win.latent.sliders[0]
    with qtbot.waitSignal(win.viewer.rendered, timeout=5000):
        slider.setValue(150)
        win.latent.settle.stop()  # the live path alone; the release below asks for the full decode
    qtbot.waitUntil(lambda: not np.allclose(win.state.density, before), timeout=5000)
    assert win.state.preview and not win.viewer.plotter.actors["atoms"].GetVisibility()  # stale atoms hidden
    settled_samples = win.viewer._msaa
    assert win.viewer.plotter.ren_win.GetMultiSamples() == 0  # no multisampling while dragging
    assert model.calls.get("decode_density", 0) >= 1
    slider.sliderReleased.emit()
    qtbot.waitUntil(lambda: win.state.source == "decoded", timeout=5000)
    assert win.state.structure.composition.reduced_formula == "NaCl"
    assert not win.state.preview and win.viewer.plotter.actors["atoms"].GetVisibility()
    assert win.viewer.plotter.ren_win.GetMultiSamples() == settled_samples > 0  # smooth settled frame
    assert win.state.properties["formation_energy"] < 0
    assert win.state.labels is not None
    assert {win.state.class_symbols[c] for c in np.unique(win.state.labels) if c} == {"Na", "Cl"}
    expected = win.latent.base + 1.5 * win.latent.scales[0] * win.latent.components[0]
    np.testing.assert_allclose(win.state.z, expected, rtol=1e-5, atol=1e-6)
    # undo goes back to the encoded crystal's point
    win.latent.undo()
    qtbot.waitUntil(lambda: win.latent.sliders[0].value() == 0, timeout=5000)


def test_thousand_slider_events_are_coalesced(make_window, qtbot):
    model = FakeModelSet(delay=0.02)
    win = make_window(model)
    wait_for_model(qtbot, win)
    slider = win.latent.sliders[1]
    for i in range(1000):
        slider.setValue(-SLIDER_MAX + (i % (2 * SLIDER_MAX)))  # each emits valueChanged
    slider.setValue(123)
    qtbot.waitUntil(lambda: win.state.source == "decoded" and win.controller.worker.idle(), timeout=10000)
    ran = model.calls.get("decode_density", 0) + model.calls.get("decode", 0)
    assert ran < 60, f"{ran} model calls for 1001 slider events"
    expected = win.latent.current_z()
    np.testing.assert_allclose(win.state.z, expected, rtol=1e-5, atol=1e-6)  # the last value won


SLIDER_MAX = 300


def test_interpolation_frames_scrub_and_export(make_window, qtbot, tmp_path, boxes):
    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    dock = win.interp
    run_interpolation(win, qtbot, "NaCl_rocksalt", "KCl_rocksalt", 5, boxes)
    assert boxes["critical"] == []
    assert len(dock.frames) == 5
    dock.scrubber.setValue(3)
    assert win.state.source == "interpolation 4/5"
    a_first, a_last = dock.frames[0]["structure"].lattice.a, dock.frames[-1]["structure"].lattice.a
    assert a_first != a_last  # the end points differ, so the frames move
    (tmp_path / "frames").mkdir()
    out = dock.export_frames(tmp_path / "frames", symprec=None)
    assert len(out) == 5
    # each file holds its own frame (the frames differ in cell, so a mix-up would show)
    for path, frame in zip(out, dock.frames, strict=True):
        written = Structure.from_file(path)
        assert written.composition == frame["structure"].composition
        assert written.lattice.a == pytest.approx(frame["structure"].lattice.a, abs=1e-4)


def test_export_cif_roundtrip_and_overwrite_question(make_window, qtbot, tmp_path, boxes):
    win = make_window()
    win.open_gallery("SrTiO3_perovskite")
    path = tmp_path / "srtio3.cif"
    assert dialogs.save_cif(win, path, symprec=0.1) == path
    back = Structure.from_file(path)
    assert back.composition.reduced_formula == "SrTiO3"
    assert "Pm-3m" in path.read_text()
    win.open_gallery("NaCl_rocksalt")
    boxes["answers"].append(QMessageBox.StandardButton.No)
    assert dialogs.save_cif(win, path, symprec=None) is None  # declined: file untouched
    assert Structure.from_file(path).composition.reduced_formula == "SrTiO3"
    assert dialogs.save_cif(win, path, symprec=None) == path  # accepted (default Yes)
    assert Structure.from_file(path).composition.reduced_formula == "NaCl"
    assert len(boxes["question"]) == 2
    assert dialogs.save_density(win, tmp_path / "CHGCAR") is not None
    assert dialogs.save_view_image(win, tmp_path / "view.png", scale=1) is not None
    assert (tmp_path / "view.png").stat().st_size > 5000


def test_broken_cif_shows_error_and_app_keeps_running(make_window, qtbot, tmp_path, boxes):
    win = make_window()
    bad = tmp_path / "broken.cif"
    bad.write_text("data_broken\n_cell_length_a 4.0\n_cell_length_b\nloop_\n_atom_site_label\n")
    assert not win.open_path(bad)
    assert boxes["critical"], "no message box"
    title, text = boxes["critical"][-1]
    assert "broken.cif" in text
    assert win.open_gallery("CsCl_cscl")  # still works
    assert str(bad) not in [Path(p).name for p in win.recent_files()]


def test_model_load_failure_message_and_no_model_mode(make_window, qtbot, boxes):
    def bad_loader():  # noqa: ANN202
        raise RuntimeError("vae/model.safetensors: truncated file")

    win = make_window(loader=bad_loader)
    qtbot.waitUntil(lambda: bool(boxes["critical"]), timeout=5000)
    assert "truncated" in boxes["critical"][-1][1]
    assert win.open_gallery("NaCl_rocksalt") and not win.state.has_model


def test_close_mid_inference_is_clean(make_window, qtbot):
    model = FakeModelSet(delay=0.4)
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.controller.request_latent(np.zeros(16, np.float32), 0, full=True)
    qtbot.waitUntil(lambda: not win.controller.worker.idle(), timeout=5000)
    win.close()
    assert not win.controller.worker.isRunning()


def test_screenshot_cli_writes_a_real_image(qtbot, tmp_path):
    from PySide6.QtGui import QImage

    from icsg3d_gui.app import main
    from tests.gui.conftest import has_display

    if not has_display():
        pytest.skip("needs an X display")
    out = tmp_path / "shot.png"
    assert main(["--screenshot", str(out), "--models", str(tmp_path / "none"), "--size", "900x600"]) == 0
    img = QImage(str(out))
    assert img.width() == 900 and img.height() >= 600
    colours = {img.pixel(x, y) for x in range(0, 900, 25) for y in range(0, 600, 25)}
    assert len(colours) > 20  # not a blank window


def test_real_model_set_when_shipped(make_window, qtbot, boxes):
    """The real ModelSet behind the same window: shipped models, or ICSG3D_TEST_MODELS=DIR."""
    import os

    from icsg3d_gui.controller import default_models_dir, model_problem, modelset_loader

    models = Path(os.environ.get("ICSG3D_TEST_MODELS", "") or default_models_dir())
    if model_problem(models):
        pytest.skip(f"no shipped models: {model_problem(models)}")
    win = make_window(loader=modelset_loader(models, "cpu"))
    wait_for_model(qtbot, win, timeout=60000)
    win.open_gallery("SrTiO3_perovskite")
    qtbot.waitUntil(lambda: win.state.z is not None, timeout=30000)
    d = win.state.model_info["voxel_cfg"].d
    win.latent.sliders[0].setValue(100)
    win.latent.sliders[0].sliderReleased.emit()
    qtbot.waitUntil(lambda: win.state.source == "decoded", timeout=30000)
    assert win.state.density.shape == (d, d, d)
    assert win.state.lattice.shape == (3, 3) and np.all(np.diag(win.state.lattice) > 1.0)
    win.interp.a.setCurrentText("SrTiO3_perovskite")
    win.interp.b.setCurrentText("BaTiO3_perovskite")
    win.interp.steps.setValue(3)
    win.interp.run()
    qtbot.waitUntil(lambda: len(win.interp.frames) == 3, timeout=60000)
    assert [t for t, _ in boxes["critical"]] == []


def test_batch_table_filter_show_and_export(make_window, qtbot, tmp_path, boxes):
    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.open_gallery("NaCl_rocksalt")
    qtbot.waitUntil(lambda: win.state.z is not None, timeout=5000)
    win.batch.n.setValue(6)
    win.batch.generate()
    qtbot.waitUntil(lambda: len(win.batch.rows) == 6, timeout=15000)
    assert boxes["critical"] == []
    assert win.batch.table.rowCount() == 6 and "6 generated" in win.batch.summary.text()
    win.batch.filter.setText("KCl")
    assert win.batch.visible_rows() == []
    win.batch.filter.setText("nacl")
    assert len(win.batch.visible_rows()) == 6
    win.batch.show_row(2)
    assert win.state.source == "batch 3/6"
    out = win.batch.export(tmp_path)
    assert len(out) == 6 and all(p.exists() for p in out)


def test_latent_map_click_opens_crystal_and_marks_current(make_window, qtbot):
    from matplotlib.backend_bases import MouseButton, MouseEvent

    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    lm = win.latent_map
    win.docks["Latent map"].raise_()
    qtbot.waitUntil(lambda: lm.pca is not None, timeout=5000)
    assert [lm.colour.itemText(i) for i in range(lm.colour.count())] == [
        "density (g/cm³)", "number of elements", "formation_energy (CGCNN)"]
    lm.colour.setCurrentText("formation_energy (CGCNN)")  # redraws with the model's predictions
    qtbot.waitUntil(lambda: lm.pca is not None and lm.isVisible(), timeout=5000)
    i = lm.pca["ids"].index("KCl_rocksalt")
    lm.canvas.draw()
    x, y = lm.ax.transData.transform(lm.pca["xy"][i])
    lm._hover(MouseEvent("motion_notify_event", lm.canvas, x, y))
    with qtbot.waitSignal(lm.chosen, timeout=2000) as blocker:
        lm._click(MouseEvent("button_press_event", lm.canvas, x, y, button=MouseButton.LEFT))
    assert blocker.args == ["KCl_rocksalt"]
    assert win.state.source == "gallery:KCl_rocksalt"
    qtbot.waitUntil(lambda: win.state.z is not None, timeout=5000)
    mx, my = lm._marker.get_data()
    np.testing.assert_allclose([mx[0], my[0]], lm.pca["xy"][i], atol=1e-4)  # star on its own point


def test_session_roundtrip(make_window, qtbot, tmp_path):
    import json

    from icsg3d_gui import session

    win = make_window()
    win.open_gallery("CsCl_cscl")
    win.viewer.update_settings(repeat=(2, 1, 1), show_iso=True, cmap="magma")
    data = json.loads(json.dumps(session.to_dict(win)))
    win2 = make_window()
    session.apply(win2, data)
    assert win2.state.structure.composition.reduced_formula == "CsCl"
    assert win2.viewer.settings.repeat == (2, 1, 1) and win2.viewer.settings.cmap == "magma"
    assert "density_iso_0" in win2.viewer.plotter.actors
    assert win2.display.layer_checks["show_iso"].isChecked() and win2.display.cmap.currentText() == "magma"
    assert [sp.value() for sp in win2.display.repeat] == [2, 1, 1]


def test_open_file_recent_list_drop_and_symprec(make_window, qtbot, tmp_path):
    from types import SimpleNamespace

    from PySide6.QtCore import QUrl

    from core.gallery import get_item

    win = make_window()
    src = tmp_path / "my_nacl.cif"
    src.write_text(get_item("NaCl_rocksalt").path.read_text())
    assert win.open_path(src)
    assert win.recent_files()[0] == str(src.resolve())
    assert win.recent_menu.actions()[0].text() == str(src.resolve())
    other = tmp_path / "POSCAR"
    other.write_text(
        "CsCl\n1.0\n4.12 0 0\n0 4.12 0\n0 0 4.12\nCs Cl\n1 1\ndirect\n0 0 0\n0.5 0.5 0.5\n")
    event = SimpleNamespace(mimeData=lambda: SimpleNamespace(urls=lambda: [QUrl.fromLocalFile(str(other))]))
    win.dropEvent(event)
    assert win.state.structure.composition.reduced_formula == "CsCl"
    assert win.recent_files()[:2] == [str(other.resolve()), str(src.resolve())]
    qtbot.waitUntil(lambda: win.state.analysis.get("spacegroup") == "Pm-3m", timeout=20000)
    win.properties.symprec.setValue(0.01)
    qtbot.waitUntil(lambda: win.state.analysis.get("symprec") == 0.01, timeout=20000)


def test_history_dock_goes_back_and_bookmarks(make_window, qtbot):
    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.open_gallery("NaCl_rocksalt")
    qtbot.waitUntil(lambda: win.state.z is not None, timeout=5000)
    first = win.state.z.copy()
    for n, value in ((2, 100), (3, -120)):
        win.latent.sliders[0].setValue(value)
        win.latent.sliders[0].sliderReleased.emit()
        qtbot.waitUntil(lambda n=n: len(win.state.history.items) == n, timeout=5000)
    assert win.history.history.count() == 3
    win.history.bookmark()
    assert win.history.bookmarks.count() == 1 and win.latent.bookmarks.count() == 1
    win.history.goto(0)
    qtbot.waitUntil(lambda: np.allclose(win.state.z, first), timeout=5000)
    assert win.state.history.can_redo()


def test_hexagonal_cell_follows_the_lattice(make_window, qtbot, tmp_path):
    """A non-orthogonal cell: the grid is sheared with the lattice; the volume layer draws it
    resampled onto an axis-aligned box (VTK volume mappers need one; test_truth checks its values)."""
    poscar = tmp_path / "ZnO.vasp"
    poscar.write_text("ZnO wurtzite\n1.0\n3.25 0 0\n-1.625 2.8146 0\n0 0 5.21\nZn O\n2 2\ndirect\n"
                      "0.3333 0.6667 0\n0.6667 0.3333 0.5\n0.3333 0.6667 0.382\n0.6667 0.3333 0.882\n")
    win = make_window()
    assert win.open_path(poscar)
    actors = win.viewer.plotter.actors
    assert "density_volume" in actors and "density_iso_0" not in actors and "atoms" in actors
    from icsg3d_gui.views import scene

    st = win.state
    grid = scene.density_mesh(st.density, st.lattice, name="rho")
    peak = grid.points[int(np.argmax(grid.point_data["rho"]))]
    zn = [site.coords for site in st.structure if site.specie.symbol == "Zn"]
    assert min(np.linalg.norm(np.asarray(zn) - peak, axis=1)) < 0.2  # the density peak sits on a Zn atom


def test_random_interaction_smoke(make_window, qtbot, boxes):
    """A seeded burst of mixed user actions; pytest-qt fails the test on any exception in a slot."""
    rng = np.random.default_rng(7)
    model = FakeModelSet(delay=0.005)
    win = make_window(model)
    wait_for_model(qtbot, win)
    ids = win.gallery.ids()
    dd = win.display
    for _ in range(15):
        action = rng.integers(0, 8)
        if action == 0:
            win.open_gallery(ids[int(rng.integers(len(ids)))])
        elif action == 1:
            win.latent.sliders[int(rng.integers(8))].setValue(int(rng.integers(-300, 301)))
        elif action == 2:
            win.latent.sliders[0].sliderReleased.emit()
        elif action == 3:
            key = list(dd.layer_checks)[int(rng.integers(len(dd.layer_checks)))]
            dd.layer_checks[key].toggle()
        elif action == 4:
            dd.repeat[int(rng.integers(3))].setValue(int(rng.integers(1, 3)))
        elif action == 5:
            win.latent.random()
        elif action == 6:
            win.latent.undo() if rng.random() < 0.5 else win.latent.redo()
        else:
            win.viewer.view_along(int(rng.integers(3)))
        qtbot.wait(int(rng.integers(0, 30)))
    qtbot.waitUntil(win.controller.worker.idle, timeout=20000)
    qtbot.wait(50)
    assert [b for b in boxes["critical"] if "failed" in b[0]] == []
    assert win.state.density is not None


def test_failed_segmentation_is_reported(make_window, qtbot, boxes):
    model = FakeModelSet(fail_decode=True)
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.latent.sliders[0].setValue(50)
    win.latent.sliders[0].sliderReleased.emit()  # a drag: no box, the status bar and the dock say it
    qtbot.waitUntil(lambda: win.state.source == "decoded", timeout=5000)
    assert win.state.structure is None and "no atoms found" in win.properties.fields["formula"].text()
    assert boxes["critical"] == []
    assert "cell" in win.viewer.plotter.actors and "atoms" not in win.viewer.plotter.actors
    win.latent.random()  # a discrete action: a message box names the reason
    qtbot.waitUntil(lambda: bool(boxes["critical"]), timeout=5000)
    assert boxes["critical"][-1] == ("Segmentation failed",
                                     "No crystal recovered from this latent point: no atoms found")


def test_random_asks_the_model_sampler(make_window, qtbot):
    # the worker samples, so a model set with a fitted latent prior is used by the Random button,
    # at the spread its model card chose (the T box starts there)
    model = FakeModelSet()
    model.temperature = 0.6
    win = make_window(model)
    wait_for_model(qtbot, win)
    assert win.latent.temperature.value() == pytest.approx(0.6)
    win.latent.seed.setValue(7)
    before = model.calls.get("sample", 0)
    win.latent.random()
    # what the model's sampler gives for seed 7 (another instance: this model's call count stays the app's)
    expected = FakeModelSet().sample(1, temperature=0.6, seed=7)[0]
    qtbot.waitUntil(lambda: win.state.z is not None and np.allclose(win.state.z, expected), timeout=5000)
    assert model.calls["sample"] == before + 1 and win.latent.seed.value() == 8
    qtbot.waitUntil(lambda: win.state.source == "decoded", timeout=5000)  # and it is decoded in full


def test_view_menu_shows_and_hides_each_dock(make_window, qtbot):
    """View lists every dock by title, ticked while it shows; unticking hides it, and a dock closed by
    its own [x] is unticked the next time the menu opens."""
    win = make_window()
    win.show()
    qtbot.waitExposed(win)
    titles = [a.text() for a in win.dock_actions]
    assert titles == [d.windowTitle() for d in win.docks.values()]
    dock, action = next(iter(win.docks.values())), win.dock_actions[0]
    assert action.isCheckable() and action.isChecked() and not dock.isHidden()
    action.trigger()
    assert dock.isHidden() and not action.isChecked()
    action.trigger()
    assert not dock.isHidden() and action.isChecked()
    dock.close()
    view = next(a.menu() for a in win.menuBar().actions() if a.text() == "&View")
    view.aboutToShow.emit()
    assert not action.isChecked()
