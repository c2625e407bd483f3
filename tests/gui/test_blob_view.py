"""The blob view draws the model's segmentation of whatever grid is on screen, says whose labels it
shows, labels each blob with its confidence, and marks the sites the U-Net reads differently.

Everything is read back from the actors VTK draws (the blob surface, the label mappers' texts,
the caption), and compared with what the (fake) U-Net answers for the state's grid.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from icsg3d_gui.views import blob_layer, scene
from tests.gui.conftest import fake_window_with_crystal, wait_for_model
from tests.gui.fakes import FakeModelSet

pytestmark = pytest.mark.gui


def caption(win) -> str:  # noqa: ANN001
    actor = win.viewer.plotter.actors.get(blob_layer.CAPTION)
    return "" if actor is None else actor.GetText(1)  # lower right


def texts(win, name: str) -> list[str]:  # noqa: ANN001
    actor = win.viewer.plotter.actors.get(name)
    if actor is None:
        return []
    array = actor.GetMapper().GetInput().GetPointData().GetAbstractArray("texts")
    return [array.GetValue(i) for i in range(array.GetNumberOfValues())]


def drawn_blob_points(win) -> int:  # noqa: ANN001
    actor = win.viewer.plotter.actors.get(blob_layer.BLOBS)
    return 0 if actor is None else actor.mapper.dataset.n_points


def expected_blob_points(win, labels, symbols) -> int:  # noqa: ANN001
    mesh = scene.label_blobs(labels, win.state.lattice, symbols, win.viewer.settings.repeat, win.viewer.settings.scheme)
    return 0 if mesh is None else mesh.n_points


def test_an_opened_crystal_shows_the_unets_blobs_not_its_own_labels(make_window, qtbot):
    model = FakeModelSet()
    win = fake_window_with_crystal(make_window, qtbot, model)
    qtbot.waitUntil(lambda: win.state.labels is not None, timeout=30000)
    win.viewer.update_settings(show_blobs=True)
    st = win.state
    answer = model.segment(st.density, st.lattice)
    np.testing.assert_array_equal(st.labels, answer.labels)  # the U-Net's reading of the shown grid
    assert not np.array_equal(st.labels, st.true_labels)  # ... which is not the crystal's own
    assert drawn_blob_points(win) == expected_blob_points(win, answer.labels, st.class_symbols) > 0
    assert "U-Net segmentation, mean confidence 0.80" in caption(win)
    assert texts(win, blob_layer.CONFIDENCE) == [f"{b.symbol} 0.80" for b in answer.blobs]
    # the toggle shows the true labels, and the caption says so
    win.viewer.update_settings(blob_truth=True)
    assert drawn_blob_points(win) == expected_blob_points(win, st.true_labels, st.true_symbols) > 0
    assert caption(win) == "blobs: true labels of the crystal"
    assert texts(win, blob_layer.CONFIDENCE) == []
    win.viewer.update_settings(show_blobs=False)
    assert blob_layer.CAPTION not in win.viewer.plotter.actors and drawn_blob_points(win) == 0


def test_a_decoded_crystal_shows_its_unet_blobs_and_disputed_sites(make_window, qtbot):
    model = FakeModelSet(disagree=True)
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.viewer.update_settings(show_blobs=True, blob_truth=True)
    decodes = model.calls.get("decode", 0)
    win.latent.random()
    qtbot.waitUntil(lambda: model.calls.get("decode", 0) > decodes and win.state.source == "decoded"
                    and win.controller.worker.idle() and bool(win.viewer.blobs.shown_marks)
                    and blob_layer.BLOBS in win.viewer.plotter.actors
                    and drawn_blob_points(win) > 0, timeout=30000)  # fmt: skip
    # (under load a settled frame's blob actor can still hold the empty mesh of a preview frame:
    # wait for its surface, then check it is the state's)
    st = win.state
    assert caption(win).startswith("blobs: U-Net segmentation, mean confidence 0.90")
    assert "no true labels" in caption(win)  # asked for the truth, but a decoded crystal has none
    assert drawn_blob_points(win) == expected_blob_points(win, st.labels, st.class_symbols) > 0
    # site 1 (Na) is read as K by the U-Net: a mark sits on that atom, and says so
    marks = win.viewer.plotter.actors[blob_layer.DISAGREE].mapper.dataset
    np.testing.assert_allclose(np.mean(np.asarray(marks.points), axis=0), st.structure[0].coords, atol=1e-6)
    assert texts(win, blob_layer.DISAGREE_TEXT) == ["U-Net: K"]
    # an opened crystal has no dispute: the marks go
    win.open_gallery("CsCl_cscl")
    assert blob_layer.DISAGREE not in win.viewer.plotter.actors and win.viewer.blobs.shown_marks == []


def test_a_skewed_cell_shows_the_peak_templates_blobs(make_window, qtbot):
    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.viewer.update_settings(show_blobs=True)
    zno = Structure(Lattice.hexagonal(3.25, 5.2), ["Zn", "Zn", "O", "O"],
                    [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.88]])  # fmt: skip
    win.controller.show_structure(zno, "zno.cif")
    qtbot.waitUntil(lambda: "peak templates segmentation" in caption(win), timeout=30000)
    st = win.state
    assert drawn_blob_points(win) == expected_blob_points(win, st.labels, st.class_symbols) > 0
    assert sorted(t.split()[0] for t in texts(win, blob_layer.CONFIDENCE)) == ["O", "O", "Zn", "Zn"]


def test_a_cell_too_long_for_the_grid_says_why_it_has_no_blobs(make_window, qtbot):
    win = make_window(FakeModelSet())
    wait_for_model(qtbot, win)
    win.viewer.update_settings(show_blobs=True)
    long_cell = Structure(Lattice.hexagonal(3.0, 30.0), ["Na", "Cl"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]])
    win.controller.show_structure(long_cell, "long.cif")
    qtbot.waitUntil(lambda: "no segmentation" in caption(win), timeout=30000)
    assert "too long" in caption(win) and drawn_blob_points(win) == 0
