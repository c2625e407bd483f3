"""Every benchmark runs in CI, in its seconds-long ``--smoke`` mode, so none can rot unnoticed
(an import that no longer exists, a renamed key). The figures themselves are not checked here:
speed targets live in the benchmarks' full runs, not in timed tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py"))
NEEDS_DISPLAY = {"gui_latency", "gui_startup"}
# keys each benchmark's JSON must carry (what the model card and the notes quote)
KEYS = {
    "voxelise": {"structures_per_s", "parse_per_s", "n"},
    "calibrate_metrics": {"reference_row", "coverage", "uniqueness_subset"},
    "models": {"vae_decode_ms_median", "unet_single_ms_median", "cgcnn_single_ms_median", "peak_rss_mb"},
    "gui_latency": {"slider_to_density_ms_median", "slider_to_crystal_ms_median", "render_ms_median"},
    "gui_startup": {"first_frame_s_median", "first_frame_s"},
    "parse": {"cold_per_s", "warm_per_s", "n"},
    "template_segmentation": {"composition_rate", "match_rate", "n_gridded", "off_grid"},
}


def test_every_benchmark_is_listed() -> None:
    assert set(BENCHMARKS) == set(KEYS)


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_smoke(name: str) -> None:
    if name in NEEDS_DISPLAY and not os.environ.get("DISPLAY"):
        pytest.skip("this benchmark opens the app's window and needs an X display (run under xvfb-run -a)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / f"{name}.py"), "--smoke"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    start = proc.stdout.index("{")
    result = json.loads(proc.stdout[start:])
    assert result["smoke"] is True
    missing = KEYS[name] - set(result)
    assert not missing, f"{name} lost keys {missing}"
