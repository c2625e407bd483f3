"""GUI test fixtures: a MainWindow with a fake (or no) model set, message boxes recorded.

QtInteractor needs an X display: run under ``xvfb-run -a`` or with pytest-xvfb installed (it
starts Xvfb itself). Without a display the window tests are skipped, not failed; the logic tests
(worker, scene geometry, exports, import rule) run anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY"))


@pytest.fixture
def boxes(monkeypatch):
    """Record QMessageBox.critical/question instead of blocking; answers for question() queue up."""
    from PySide6.QtWidgets import QMessageBox

    record = {"critical": [], "question": [], "answers": []}

    def critical(parent, title, text, *args, **kwargs):  # noqa: ANN001, ANN202
        record["critical"].append((title, text))
        return QMessageBox.StandardButton.Ok

    def question(parent, title, text, *args, **kwargs):  # noqa: ANN001, ANN202
        record["question"].append((title, text))
        answers = record["answers"]
        return answers.pop(0) if answers else QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "critical", critical)
    monkeypatch.setattr(QMessageBox, "question", question)
    return record


@pytest.fixture
def make_window(qtbot, tmp_path: Path, boxes):
    """Factory: make_window(model=None | FakeModelSet | callable raising) -> shown MainWindow."""
    if not has_display():
        pytest.skip("the 3-D view needs an X display (run under xvfb-run -a or install pytest-xvfb)")
    from PySide6.QtCore import QSettings

    from icsg3d_gui.main_window import MainWindow

    windows = []

    def make(model=None, loader=None, models_dir: Path | None = None):  # noqa: ANN001, ANN202
        if model is not None:
            loader = lambda: model  # noqa: E731
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        win = MainWindow(models_dir=models_dir or tmp_path / "no_models", loader=loader, settings=settings)
        qtbot.addWidget(win)
        win.resize(1000, 700)
        win.show()
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()


def wait_for_model(qtbot, win, timeout: int = 15000) -> None:  # noqa: ANN001
    """Until the fake model set is loaded and the gallery PCA has reached the latent dock."""
    qtbot.waitUntil(lambda: win.state.has_model and win.latent.components is not None, timeout=timeout)


def fake_window_with_crystal(make_window, qtbot, model, name: str = "NaCl_rocksalt"):  # noqa: ANN001, ANN201
    """A window on ``model`` with gallery crystal ``name`` open and encoded (the worker idle)."""
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.open_gallery(name)
    qtbot.waitUntil(lambda: win.state.z is not None and win.controller.worker.idle(), timeout=10000)
    return win


def run_interpolation(win, qtbot, a: str, b: str, steps: int, boxes=None, timeout: int = 10000) -> None:  # noqa: ANN001
    """Interpolate gallery crystals a -> b in the dock and wait for the frames (or an error box)."""
    dock = win.interp
    dock.a.setCurrentText(a)
    dock.b.setCurrentText(b)
    dock.steps.setValue(steps)
    dock.run()
    failed = (lambda: bool(boxes["critical"])) if boxes is not None else (lambda: False)
    qtbot.waitUntil(lambda: len(dock.frames) == steps or failed(), timeout=timeout)
