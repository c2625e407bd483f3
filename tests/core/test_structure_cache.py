"""core.structure_cache: a CSV of CIFs parsed in processes and cached gives exactly load_entries."""

from __future__ import annotations

import csv
import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from core import structure_cache as sc
from core import structures as st
from core.errors import StructureError
from core.structures import Entry, Failure, load_entries

BROKEN_CIF = "data_x\n_cell_length_a 4.0\n"


def _crystals() -> list[tuple[str, str]]:
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    srtio3 = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], coords)
    return [
        ("mp-22862", str(CifWriter(nacl))),
        ("mp-22865", str(CifWriter(cscl))),
        ("mp-5229", str(CifWriter(srtio3))),
        ("broken-1", BROKEN_CIF),
        ("mp-22865-x2", str(CifWriter(cscl * (2, 1, 1)))),  # a supercell: reduced, with a note
        ("nacl-prim", str(CifWriter(nacl.get_primitive_structure()))),
    ]


def write_csv(path: Path, rows: list[tuple[str, str]] | None = None) -> Path:
    rows = _crystals() if rows is None else rows
    with gzip.open(path, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["material_id", "cif", "band_gap"])
        for i, (mid, cif) in enumerate(rows):
            w.writerow([mid, cif, 0.5 * i])
    return path


def assert_same(a: tuple[list[Entry], list[Failure]], b: tuple[list[Entry], list[Failure]]) -> None:
    (ea, fa), (eb, fb) = a, b
    assert fa == fb
    assert [(e.id, e.source, e.props, e.note) for e in ea] == [(e.id, e.source, e.props, e.note) for e in eb]
    for x, y in zip(ea, eb, strict=True):
        sx, sy = x.structure, y.structure
        assert np.array_equal(sx.lattice.matrix, sy.lattice.matrix)
        assert np.array_equal(sx.frac_coords, sy.frac_coords)
        assert sx.species == sy.species
        assert [s.label for s in sx] == [s.label for s in sy]
        assert sx.site_properties == sy.site_properties and sx.properties == sy.properties
        assert sx == sy


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ICSG3D_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ICSG3D_NO_CACHE", raising=False)
    return write_csv(tmp_path / "tiny.csv.gz")


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("parsed although a cache was there")

    monkeypatch.setattr(st, "csv_row_item", fail)


def test_cached_equals_uncached_and_second_load_reads_the_cache(data: Path, monkeypatch) -> None:
    ref = load_entries(data)
    assert len(ref[0]) == 5 and [f.id for f in ref[1]] == ["broken-1"]
    assert any(e.note for e in ref[0])
    assert_same(sc.load_entries_cached(data, workers=1), ref)
    files = list((data.parent / "cache").glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as z:  # plain arrays only: nothing to unpickle
        assert all(z[name].dtype != object for name in z.files)
    _no_parsing(monkeypatch)
    assert_same(sc.load_entries_cached(data, workers=1), ref)


def test_options_have_their_own_cache(data: Path) -> None:
    assert_same(sc.load_entries_cached(data, limit=2, workers=1), load_entries(data, limit=2))
    assert_same(sc.load_entries_cached(data, max_sites=4, workers=1), load_entries(data, max_sites=4))
    assert_same(sc.load_entries_cached(data, workers=1), load_entries(data))
    assert len(list((data.parent / "cache").glob("*.npz"))) == 3


def test_a_changed_file_invalidates_the_cache(data: Path, caplog) -> None:
    sc.load_entries_cached(data, workers=1)
    write_csv(data, _crystals()[:3])
    with caplog.at_level(logging.WARNING):
        got = sc.load_entries_cached(data, workers=1)
    assert "stale structure cache" in caplog.text
    assert_same(got, load_entries(data))
    assert len(got[0]) == 3


def test_a_corrupt_cache_is_parsed_again_and_rewritten(data: Path, caplog, monkeypatch) -> None:
    ref = sc.load_entries_cached(data, workers=1)
    (file,) = (data.parent / "cache").glob("*.npz")
    file.write_bytes(file.read_bytes()[:200])
    with caplog.at_level(logging.WARNING):
        assert_same(sc.load_entries_cached(data, workers=1), ref)
    assert "corrupt structure cache" in caplog.text
    _no_parsing(monkeypatch)
    assert_same(sc.load_entries_cached(data, workers=1), ref)


def test_an_unwritable_cache_dir_only_warns(data: Path, tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING):
        got = sc.load_entries_cached(data, workers=1, cache_dir=blocker / "cache")
    assert "cannot write the structure cache" in caplog.text
    assert_same(got, load_entries(data))


def test_two_workers_give_the_same_result(data: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("ICSG3D_NO_CACHE", "1")
    monkeypatch.setattr(sc, "MIN_ROWS_PER_WORKER", 1)
    with caplog.at_level(logging.WARNING):
        got = sc.load_entries_cached(data, workers=2)
    assert "cannot parse in" not in caplog.text  # the pool ran
    assert_same(got, sc.load_entries_cached(data, workers=1))
    assert not (data.parent / "cache").exists()


def test_a_pool_that_cannot_start_falls_back_to_this_process(data: Path, monkeypatch, caplog) -> None:
    def no_pool(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError("no processes here")

    monkeypatch.setattr(sc, "ProcessPoolExecutor", no_pool)
    monkeypatch.setattr(sc, "MIN_ROWS_PER_WORKER", 1)
    with caplog.at_level(logging.WARNING):
        got = sc.load_entries_cached(data, workers=2)
    assert "parsing in this one" in caplog.text
    assert_same(got, load_entries(data))


def test_other_inputs_are_not_cached(data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cifs"
    folder.mkdir()
    for mid, cif in _crystals():
        (folder / f"{mid}.cif").write_text(cif)
    assert_same(sc.load_entries_cached(folder), load_entries(folder))
    assert_same(sc.load_entries_cached(folder / "mp-5229.cif"), load_entries(folder / "mp-5229.cif"))
    assert not (tmp_path / "cache").exists()
    with pytest.raises(StructureError):
        sc.load_entries_cached(tmp_path / "missing.csv")


def test_training_reads_through_the_cache(data: Path) -> None:
    from core.train.data import load_sources

    entries, failures = load_sources([data], None)
    assert_same((entries, failures), load_entries(data))
    assert len(list((data.parent / "cache").glob("*.npz"))) == 1


def test_arrays_keep_labels_and_site_properties() -> None:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5]]
    s = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], coords, labels=["Cs1", "Cl7"],
                  site_properties={"magmom": [0.5, -0.5]})  # fmt: skip
    back = sc._unpack(sc._pack(s))
    assert [x.label for x in back] == ["Cs1", "Cl7"] and back.site_properties == s.site_properties
    assert back == s
    ionic = s.copy()
    ionic.add_oxidation_state_by_element({"Cs": 1, "Cl": -1})
    assert sc._pack(ionic) is ionic  # not plain elements: kept as is (and that file is not cached)
