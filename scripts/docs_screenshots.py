"""The screenshots in docs/, taken from the real app with the shipped models (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/docs_screenshots.py [--out docs] [--only NAME ...]

Each picture is one state a user reaches by clicking: a Random sample of the default prior (the
Properties badge says new or known), the density with several isosurfaces picked on its
histogram, coordination polyhedra, slice planes, an (hkl) slice, bond rules, site labels with
hover info, the blob view (of a decoded and of an opened crystal), a batch, the interpolation filmstrip, and the window at 1366x768.
Each shot starts from the default display settings; ``--only`` retakes some of them. Settings
are scratch ones (the user's are left alone).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("docs_screenshots")


def _raise_dock(win, title: str) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QDockWidget

    for dock in win.findChildren(QDockWidget):
        if dock.windowTitle() == title:
            dock.raise_()


def _fresh(win, crystal: str | None = "SrTiO3_perovskite", **display) -> None:  # noqa: ANN001
    """Default display settings (plus ``display``), the Display dock in front, ``crystal`` open."""
    from icsg3d_gui.display_settings import DisplaySettings

    win.viewer.apply_settings(DisplaySettings(**display))
    win.display.refresh()
    _raise_dock(win, "Display")
    if crystal:
        win.open_gallery(crystal)


def random_sample(win, app) -> None:  # noqa: ANN001
    from icsg3d_gui.app import wait_until

    _fresh(win, None)
    win.latent.seed.setValue(3)
    win.latent.random()
    wait_until(app, lambda: win.state.source == "decoded" and "spacegroup" in win.state.analysis, 60)


def density_isosurfaces(win, app) -> None:  # noqa: ANN001
    """Three isosurfaces of SrTiO3's density picked on the histogram (O and Ti shells, Sr cores)."""
    _fresh(win, show_volume=False, show_bonds=False, radius_scale=0.08)
    panel = win.display.iso_panel
    for i, (fraction, opacity) in enumerate(((0.08, 0.25), (0.3, 0.4), (0.6, 0.7))):
        if i:
            panel.add_level()
        panel.set_selected_fraction(fraction)
        panel.opacity.setValue(opacity)


def polyhedra(win, app) -> None:  # noqa: ANN001
    _fresh(win, show_volume=False, show_polyhedra=True, repeat=(2, 2, 1))
    win.display.refresh()


def slices(win, app) -> None:  # noqa: ANN001
    _fresh(win, show_slices=True)


def slice_hkl(win, app) -> None:  # noqa: ANN001
    """SrTiO3's (110) plane through the cell centre: Sr, Ti and O all lie on it."""
    _fresh(win, show_volume=False, show_bonds=False, radius_scale=0.1)
    win.display.hkl.setText("1 1 0")
    win.display.hkl.returnPressed.emit()
    win.display.hkl_position.setValue(50)
    win.viewer.view_along_uvw((1, 1, 0))  # the plane face on
    win.viewer.plotter.camera.Azimuth(-20)  # turned a little, so that it reads as a plane in the cell
    win.viewer.plotter.camera.Elevation(12)
    win.viewer.plotter.camera.OrthogonalizeViewUp()


def bond_rules(win, app) -> None:  # noqa: ANN001
    """Rock salt with Na-Cl bonds off and Cl-Cl contacts (3.99 Å) drawn: the fcc anion frame."""
    _fresh(win, "NaCl_rocksalt", show_volume=False)
    box = win.display.bond_rules
    box.set_rule("Cl", "Na", 0.0, 3.2, on=False)
    box.set_rule("Cl", "Cl", 3.5, 4.2, on=True)
    scroll = win.display.parentWidget().parentWidget()  # the dock's scroll area
    scroll.ensureWidgetVisible(box)


def labels(win, app) -> None:  # noqa: ANN001
    """Site labels on SrTiO3, and the hover info of the Ti atom under the mouse."""
    _fresh(win, show_volume=False, show_labels=True)
    viewer = win.viewer
    viewer.render_now()
    ren = viewer.plotter.renderer
    ti = next(i for i, s in enumerate(win.state.structure) if s.specie.symbol == "Ti")
    ren.SetWorldPoint(*win.state.structure[ti].coords, 1.0)
    ren.WorldToDisplay()
    x, y, _ = ren.GetDisplayPoint()
    viewer.hover_at(x, y)


def blobs(win, app) -> None:  # noqa: ANN001
    """The blob view of a decoded crystal: the U-Net's segmentation, its caption and per-blob confidences."""
    from icsg3d_gui.app import wait_until

    _fresh(win, None, show_volume=False, show_blobs=True, show_bonds=False, radius_scale=0.06)
    win.latent.seed.setValue(5)
    win.latent.random()
    wait_until(app, lambda: win.state.source == "decoded" and win.state.labels is not None, 60)


def blobs_opened(win, app) -> None:  # noqa: ANN001
    """The blob view of an opened crystal: the U-Net's reading of its true density."""
    from icsg3d_gui.app import wait_until

    _fresh(win, "BaTiO3_perovskite", show_volume=False, show_blobs=True, show_bonds=False, radius_scale=0.06)
    wait_until(app, lambda: win.state.labels is not None, 60)


def batch(win, app) -> None:  # noqa: ANN001
    from icsg3d_gui.app import wait_until

    _fresh(win)
    win.batch.n.setValue(16)
    win.batch.generate()
    wait_until(app, lambda: len(win.batch.rows) == 16, 120)
    _raise_dock(win, "Batch")


def filmstrip(win, app) -> None:  # noqa: ANN001
    from icsg3d_gui.app import wait_until

    _fresh(win, None)
    dock = win.interp
    dock.a.setCurrentText("SrTiO3_perovskite")
    dock.b.setCurrentText("BaZrO3_perovskite")
    dock.steps.setValue(9)
    dock.run()
    wait_until(app, lambda: len(dock.frames) == 9, 120)
    _raise_dock(win, "Interpolation")
    dock.scrubber.setValue(4)


def small_screen(win, app) -> None:  # noqa: ANN001
    _fresh(win)
    win.resize(1366, 768)
    app.processEvents()


SHOTS: dict[str, tuple[str, Callable]] = {
    "random_sample": ("random_sample.png", random_sample),
    "density_isosurface": ("density_isosurface.png", density_isosurfaces),
    "polyhedra": ("polyhedra.png", polyhedra),
    "slices": ("slices.png", slices),
    "slice_hkl": ("slice_hkl.png", slice_hkl),
    "bond_rules": ("bond_rules.png", bond_rules),
    "labels": ("labels.png", labels),
    "blobs": ("blobs.png", blobs),
    "blobs_opened": ("blobs_opened.png", blobs_opened),
    "batch": ("batch.png", batch),
    "filmstrip": ("filmstrip.png", filmstrip),
    "small_screen": ("small_screen_1366x768.png", small_screen),  # last: it shrinks the window
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    p.add_argument("--only", nargs="+", choices=sorted(SHOTS), default=None, help="take only these")
    p.add_argument("--size", default="1600x1000", help="window size WxH")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from icsg3d_gui.app import settled, take_screenshot, wait_until
    from icsg3d_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.interactive = False
    win.show()
    win.resize(*(int(v) for v in args.size.lower().split("x")))
    app.processEvents()
    wait_until(app, lambda: win.state.has_model and win.latent.components is not None, 120)
    for key, (name, step) in SHOTS.items():
        if args.only and key not in args.only:
            continue
        step(win, app)
        wait_until(app, settled(win), 120)
        path = take_screenshot(app, win, args.out / name)
        log.info("%s: %s | %s", path, win.state.analysis.get("formula"), win.properties.badges["novel"].text())
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
