"""Entry point: ``icsg3d-gui [--models DIR] [--device auto|cpu|cuda] [--open FILE]
[--screenshot FILE.png] [--state FILE.json]``.

``--screenshot`` opens the window, waits until the model set (if any) has loaded and the worker
is idle, renders, saves the whole window (3-D view included) as PNG and exits; it works under
``xvfb-run -a`` and is what the docs, tests and bug reports use.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

DEFAULT_CRYSTAL = "SrTiO3_perovskite"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="icsg3d-gui", description="ICSG3D Studio: explore crystals and their latent space.")
    p.add_argument("--models", type=Path, default=None, help="model set folder (default: the shipped one)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--open", type=Path, default=None, help="CIF/POSCAR to open at start")
    p.add_argument("--screenshot", type=Path, default=None, help="save the window as PNG and exit")
    p.add_argument("--state", type=Path, default=None, help="session JSON to restore (File > Save session)")
    p.add_argument("--size", default="1500x900", help="window size WxH (screenshots)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def wait_until(app: QApplication, done: Callable[[], bool], timeout_s: float, tick_ms: int = 5) -> bool:
    """Run the event loop until ``done()`` or timeout (--screenshot and benchmarks; the GUI never
    blocks).

    Blocks in the event loop between checks (a ``tick_ms`` timer wakes it) instead of spinning,
    so the worker thread keeps the CPU on small machines.
    """
    loop = QEventLoop()
    tick = QTimer()
    tick.setInterval(tick_ms)
    tick.start()
    end = time.monotonic() + timeout_s
    try:
        while time.monotonic() < end:
            if done():
                return True
            loop.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        return done()
    finally:
        tick.stop()


def settled(window) -> Callable[[], bool]:  # noqa: ANN001
    """True once the model set has loaded (or failed) and no request is pending or running."""
    worker = window.controller.worker

    def check() -> bool:
        loading = window.controller.no_model_reason is None and not window.state.has_model
        return not loading and worker.idle()

    return check


def take_screenshot(app: QApplication, window, path: Path, timeout_s: float = 120.0) -> Path:  # noqa: ANN001
    wait_until(app, settled(window), timeout_s)
    wait_until(app, lambda: False, 0.3)  # let queued results and renders land
    window.viewer.render_now()
    app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise OSError(f"{path}: could not write PNG")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    QCoreApplication.setOrganizationName("ICSG3D")
    QCoreApplication.setApplicationName("ICSG3D Studio")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from icsg3d_gui.main_window import MainWindow

    settings = QSettings()
    window = MainWindow(models_dir=args.models, device=args.device, settings=settings)
    if args.screenshot is not None:
        window.interactive = False
    window.show()
    app.processEvents()
    if args.screenshot is not None:
        # after show: the dock layout's minimum size is only right once the tabs exist
        w, h = (int(x) for x in args.size.lower().split("x"))
        window.resize(w, h)
        app.processEvents()
    opened = False
    if args.state is not None:
        from icsg3d_gui import session

        try:
            session.apply(window, json.loads(args.state.read_text(encoding="utf-8")))
            opened = window.state.structure is not None
        except (OSError, ValueError) as exc:
            window.show_error("Session not loaded", f"{args.state}: {exc}")
    if args.open is not None:
        opened = window.open_path(args.open) or opened
    if not opened:
        window.open_gallery(DEFAULT_CRYSTAL)
    if args.screenshot is not None:
        try:
            out = take_screenshot(app, window, args.screenshot)
            print(out)
            code = 0
        except OSError as exc:
            print(f"icsg3d-gui: {exc}", file=sys.stderr)
            code = 2
        window.close()
        return code
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
