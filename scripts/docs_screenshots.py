"""The screenshots in docs/, taken from the real app with the shipped models (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/docs_screenshots.py [--out docs]

Each picture is one state a user reaches by clicking: a Random sample of the default prior (the
Properties badge says new or known), the density with an isosurface, coordination polyhedra, slice planes, the blob view,
a batch, the interpolation filmstrip, and the window at 1366x768. Settings are scratch ones (the user's are left alone).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("docs_screenshots")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QDockWidget

    from icsg3d_gui.app import settled, take_screenshot, wait_until
    from icsg3d_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.interactive = False
    win.show()
    win.resize(1600, 1000)
    app.processEvents()
    wait_until(app, lambda: win.state.has_model and win.latent.components is not None, 120)

    def shot(name: str) -> None:
        wait_until(app, settled(win), 120)
        path = take_screenshot(app, win, args.out / name)
        log.info("%s: %s | %s", path, win.state.analysis.get("formula"), win.properties.badges["novel"].text())

    win.latent.seed.setValue(3)
    win.latent.random()
    wait_until(app, lambda: win.state.source == "decoded" and "spacegroup" in win.state.analysis, 60)
    shot("random_sample.png")
    win.open_gallery("SrTiO3_perovskite")
    win.viewer.update_settings(show_iso=True, iso_fraction=0.15)
    shot("density_isosurface.png")
    win.viewer.update_settings(show_iso=False, show_volume=False, show_polyhedra=True, repeat=(2, 2, 1))
    shot("polyhedra.png")
    win.viewer.update_settings(show_polyhedra=False, repeat=(1, 1, 1), show_slices=True)
    shot("slices.png")
    win.viewer.update_settings(show_slices=False, show_volume=False, show_blobs=True)
    shot("blobs.png")
    win.viewer.update_settings(show_blobs=False, show_volume=True)
    win.batch.n.setValue(16)
    win.batch.generate()
    wait_until(app, lambda: len(win.batch.rows) == 16, 120)
    for dock in win.findChildren(QDockWidget):
        if dock.windowTitle() == "Batch":
            dock.raise_()
    shot("batch.png")
    dock = win.interp
    dock.a.setCurrentText("SrTiO3_perovskite")
    dock.b.setCurrentText("BaZrO3_perovskite")
    dock.steps.setValue(9)
    dock.run()
    wait_until(app, lambda: len(dock.frames) == 9, 120)
    for d in win.findChildren(QDockWidget):
        if d.windowTitle() == "Interpolation":
            d.raise_()
    dock.scrubber.setValue(4)
    shot("filmstrip.png")
    win.resize(1366, 768)
    app.processEvents()
    shot("small_screen_1366x768.png")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
