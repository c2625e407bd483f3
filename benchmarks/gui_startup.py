"""App start to the first finished frame with a crystal on screen (target <= 3 s on 2 cores).

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/gui_startup.py [--n 5] [--models DIR]

Each run starts a fresh ``icsg3d-gui --screenshot`` process (imports, window, shipped models
loading in the worker, the default crystal drawn); the app writes the wall-clock time of its first
rendered frame showing a crystal (``ICSG3D_FIRST_FRAME_FILE``), and the difference to the moment
the process was started is reported. ``settled_s`` is the whole run (models loaded, worker idle,
screenshot written). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_start(models: str | None, size: str) -> tuple[float, float]:
    """(first frame s, whole run s) of one fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        stamp = Path(tmp) / "first_frame"
        cmd = [sys.executable, "-m", "icsg3d_gui.app", "--screenshot", str(Path(tmp) / "shot.png"), "--size", size]
        if models:
            cmd += ["--models", models]
        env = {**os.environ, "ICSG3D_FIRST_FRAME_FILE": str(stamp)}
        env.pop("QT_QPA_PLATFORM", None)
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        total = time.time() - t0
        if proc.returncode != 0 or not stamp.exists():
            raise RuntimeError(f"icsg3d-gui failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        return float(stamp.read_text()) - t0, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5, help="fresh starts (the first also warms the disk cache)")
    p.add_argument("--models", default=None, help="model set folder (default: the shipped one)")
    p.add_argument("--size", default="1600x1000")
    p.add_argument("--smoke", action="store_true", help="one start (CI: the benchmark still runs)")
    args = p.parse_args(argv)
    n = 1 if args.smoke else args.n
    runs = [one_start(args.models, args.size) for _ in range(n)]
    first = [r[0] for r in runs]
    result = {
        "smoke": args.smoke,
        "n": n,
        "first_frame_s": [round(x, 3) for x in first],
        "first_frame_s_median": round(statistics.median(first), 3),
        "settled_s_median": round(statistics.median(r[1] for r in runs), 3),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
