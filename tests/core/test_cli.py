"""`icsg3d` end to end on tiny inputs: exit codes, summaries, outputs, errors without tracebacks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.structures import write_cif
from tests.tiny_models import tiny_crystals, write_tiny_model_set


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return write_tiny_model_set(tmp_path_factory.mktemp("models"))


@pytest.fixture()
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    for name, s in zip(["cscl", "nacl", "srtio3"], tiny_crystals(), strict=True):
        write_cif(s, folder / f"{name}.cif")
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 4.0\n")
    return folder


def _summary(path: Path) -> list[dict]:
    with open(path / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_bad_input_exits_2_with_one_line(tmp_path, capsys) -> None:
    assert main(["evaluate", "roundtrip", "--data", str(tmp_path / "missing.cif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"icsg3d: error: {tmp_path / 'missing.cif'}: no such file or folder"]


def test_roundtrip_json_counts_broken_input_as_miss(inputs, tmp_path, capsys) -> None:
    out = tmp_path / "r.json"
    assert main(["evaluate", "roundtrip", "--data", str(inputs), "--json", str(out), "--report", str(tmp_path / "r.md")]) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 4 and result["n_matched"] == 3
    assert result["match_rate"] == pytest.approx(0.75)
    assert [f["id"] for f in result["failures"]] == ["broken"]
    assert "| **Ours** |" in (tmp_path / "r.md").read_text()


def test_roundtrip_grid_option_fits_a_long_cell(tmp_path) -> None:
    """A 16 Å cell is too long for 32 points (at most 14.4 Å) but fits 48: a miss, then a match."""
    from pymatgen.core import Lattice, Structure

    long_cell = Structure(Lattice.tetragonal(4.0, 16.0), ["Sr", "Ti", "O", "O"],
                          [[0, 0, 0], [0.5, 0.5, 0.25], [0.5, 0.5, 0.5], [0, 0, 0.75]])  # fmt: skip
    write_cif(long_cell, tmp_path / "in" / "long.cif")
    for grid, matched in ((32, 0), (48, 1)):
        out = tmp_path / f"r{grid}.json"
        args = ["evaluate", "roundtrip", "--data", str(tmp_path / "in"), "--grid", str(grid), "--json", str(out)]
        assert main(args) == 0
        assert json.loads(out.read_text())["n_matched"] == matched


def test_roundtrip_on_a_model_sets_own_grid(tmp_path) -> None:
    """--models: the roundtrip on the set's grid (its d, largest spacing and cell), so a crystal too
    long for the set's grid is a miss there and a match on the default 32-point grid."""
    from pymatgen.core import Lattice, Structure

    root = write_tiny_model_set(tmp_path / "m")
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["normalisers"]["voxel"] = {"d": 16, "max_voxel": 0.55, "cell": "primitive"}
    meta_path.write_text(json.dumps(meta))
    cell = Structure(Lattice.tetragonal(4.0, 10.0), ["Sr", "Ti", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.25], [0.5, 0.5, 0.5], [0, 0, 0.75]])  # fmt: skip
    write_cif(cell, tmp_path / "in" / "long.cif")  # 10 Å > 16 x 0.55 = 8.8 Å; <= 32 x 0.45 = 14.4 Å
    for extra, matched, d in (([], 1, 32), (["--models", str(root)], 0, 16), (["--models", str(root), "--grid", "32"], 1, 32)):
        out = tmp_path / "r.json"
        assert main(["evaluate", "roundtrip", "--data", str(tmp_path / "in"), *extra, "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["n_matched"] == matched and report["voxel"]["d"] == d


def test_voxelise_writes_npz_and_refuses_overwrite(inputs, tmp_path) -> None:
    out = tmp_path / "grids.npz"
    assert main(["voxelise", str(inputs), "--out", str(out), "--d", "16"]) == 0
    data = np.load(out)
    assert data["density"].shape == (3, 16, 16, 16) and list(data["ids"]) == ["cscl", "nacl", "srtio3"]
    assert main(["voxelise", str(inputs), "--out", str(out)]) == 2
    assert main(["voxelise", str(inputs), "--out", str(out), "--force"]) == 0


def test_reconstruct_lists_every_input(models, inputs, tmp_path, capsys) -> None:
    out = tmp_path / "rec"
    # the tiny model is untrained: it gets every crystal wrong, and says so (exit 1: none is ok)
    assert main(["reconstruct", str(inputs), "--models", str(models), "--out", str(out)]) == 1
    rows = _summary(out)
    assert sorted(r["id"] for r in rows) == ["broken", "cscl", "nacl", "srtio3"]
    broken = next(r for r in rows if r["id"] == "broken")
    assert broken["status"] == "error" and "malformed CIF" in broken["error"]
    for r in rows:
        assert r["status"] != "ok", r  # never ok for a crystal the model did not give back
        if r["id"] != "broken":
            assert r["formula_in"] in ("CsCl", "NaCl", "SrTiO3")
        assert (out / f"{r['id']}.cif").exists() == bool(r["formula_out"])
    err = capsys.readouterr().err
    assert "broken: error: malformed CIF" in err
    # a second run must not overwrite without --force
    assert main(["reconstruct", str(inputs), "--models", str(models), "--out", str(out)]) == 2
    assert main(["reconstruct", str(inputs), "--models", str(models), "--out", str(out), "--force"]) == 1


def test_generate_and_interpolate(models, inputs, tmp_path) -> None:
    gen = tmp_path / "gen"
    assert main(["generate", "--n", "5", "--seed", "1", "--models", str(models), "--out", str(gen)]) == 0
    assert [r["id"] for r in _summary(gen)] == [f"sample-{i:05d}" for i in range(5)]
    path = tmp_path / "path"
    args = ["interpolate", str(inputs / "cscl.cif"), str(inputs / "nacl.cif"), "--steps", "4"]
    assert main([*args, "--models", str(models), "--out", str(path)]) == 0
    assert len(_summary(path)) == 4 and np.load(path / "latent_path.npy").shape[0] == 4


def test_predict_json(models, inputs, tmp_path) -> None:
    out = tmp_path / "p.json"
    assert main(["predict", str(inputs), "--models", str(models), "--json", str(out)]) == 0
    rows = {r["id"]: r for r in json.loads(out.read_text())}
    assert rows["broken"]["status"] == "error"
    assert np.isfinite(rows["nacl"]["heat_ref"])


def test_missing_models_is_a_clear_error(inputs, tmp_path, capsys) -> None:
    assert main(["reconstruct", str(inputs), "--models", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "no trained VAE" in capsys.readouterr().err


@pytest.mark.parametrize("source", ["true", "decoded"])
def test_evaluate_segmentation_json_and_report(models, inputs, tmp_path, capsys, source) -> None:
    out, report = tmp_path / "seg.json", tmp_path / "seg.md"
    args = ["evaluate", "segmentation", "--data", str(inputs), "--models", str(models), "--source", source,
            "--json", str(out), "--report", str(report)]  # fmt: skip
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 3 and result["source"] == source and result["segmenter"] == "unet"
    for key in ("voxel_accuracy", "foreground_accuracy", "site_typing_accuracy", "match_rate"):
        assert 0.0 <= result[key] <= 1.0
    assert [f["id"] for f in result["failures"]] == ["broken"]
    assert "Site typing %" in report.read_text()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["segmenter"] == "unet"


def test_evaluate_segmentation_head_needs_decoded_grids(models, inputs, capsys) -> None:
    args = ["evaluate", "segmentation", "--data", str(inputs), "--models", str(models), "--segmenter", "head"]
    assert main(args) != 0
    assert "species head" in capsys.readouterr().err


def test_summary_says_where_the_unet_disagrees(tmp_path) -> None:
    from core.cli.outputs import Row, segmentation_check, write_summary
    from core.pipeline import Decoded

    item = Decoded(density=np.zeros((2, 2, 2)), abc=np.ones(3), disagreements=[(2, "Ti", "Zr"), (4, "O", "F")])
    assert segmentation_check(item) == "U-Net reads site 3 (Ti) as Zr; U-Net reads site 5 (O) as F"
    assert segmentation_check(Decoded(density=np.zeros((2, 2, 2)), abc=np.ones(3))) == ""
    write_summary(tmp_path, [Row("a", "SrTiO3", "SrZrO3", "composition_changed", "x", segmentation_check(item))])
    (row,) = _summary(tmp_path)
    assert row["segmentation_check"].startswith("U-Net reads site 3 (Ti) as Zr") and row["status"] == "composition_changed"
