"""DDP: `icsg3d train` under torchrun with 2 CPU (gloo) processes ends with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.checkpoint import load_checkpoint
from tests.core.test_train import TINY_VAE, TINY_VOXEL, write_tiny_csv

# Runs the real CLI; after training each rank writes a hash of its own weights and buffers.
RANK_SCRIPT = """
import hashlib, json, os, sys
from pathlib import Path
import core.train.loop as loop

_fit = loop.Trainer.fit

def fit(self, *args, **kwargs):
    summary = _fit(self, *args, **kwargs)
    h = hashlib.sha256()
    for name, t in sorted(self.model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    info = {"hash": h.hexdigest(), "steps": self.state["global_step"], "world": self.info.world}
    Path(os.environ["ICSG3D_TEST_HASH_DIR"], f"rank{self.info.rank}.json").write_text(json.dumps(info))
    return summary

loop.Trainer.fit = fit
from core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ddp_two_cpu_ranks_end_with_identical_weights(tmp_path: Path) -> None:
    data = write_tiny_csv(tmp_path / "tiny.csv")
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    out = tmp_path / "run"
    env = {**os.environ, "ICSG3D_TEST_HASH_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
        "train", "vae", "--data", str(data), "--out", str(out), "--epochs", "2", "--batch-size", "2",
        "--grid", "8", "--val-frac", "0.25", "--condition", "heat_ref", "--threads", "1",
        "--model-config", json.dumps(TINY_VAE), "--voxel-config", json.dumps(TINY_VOXEL),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["hash"] == ranks[1]["hash"]
    # 9 training crystals sharded over 2 ranks: 5 per rank -> 2 full batches of 2 per epoch.
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4
    # Only rank 0 writes: one metrics file with one train and one val row per epoch.
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4
    load_checkpoint(out / "last", kind="vae")
