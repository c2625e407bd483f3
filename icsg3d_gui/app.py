"""Entry point: ``icsg3d-gui [FILE ...] [--models DIR] [--device auto|cpu|cuda] [--open FILE]
[--screenshot FILE.png] [--state FILE.json]``.

Files given are opened in turn (all land in History, the last one is shown). ``--screenshot``
opens the window, waits until the model set (if any) has loaded and the worker is idle, renders,
saves the whole window (3-D view included) as PNG and exits; it works under ``xvfb-run -a`` and is
what the docs, tests and bug reports use. It exits 1 when a file given could not be opened (the
reason is in the window's status bar and on stderr). Screenshot and ``--state`` runs use scratch
settings, so they never change what the user's next normal start restores.

``ICSG3D_FIRST_FRAME_FILE=PATH`` makes the app write the wall-clock time of its first rendered
frame with a crystal on screen to PATH (``benchmarks/gui_startup.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from resources import models_help

log = logging.getLogger(__name__)

DEFAULT_CRYSTAL = "SrTiO3_perovskite"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="icsg3d-gui", description="ICSG3D Studio: explore crystals and their latent space.")
    p.add_argument("--models", default=None,
                   help=models_help())  # fmt: skip
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("files", type=Path, nargs="*", help="CIF/POSCAR files to open in turn (the last is shown)")
    p.add_argument("--open", type=Path, default=None, help="CIF/POSCAR to open at start (same as FILE)")
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
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from core.atomic import atomic_write

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not window.grab().save(buffer, "PNG"):
        raise OSError(f"{path}: could not encode the window as PNG")
    return atomic_write(path, bytes(data.data()), force=True)


def _record_first_frame(window, path: str) -> None:  # noqa: ANN001
    """Write the time of the first finished frame that shows a crystal (startup benchmark)."""

    def rendered(_t: float) -> None:
        if window.state.structure is not None and window.state.density is not None:
            window.viewer.rendered.disconnect(rendered)
            from core.atomic import atomic_write

            atomic_write(path, repr(time.time()), force=True)

    window.viewer.rendered.connect(rendered)


def _settings(args: argparse.Namespace) -> QSettings:
    """The user's settings, or scratch ones for screenshot and --state runs (reproducible
    pictures, and the next normal start restores what the user left, not what a script did)."""
    if args.screenshot is None and args.state is None:
        return QSettings()
    scratch = Path(tempfile.mkdtemp(prefix="icsg3d-gui-")) / "settings.ini"
    return QSettings(str(scratch), QSettings.Format.IniFormat)


def _open_all(window, args: argparse.Namespace) -> tuple[bool, list[Path]]:  # noqa: ANN001
    """Restore --state, then open every file given; (something shown, files that failed)."""
    opened, failed = False, []
    if args.state is not None:
        from icsg3d_gui import session

        try:
            session.apply(window, json.loads(args.state.read_text(encoding="utf-8")))
            opened = window.state.structure is not None
        except (OSError, ValueError) as exc:
            window.show_error("Session not loaded", f"{args.state}: {exc}")
            failed.append(args.state)
    for path in [*args.files, *([args.open] if args.open is not None else [])]:
        if window.open_path(path):
            opened = True
        else:
            failed.append(path)
    return opened, failed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    from core.errors import ICSGError
    from core.model_sets import resolve_models

    try:
        models_dir = resolve_models(args.models)
    except ICSGError as exc:
        log.error("%s", exc)
        return 2
    QCoreApplication.setOrganizationName("ICSG3D")
    QCoreApplication.setApplicationName("ICSG3D Studio")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from icsg3d_gui.main_window import MainWindow

    window = MainWindow(models_dir=models_dir, device=args.device, settings=_settings(args))
    if os.environ.get("ICSG3D_FIRST_FRAME_FILE"):
        _record_first_frame(window, os.environ["ICSG3D_FIRST_FRAME_FILE"])
    if args.screenshot is not None:
        window.interactive = False
    window.show()
    app.processEvents()
    if args.screenshot is not None:
        # after show: the dock layout's minimum size is only right once the tabs exist
        w, h = (int(x) for x in args.size.lower().split("x"))
        window.resize(w, h)
        app.processEvents()
    opened, failed = _open_all(window, args)
    if not opened and not failed:
        window.open_gallery(DEFAULT_CRYSTAL)
    if args.screenshot is not None:
        code = 1 if failed else 0
        for path in failed:
            print(f"icsg3d-gui: {path}: could not be opened (see the log above)", file=sys.stderr)
        try:
            print(take_screenshot(app, window, args.screenshot))
        except OSError as exc:
            print(f"icsg3d-gui: {exc}", file=sys.stderr)
            code = 2
        window.close()
        return code
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
