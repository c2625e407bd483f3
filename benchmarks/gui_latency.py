"""Latency of the app's latent sliders, end to end, on the real window (run under xvfb-run -a).

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/gui_latency.py [--models DIR] [--n 20]

Prints one JSON object:
- slider_to_density_ms_median: slider value change -> decoded density rendered in the 3-D view
  (worker decode_density + GUI update + VTK render);
- slider_to_crystal_ms_median: slider release -> atoms, segmentation and properties shown
  (decode + segmentation + CGCNN in the worker, space group/validity analysis, render), or the
  "no crystal recovered" state when segmentation finds none (counted in full_decodes_with_a_crystal);
- worker_decode_ms / worker_full_ms: the model's share (compute inside the worker thread);
- density_result_to_render_ms: the GUI's share of the density path (result received -> rendered);
- render_ms_median: one render of the current scene (software GL under Xvfb on CI machines);
- "models": the model-set folder, or null when none is found (then the slider figures are null:
  there is nothing to decode; render_ms_median is still measured on a gallery crystal).
Timings include everything the user waits for; the machine's load average is reported beside
them because the CI machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _wait(app, cond, timeout: float = 60.0) -> bool:  # noqa: ANN001
    """The app's event-loop wait, woken every 2 ms so that timestamps are checked often."""
    from icsg3d_gui.app import wait_until

    return wait_until(app, cond, timeout, tick_ms=2)


class Probe:
    """Timestamps of state changes and renders (perf_counter)."""

    def __init__(self, win) -> None:  # noqa: ANN001
        self.win = win
        self.density_at = self.crystal_at = self.render_at = self.structure_at = 0.0
        self.recovered = 0
        self.result_at = 0.0
        win.controller.worker.resultReady.connect(lambda _r: self._mark("result_at"))
        win.state.densityChanged.connect(lambda: self._mark("density_at"))
        win.state.propertiesChanged.connect(self._props)
        win.state.structureChanged.connect(
            lambda: self._mark("structure_at") if win.state.source == "decoded" else None)
        win.viewer.rendered.connect(lambda t: setattr(self, "render_at", t))

    def _mark(self, name: str) -> None:
        setattr(self, name, time.perf_counter())

    def _props(self) -> None:
        """The full decode is on screen: its analysis arrived, or it recovered no crystal."""
        st = self.win.state
        if st.source == "decoded" and ("spacegroup" in st.analysis or st.structure is None):
            self.crystal_at = time.perf_counter()
            self.recovered += st.structure is not None


def measure(app, win, n: int, full: bool = True) -> dict:  # noqa: ANN001
    probe = Probe(win)
    compute: dict[str, list[float]] = {"decode": [], "full": []}
    win.controller.worker.resultReady.connect(
        lambda r: compute[r.kind].append(r.compute_ms) if r.kind in compute and not r.error else None)
    slider = win.latent.sliders[0]
    density, crystal, gui = [], [], []
    for i in range(n):
        value = (-1) ** i * (30 + 7 * i) % 300
        t0 = time.perf_counter()
        slider.setValue(value)
        win.latent.settle.stop()  # measure the live path alone
        ok = _wait(app, lambda t0=t0: probe.density_at > t0 and probe.render_at > probe.density_at)
        if ok:
            density.append((probe.render_at - t0) * 1e3)
            gui.append((probe.render_at - probe.result_at) * 1e3)
        _wait(app, win.controller.worker.idle)
        if not full:
            continue
        t0 = time.perf_counter()
        slider.setValue(value + 3)
        slider.sliderReleased.emit()
        # done = the new crystal rendered (atoms after structureChanged) and its analysis shown
        ok = _wait(app, lambda t0=t0: probe.crystal_at > t0 and probe.structure_at > t0
                   and probe.render_at > probe.structure_at)
        if ok:
            crystal.append((max(probe.render_at, probe.crystal_at) - t0) * 1e3)
        _wait(app, win.controller.worker.idle)
    return {"slider_to_density_ms": density, "result_to_render_ms": gui, "slider_to_crystal_ms": crystal, "recovered": probe.recovered,
            "decode_compute_ms": compute["decode"], "full_compute_ms": compute["full"]}


def render_times(app, win, n: int = 10) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        win.viewer.render_now()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _stats(values: list[float], name: str) -> dict:
    if not values:
        return {f"{name}_median": None}
    q = statistics.quantiles(values, n=10) if len(values) >= 2 else [values[0]] * 9
    return {f"{name}_median": round(statistics.median(values), 1), f"{name}_p90": round(q[-1], 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--density-only", action="store_true", help="skip the full-decode measurement")
    p.add_argument("--smoke", action="store_true", help="two slider moves (CI: the benchmark still runs)")
    args = p.parse_args(argv)
    if args.smoke:
        args.n = 2
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from icsg3d_gui.controller import default_models_dir, model_problem
    from icsg3d_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    models = args.models or default_models_dir()
    problem = model_problem(models)
    settings = QSettings(str(Path(os.environ.get("TMPDIR", "/tmp")) / "icsg3d_bench.ini"), QSettings.Format.IniFormat)
    win = MainWindow(models_dir=models, device=args.device, settings=settings)
    win.interactive = False
    win.resize(1400, 900)
    win.show()
    win.open_gallery("SrTiO3_perovskite")
    result: dict = {"smoke": args.smoke, "models": None if problem else str(models), "n": args.n, "window": [1400, 900],
                    "cpu_count": os.cpu_count(), "platform": app.platformName()}
    if problem is None:
        _wait(app, lambda: win.state.has_model and win.latent.components is not None, timeout=600)
        _wait(app, lambda: win.state.z is not None, timeout=120)
        _wait(app, win.controller.worker.idle, timeout=120)
        result["device"] = win.state.model_info.get("device")
        times = measure(app, win, args.n, full=not args.density_only)
        result.update(_stats(times["slider_to_density_ms"], "slider_to_density_ms"))
        result.update(_stats(times["slider_to_crystal_ms"], "slider_to_crystal_ms"))
        result.update(_stats(times["decode_compute_ms"], "worker_decode_ms"))
        result.update(_stats(times["result_to_render_ms"], "density_result_to_render_ms"))
        result.update(_stats(times["full_compute_ms"], "worker_full_ms"))
        result["measured"] = {k: len(v) for k, v in times.items() if k.startswith("slider")}
        result["full_decodes_with_a_crystal"] = times["recovered"]
    else:
        result["note"] = problem
        result.update({"slider_to_density_ms_median": None, "slider_to_crystal_ms_median": None})
        _wait(app, win.controller.worker.idle, timeout=120)
    result.update(_stats(render_times(app, win), "render_ms"))
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    win.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
