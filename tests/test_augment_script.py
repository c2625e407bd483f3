"""scripts/augment_substitutions.py: substitutions only of training crystals, never a data set formula."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
from pymatgen.core import Lattice, Structure

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "augment_substitutions", ROOT / "scripts" / "augment_substitutions.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rock_salt(a: float, cation: str, anion: str) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_parents_are_training_crystals_and_no_formula_of_the_data_comes_back(tmp_path):
    crystals = {"t-nacl": _rock_salt(5.64, "Na", "Cl"), "t-kbr": _rock_salt(6.6, "K", "Br"),
                "h-kcl": _rock_salt(6.29, "K", "Cl"), "h-licl": _rock_salt(5.13, "Li", "Cl")}  # fmt: skip
    source = tmp_path / "src.csv"
    pd.DataFrame([{"material_id": k, "cif": s.to(fmt="cif")} for k, s in crystals.items()]).to_csv(
        source, index=False
    )
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["t-nacl", "t-kbr"], "val": ["h-kcl", "h-licl"]}))
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"vocab": ["Li", "Na", "K", "Rb", "Cs", "F", "Cl", "Br", "I"]}))
    out = tmp_path / "sub.csv"
    _script().main(["--source", str(source), "--split", str(split), "--vocab", str(meta),
                    "--per-parent", "6", "--out", str(out)])  # fmt: skip
    rows = pd.read_csv(out)
    assert len(rows) > 0
    assert set(rows["parent"]) <= {"t-nacl", "t-kbr"}
    assert not set(rows["formula"]) & {"NaCl", "KBr", "KCl", "LiCl"}  # held-out formulas too
    for cif, formula in zip(rows["cif"], rows["formula"], strict=True):
        s = Structure.from_str(cif, fmt="cif")  # the file reads back as the crystal it names
        assert s.composition.reduced_formula == formula
        assert {e.symbol for e in s.composition.elements} <= set(json.loads(meta.read_text())["vocab"])
