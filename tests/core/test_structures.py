"""core.structures: every bad input gets a StructureError naming the input and the reason; round trips."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from core import structures as st
from core.elements import Vocabulary
from core.errors import OutputExistsError, StructureError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MATCHER = StructureMatcher(ltol=1e-3, stol=1e-3, angle_tol=0.1, primitive_cell=False)


def srtio3() -> Structure:
    return Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]]
    )


def nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cscl() -> Structure:
    return Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def p1_cif(structure: Structure) -> str:
    return st.cif_text(structure)


def raises_structure_error(source: str, reason_pattern: str):
    """pytest.raises for a StructureError whose str is '<source>: <reason matching the pattern>'."""
    return pytest.raises(StructureError, match=re.escape(f"{source}: ") + reason_pattern)


# ---------------------------------------------------------------- parse_cif: malformed text


def test_parse_cif_good_text_keeps_the_cell() -> None:
    s = st.parse_cif(p1_cif(srtio3()), "x.cif")
    assert s.composition.reduced_formula == "SrTiO3" and len(s) == 5


@pytest.mark.parametrize("text", ["", "   \n\t\n"])
def test_parse_cif_empty(text: str) -> None:
    with raises_structure_error("x.cif", "empty file$"):
        st.parse_cif(text, "x.cif")


def test_parse_cif_not_a_cif() -> None:
    with raises_structure_error(
        "x.cif", re.escape("malformed CIF: no _cell_length_a (not a CIF, or truncated)")
    ):
        st.parse_cif("hello world\nthis is not a crystal\n", "x.cif")


def test_parse_cif_garbage_with_cell_tag() -> None:
    with raises_structure_error("x.cif", "malformed CIF: "):
        st.parse_cif("data_x\n_cell_length_a 4.0\nloop_ oops 'unterminated\n", "x.cif")


@pytest.mark.parametrize("keep_lines", [3, 8, 14, 18, 22])
def test_parse_cif_truncated_before_atoms(keep_lines: int) -> None:
    text = "\n".join(p1_cif(srtio3()).splitlines()[:keep_lines])
    with raises_structure_error("t.cif", "malformed CIF: "):
        st.parse_cif(text, "t.cif")


def test_parse_cif_truncated_mid_line() -> None:
    text = p1_cif(srtio3())
    with raises_structure_error("t.cif", "malformed CIF: "):
        st.parse_cif(text[: len(text) - 10], "t.cif")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("3.90500000", "0.00000000"),  # zero-length cell
        ("3.90500000", "abc"),  # non-numeric length
        ("90.00000000", "0.00000000"),  # degenerate angles
        ("90.00000000", "180.00000000"),
        ("0.50000000  0.50000000  0.50000000", "?  0.5  0.5"),  # unknown coordinate
        ("0.50000000  0.50000000  0.50000000", "nan  0.5  0.5"),
    ],
)
def test_parse_cif_broken_numbers(old: str, new: str) -> None:
    text = p1_cif(srtio3()).replace(old, new)
    assert text != p1_cif(srtio3())
    with raises_structure_error("b.cif", "malformed CIF: "):
        st.parse_cif(text, "b.cif")


def test_structure_error_is_a_value_error_with_source_and_reason() -> None:
    with pytest.raises(ValueError) as info:
        st.parse_cif("", "some/file.cif")
    assert info.value.source == "some/file.cif" and info.value.reason == "empty file"


# ---------------------------------------------------------------- read_structure: files


def test_read_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.cif"
    with raises_structure_error(str(path), "no such file$"):
        st.read_structure(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_read_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.cif"
    path.write_text(content)
    with raises_structure_error(str(path), "empty file$"):
        st.read_structure(path)


def test_read_folder_as_file(tmp_path: Path) -> None:
    with raises_structure_error(str(tmp_path), "is a folder, not a structure file$"):
        st.read_structure(tmp_path)


def test_read_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.cif"
    path.write_bytes(b"\xff\xfe\x00\x81\x00garbage")
    with raises_structure_error(str(path), re.escape("not a text file (cannot decode as UTF-8)")):
        st.read_structure(path)


def test_read_huge_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lower the limit instead of writing 20 MB: the check must come before reading the text.
    monkeypatch.setattr(st, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.cif"
    path.write_text(p1_cif(srtio3()) + "#" * 2000)
    with raises_structure_error(str(path), "file too large"):
        st.read_structure(path)


def test_read_disordered(tmp_path: Path) -> None:
    disordered = srtio3()
    disordered.replace_species({"Sr": {"Sr": 0.5, "Ba": 0.5}})
    path = tmp_path / "dis.cif"
    path.write_text(p1_cif(disordered))
    with raises_structure_error(str(path), re.escape("partial occupancy on 1 site(s)")):
        st.read_structure(path)


def test_read_vacancy_occupancy(tmp_path: Path) -> None:
    text = p1_cif(srtio3()).replace(
        "0.00000000  0.00000000  0.00000000  1", "0.00000000  0.00000000  0.00000000  0.5"
    )
    path = tmp_path / "vac.cif"
    path.write_text(text)
    with raises_structure_error(str(path), re.escape("partial occupancy on 1 site(s)")):
        st.read_structure(path)


def test_read_element_outside_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / "am.cif"
    path.write_text(p1_cif(srtio3()).replace("Sr  Sr0", "Am  Am0"))
    assert st.read_structure(path).composition.reduced_formula == "AmTiO3"  # no vocab: accepted
    with raises_structure_error(str(path), re.escape("element(s) Am not in the model's vocabulary")):
        st.read_structure(path, vocab=Vocabulary.default())
    with raises_structure_error(str(path), re.escape("element(s) Am, Ti not in the model's vocabulary")):
        st.read_structure(path, vocab=Vocabulary(["O", "Sr"]))


def test_read_non_element_symbol_with_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / "xx.cif"
    path.write_text(p1_cif(srtio3()).replace("Sr  Sr0", "Xx  Xx0"))
    with raises_structure_error(str(path), re.escape("unknown element symbol(s) Xx: not a chemical element")):
        st.read_structure(path, vocab=Vocabulary.default())


def test_read_non_element_symbol_without_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / "xx.cif"
    path.write_text(p1_cif(srtio3()).replace("Sr  Sr0", "Xx  Xx0"))
    with raises_structure_error(str(path), re.escape("unknown element symbol(s) Xx: not a chemical element")):
        st.read_structure(path)


def test_read_too_many_sites(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.arange(5) / 5, np.arange(5) / 5, np.arange(4) / 4, indexing="ij"), -1).reshape(-1, 3)
    species = rng.permutation(["Na"] * 50 + ["Cl"] * 50)  # no symmetry to reduce the cell by
    crowded = Structure(Lattice.cubic(12.0), list(species), grid + rng.uniform(-0.01, 0.01, grid.shape))
    path = tmp_path / "crowded.cif"
    path.write_text(p1_cif(crowded))
    with raises_structure_error(
        str(path), re.escape("100 sites in the conventional cell: more than the grid resolves (80)")
    ):
        st.read_structure(path)
    with raises_structure_error(
        str(path), re.escape("100 sites in the conventional cell: more than the grid resolves (99)")
    ):
        st.read_structure(path, max_sites=99)
    assert len(st.read_structure(path, max_sites=None)) == 100


def test_max_sites_counts_the_conventional_cell(tmp_path: Path) -> None:
    # A 3x3x3 supercell (135 sites) reduces to the 5-site conventional cell: accepted.
    big = srtio3()
    big.make_supercell([3, 3, 3])
    path = tmp_path / "super.cif"
    path.write_text(p1_cif(big))
    assert len(st.read_structure(path)) == 5
    # The primitive NaCl cell (2 sites) becomes the conventional one (8 sites): counted as 8.
    path = tmp_path / "prim.cif"
    path.write_text(p1_cif(nacl().get_primitive_structure()))
    with raises_structure_error(
        str(path), re.escape("8 sites in the conventional cell: more than the grid resolves (4)")
    ):
        st.read_structure(path, max_sites=4)


@pytest.mark.parametrize(
    ("a", "reason"),
    [
        (1e6, "absurd cell: lattice lengths [1000000.0, 1000000.0, 1000000.0] Å outside 1.0-100.0 Å"),
        (0.5, "absurd cell: lattice lengths [0.5, 0.5, 0.5] Å outside 1.0-100.0 Å"),
        ("nan", "absurd cell: lengths [nan, nan, nan] Å, volume nan Å^3"),
    ],
)
def test_read_absurd_cell(tmp_path: Path, a, reason: str) -> None:
    path = tmp_path / "absurd.cif"
    path.write_text(p1_cif(srtio3()).replace("3.90500000", str(a)))
    with raises_structure_error(str(path), re.escape(reason)):
        st.read_structure(path)


def test_check_structure_rejects_empty_structure() -> None:
    with raises_structure_error("e", "structure has no atoms$"):
        st.check_structure(Structure(Lattice.cubic(4.0), [], []), "e")


def test_read_poscar_and_malformed_poscar(tmp_path: Path) -> None:
    good = tmp_path / "POSCAR"
    good.write_text(srtio3().to(fmt="poscar"))
    assert MATCHER.fit(st.read_structure(good), srtio3())
    bad = tmp_path / "bad.vasp"
    bad.write_text("hello\nworld\n")
    with raises_structure_error(str(bad), "malformed POSCAR: "):
        st.read_structure(bad)


def test_read_returns_conventional_standard_cell(tmp_path: Path) -> None:
    path = tmp_path / "prim.cif"
    path.write_text(p1_cif(nacl().get_primitive_structure()))
    s = st.read_structure(path)
    assert len(s) == 8
    np.testing.assert_allclose(s.lattice.abc, [5.64] * 3, rtol=1e-6)
    np.testing.assert_allclose(s.lattice.angles, [90.0] * 3, atol=1e-6)
    assert MATCHER.fit(s, nacl())


# ---------------------------------------------------------------- round trips and writing


@pytest.mark.parametrize("make", [srtio3, nacl, cscl])
@pytest.mark.parametrize("symprec", [None, 0.01])
def test_write_read_round_trip(tmp_path: Path, make, symprec) -> None:
    original = make()
    path = st.write_cif(original, tmp_path / "out.cif", symprec=symprec)
    back = st.read_structure(path)
    assert MATCHER.fit(original, back)
    assert len(back) == len(original)
    if symprec is None:
        assert "'P 1'" in path.read_text()


def test_write_cif_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "out.cif"
    st.write_cif(srtio3(), path)
    with pytest.raises(OutputExistsError, match=re.escape(f"{path}: exists already")):
        st.write_cif(nacl(), path)
    assert "Sr" in path.read_text()  # untouched
    with pytest.raises(FileExistsError):  # OutputExistsError is a FileExistsError too
        st.write_cif(nacl(), path)
    st.write_cif(nacl(), path, force=True)
    assert "Na" in path.read_text() and "Sr" not in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.cif"]  # no temporary files left


def test_write_cif_creates_parent_folders(tmp_path: Path) -> None:
    path = st.write_cif(cscl(), tmp_path / "a" / "b" / "c.cif")
    assert path.is_file() and MATCHER.fit(st.read_structure(path), cscl())


# ---------------------------------------------------------------- load_entries: folders and CSV


def test_load_entries_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with raises_structure_error(str(path), "no such file or folder$"):
        st.load_entries(path)


def test_load_entries_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a crystal")
    with raises_structure_error(str(tmp_path), re.escape("folder holds no CIF/POSCAR files")):
        st.load_entries(tmp_path)


def test_load_entries_folder_records_failures(tmp_path: Path) -> None:
    st.write_cif(srtio3(), tmp_path / "a_good.cif")
    (tmp_path / "b_empty.cif").write_text("")
    (tmp_path / "c_bad.cif").write_text("nonsense")
    st.write_cif(nacl(), tmp_path / "d_good.cif")
    (tmp_path / "readme.txt").write_text("ignored")
    entries, failures = st.load_entries(tmp_path)
    assert [e.id for e in entries] == ["a_good", "d_good"]
    assert [(f.id, f.reason) for f in failures] == [
        ("b_empty", "empty file"),
        ("c_bad", "malformed CIF: no _cell_length_a (not a CIF, or truncated)"),
    ]
    assert failures[0].source == str(tmp_path / "b_empty.cif")
    assert st.load_entries(tmp_path, limit=1)[0][0].id == "a_good"


def test_load_entries_single_bad_file_is_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "bad.cif"
    path.write_text("")
    entries, failures = st.load_entries(path)
    assert entries == [] and [(f.id, f.reason) for f in failures] == [("bad", "empty file")]


def test_csv_without_cif_column(tmp_path: Path) -> None:
    path = tmp_path / "nocif.csv"
    pd.DataFrame({"material_id": ["a"], "x": [1.0]}).to_csv(path, index=False)
    with raises_structure_error(str(path), re.escape("CSV has no 'cif' column (columns: material_id, x)")):
        st.load_entries(path)


@pytest.mark.parametrize("content", ["", 'cif,material_id\n"unterminated,\n'])
def test_unreadable_csv(tmp_path: Path, content: str) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with raises_structure_error(str(path), "cannot read CSV: "):
        st.load_entries(path)


def _mixed_rows() -> pd.DataFrame:
    disordered = srtio3()
    disordered.replace_species({"Sr": {"Sr": 0.5, "Ba": 0.5}})
    return pd.DataFrame(
        {
            "material_id": ["good1", "garbage", "missing", "disordered", "good2"],
            "cif": [p1_cif(srtio3()), "garbage", None, p1_cif(disordered), st.cif_text(nacl(), 0.01)],
            "heat_ref": [1.5, 2.0, 3.0, 4.0, -0.5],
            "note": ["x"] * 5,
        }
    )


@pytest.mark.parametrize("name", ["mixed.csv", "mixed.csv.gz"])
def test_csv_bad_rows_become_failures_and_others_are_read(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    _mixed_rows().to_csv(path, index=False)
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as handle:  # really gzip, not a renamed text file
            assert handle.read(3) == b"mat"
    entries, failures = st.load_entries(path)
    assert [e.id for e in entries] == ["good1", "good2"]
    assert entries[0].props == {"heat_ref": 1.5} and entries[1].props == {"heat_ref": -0.5}
    assert entries[1].structure.composition.reduced_formula == "NaCl" and len(entries[1].structure) == 8
    assert entries[0].source == f"{path}:row 0 (good1)"
    reasons = {f.id: f.reason for f in failures}
    assert list(reasons) == ["garbage", "missing", "disordered"]
    assert reasons["garbage"] == "malformed CIF: no _cell_length_a (not a CIF, or truncated)"
    assert reasons["missing"] == "empty cif cell"
    assert reasons["disordered"].startswith("partial occupancy on 1 site(s)")
    assert failures[2].source == f"{path}:row 3 (disordered)"


def test_csv_vocab_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    _mixed_rows().to_csv(path, index=False)
    entries, failures = st.load_entries(path, vocab=Vocabulary(["Na", "Cl", "O", "Ti"]))
    assert [e.id for e in entries] == ["good2"]
    assert {f.id: f.reason for f in failures}["good1"] == "element(s) Sr not in the model's vocabulary"
    entries, failures = st.load_entries(path, limit=2)
    assert len(entries) + len(failures) == 2


def test_csv_without_material_id_names_rows_by_index(tmp_path: Path) -> None:
    path = tmp_path / "noid.csv"
    pd.DataFrame({"cif": [p1_cif(srtio3()), "junk"]}).to_csv(path, index=False)
    entries, failures = st.load_entries(path)
    assert [e.id for e in entries] == ["noid-0"] and [f.id for f in failures] == ["noid-1"]


@pytest.mark.skipif(not (DATA / "perov_5" / "val.csv.gz").exists(), reason="shared data not present")
def test_real_perov5_rows() -> None:
    entries, failures = st.load_entries(DATA / "perov_5" / "val.csv.gz", limit=3)
    assert failures == [] and len(entries) == 3
    for entry in entries:
        assert len(entry.structure) == 5 and "heat_ref" in entry.props
        np.testing.assert_allclose(entry.structure.lattice.angles, [90.0] * 3, atol=1e-6)
