"""scripts/select_reconstruction.py refuses data that a choice must not see."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("select_reconstruction", ROOT / "scripts" / "select_reconstruction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_selection_refuses_report_or_training_crystals(tmp_path):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["t1", "t2"], "val_select": ["s1", "s2"], "val_report": ["r1"]}))
    refuse = _script()._refuse_unseen_parts
    refuse(split, ["s1", "s2"], "sel.csv")  # the selection part: fine
    refuse(tmp_path / "missing.json", ["r1"], "sel.csv")  # a set without a split: nothing to check
    with pytest.raises(SystemExit, match=r"sel.csv: 1 of 3 crystals are in .*'val_report' part \(e.g. r1\)"):
        refuse(split, ["s1", "s2", "r1"], "sel.csv")
    with pytest.raises(SystemExit, match=r"'train' part \(e.g. t2\)"):
        refuse(split, ["t2"], "sel.csv")
