"""A corpus of awkward inputs through `icsg3d reconstruct` with the shipped model set: every file
gets a clear status and reason, or a right answer; never `ok` with a wrong crystal."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.cli import main
from core.metrics.matching import cdvae_matcher
from core.pipeline import default_models_dir

pytestmark = pytest.mark.skipif(not (default_models_dir() / "vae" / "meta.json").is_file(),
                                reason="the shipped model set is not in this checkout")  # fmt: skip


def nacl(a: float = 5.64) -> Structure:
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    return Structure(Lattice.cubic(a), ["Na"] * 4 + ["Cl"] * 4, np.concatenate([fcc, (fcc + 0.5) % 1]))


def srtio3() -> Structure:
    return Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip


def wurtzite_zno() -> Structure:
    return Structure(Lattice.hexagonal(3.25, 5.21), ["Zn", "Zn", "O", "O"],
                     [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.382], [2 / 3, 1 / 3, 0.882]])  # fmt: skip


def corpus(folder: Path) -> dict[str, str]:
    """Write the inputs; returns name -> what a right answer looks like (a status and a phrase)."""
    folder.mkdir()
    good = nacl().to(fmt="cif")
    close = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])
    files = {
        "close.cif": close.to(fmt="cif"),
        "supercell.cif": (nacl() * (2, 2, 2)).to(fmt="cif"),
        "zno.cif": wurtzite_zno().to(fmt="cif"),
        "xenon.cif": Structure(Lattice.cubic(5.0), ["Xe"], [[0, 0, 0]]).to(fmt="cif"),
        "multiblock.cif": "data_publication\n_journal_name_full 'Somewhere'\n_publ_author_name 'A. Author'\n\n" + good,
        "occupancy.cif": good.replace("Na0  1  0.00000000  0.00000000  0.00000000  1",
                                      "Na0  1  0.00000000  0.00000000  0.00000000  1.556"),  # fmt: skip
        "flat.cif": good.replace("_cell_length_c   5.64000000", "_cell_length_c   0.00000000"),
        "truncated.cif": "\n".join(good.splitlines()[:-3]) + "\n",
        "disordered.cif": good.replace("Na0  1  0.00000000  0.00000000  0.00000000  1",
                                       "Na0  1  0.00000000  0.00000000  0.00000000  0.5"),  # fmt: skip
        "srtio3.cif": srtio3().to(fmt="cif"),
    }
    for name, text in files.items():
        assert text != good or name == "multiblock.cif", f"{name}: the corruption did not apply"
        (folder / name).write_text(text)
    return {
        "close": "atoms 0 (Na) and 1 (Cl) are 0.056 Å apart",
        "zno": "trained on cubic cells only",
        "xenon": "element(s) Xe not among",
        "occupancy": "occupancy is above 1",
        "flat": "zero volume",
        "truncated": "is the file cut off?",
        "disordered": "partial occupancy",
    }


def test_bad_inputs_get_a_status_and_a_reason_never_a_wrong_ok(tmp_path, capsys):
    expected = corpus(tmp_path / "in")
    out = tmp_path / "out"
    code = main(["reconstruct", str(tmp_path / "in"), "--out", str(out), "--device", "cpu"])
    with open(out / "summary.csv", newline="") as handle:
        rows = {r["id"]: r for r in csv.DictReader(handle)}
    assert len(rows) == 10
    matcher = cdvae_matcher()
    for name, phrase in expected.items():
        assert rows[name]["status"] in ("error", "out_of_domain"), rows[name]
        assert phrase in rows[name]["error"], rows[name]
    assert rows["zno"]["status"] == "out_of_domain" and rows["zno"]["formula_in"] == "ZnO"
    assert rows["close"]["formula_in"] == "NaCl"  # the file parsed: its formula is given
    assert "reduced from the file's 64-atom cell to the 8-atom conventional" in rows["supercell"]["error"]
    assert rows["multiblock"]["formula_in"] == "NaCl"  # the metadata block is skipped, not fatal
    for name, row in rows.items():
        if row["status"] == "ok":  # a right answer: the CIF written is the input crystal
            written = Structure.from_file(out / f"{name}.cif")
            source = Structure.from_file(tmp_path / "in" / f"{name}.cif")
            assert written.composition.reduced_formula == source.composition.reduced_formula, name
            assert matcher.fit(written, source), name
        else:
            assert row["error"], f"{name}: status {row['status']} without a reason"
    err = capsys.readouterr().err
    assert "icsg3d: close: error: atoms 0 (Na) and 1 (Cl)" in err
    assert code == (0 if any(r["status"] == "ok" for r in rows.values()) else 1)


def test_a_single_failed_input_exits_nonzero_and_says_why(tmp_path, capsys):
    path = tmp_path / "zno.cif"
    path.write_text(wurtzite_zno().to(fmt="cif"))
    assert main(["reconstruct", str(path), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 1
    assert "zno: out_of_domain: a non-orthogonal cell" in capsys.readouterr().err
