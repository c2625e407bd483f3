"""The camera frames the cell even when nothing but hidden atoms is there to frame (density volume
off, the first decode arriving as a slider preview)."""

from __future__ import annotations

import pytest

from tests.gui.conftest import wait_for_model
from tests.gui.fakes import FakeModelSet
from tests.gui.test_truth import projected_cell

pytestmark = pytest.mark.gui


def test_random_with_the_volume_off_frames_the_cell(make_window, qtbot):
    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.viewer.update_settings(show_volume=False, show_blobs=True)
    win.latent.random()
    qtbot.waitUntil(lambda: win.state.source == "decoded" and win.controller.worker.idle(), timeout=30000)
    win.viewer.render_now()
    width, height = win.viewer.plotter.renderer.GetSize()
    xy = projected_cell(win)
    assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= width).all() and (xy[:, 1] >= 0).all() and (xy[:, 1] <= height).all()
    assert (xy.max(axis=0) - xy.min(axis=0)).max() >= 0.25 * min(width, height)


def test_display_settings_live_in_the_state_and_the_view_follows(make_window, qtbot):
    from dataclasses import replace

    model = FakeModelSet()
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.open_gallery("NaCl_rocksalt")
    assert "density_volume" in win.viewer.plotter.actors
    win.state.set_display(replace(win.state.display, show_volume=False, show_blobs=True))
    assert "density_volume" not in win.viewer.plotter.actors  # the view redrew from the state's signal
    assert win.viewer.settings is win.state.display
    win.display.refresh()
    assert not win.display.layer_checks["show_volume"].isChecked()  # the dock shows the state's settings
