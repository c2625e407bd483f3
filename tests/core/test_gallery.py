"""The shipped gallery: every CIF valid, cubic, consistent with index.json, and reproducible."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from core import gallery

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "make_gallery.py"


@pytest.fixture(scope="module")
def items() -> list[gallery.GalleryItem]:
    return gallery.list_gallery()


@pytest.fixture(scope="module")
def structures() -> dict[str, Structure]:
    return gallery.load_all()


@pytest.fixture(scope="module")
def index_records() -> list[dict]:
    return json.loads((gallery.gallery_dir() / "index.json").read_text(encoding="utf-8"))["items"]


@pytest.fixture(scope="module")
def script():
    """scripts/make_gallery.py as a module (scripts/ is not a package)."""
    name = "_icsg3d_make_gallery"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body runs.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def test_gallery_dir_is_the_shipped_resource() -> None:
    folder = gallery.gallery_dir()
    assert folder == REPO / "resources" / "gallery"
    assert (folder / "index.json").is_file()


def test_gallery_size_and_unique_ids(items) -> None:
    ids = [item.id for item in items]
    assert 40 <= len(ids) <= 60
    assert len(set(ids)) == len(ids)
    # Every file in the folder is indexed and every indexed file exists.
    on_disk = {p.stem for p in gallery.gallery_dir().glob("*.cif")}
    assert on_disk == set(ids)
    assert all(item.path.is_file() and item.path.stem == item.id for item in items)


def test_every_cif_ordered_cubic_with_recorded_space_group(items, structures) -> None:
    for item in items:
        s = structures[item.id]
        assert s.is_ordered, item.id
        sga = SpacegroupAnalyzer(s, symprec=0.01)
        assert sga.get_crystal_system() == "cubic", item.id
        assert sga.get_space_group_symbol() == item.spacegroup, item.id
        assert sga.get_space_group_number() == item.spacegroup_number, item.id


def test_every_cif_is_the_conventional_cell_with_recorded_a(items, structures) -> None:
    for item in items:
        s = structures[item.id]
        np.testing.assert_allclose(s.lattice.abc, [item.a] * 3, rtol=1e-6, err_msg=item.id)
        np.testing.assert_allclose(s.lattice.angles, [90.0] * 3, atol=1e-6, err_msg=item.id)
        conv = SpacegroupAnalyzer(s, symprec=0.01).get_conventional_standard_structure()
        assert len(conv) == len(s) == item.n_sites, item.id
        assert len(s) <= 80, item.id


def test_no_short_contacts(items, structures) -> None:
    for item in items:
        s = structures[item.id]
        # distance_matrix uses minimum images, so contacts across the cell boundary count too.
        dist = s.distance_matrix[np.triu_indices(len(s), k=1)]
        assert dist.min() >= 1.0, f"{item.id}: {dist.min():.3f} Å"
        # A lone atom (not here) would hide its self-image distance: the cell edge is the minimum.
        assert s.lattice.a >= 2.0, item.id


def test_composition_matches_index(items, structures, index_records) -> None:
    by_id = {rec["id"]: rec for rec in index_records}
    for item in items:
        comp = structures[item.id].composition
        assert Composition(item.formula).reduced_composition == comp.reduced_composition, item.id
        assert comp == Composition(by_id[item.id]["cell_formula"]), item.id
        # the formula shown is the one chemists write ("PbTiO3", where pymatgen says "TiPbO3")
        assert item.formula == item.id.split("_")[0], item.id
    shown = {item.id: item.formula for item in items}
    assert shown["PbTiO3_perovskite"] == "PbTiO3" and shown["Fe2VAl_heusler"] == "Fe2VAl"


def test_known_textbook_entries(structures) -> None:
    srtio3 = structures["SrTiO3_perovskite"]
    assert len(srtio3) == 5 and srtio3.lattice.a == pytest.approx(3.905)
    nacl = structures["NaCl_rocksalt"]
    assert len(nacl) == 8
    # Na-Cl nearest neighbour is a/2 in rock salt.
    assert nacl.distance_matrix[nacl.distance_matrix > 0].min() == pytest.approx(5.64 / 2)
    si = structures["Si_diamond"]
    assert si.distance_matrix[si.distance_matrix > 0].min() == pytest.approx(5.431 * np.sqrt(3) / 4)
    spinel = structures["MgAl2O4_spinel"]
    assert spinel.composition == Composition("Mg8Al16O32")


def test_load_gallery_single(items) -> None:
    s = gallery.load_gallery("CsCl_cscl")
    assert s.composition.reduced_formula == "CsCl" and len(s) == 2


def test_unknown_id_suggests_close_ids() -> None:
    with pytest.raises(KeyError, match="SrTiO3_perovskite"):
        gallery.load_gallery("SrTiO3")
    with pytest.raises(KeyError, match="NaCl_rocksalt"):
        gallery.load_gallery("NaCl_rocksal")
    with pytest.raises(KeyError, match="no gallery crystal 'zzz'"):
        gallery.load_gallery("zzz")


def test_missing_index_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="make_gallery"):
        gallery.list_gallery(tmp_path)


def test_script_reproduces_committed_gallery(tmp_path, script, structures, index_records) -> None:
    records = script.write_gallery(tmp_path)
    assert records == index_records
    rebuilt = gallery.load_all(tmp_path)
    assert set(rebuilt) == set(structures)
    matcher = StructureMatcher(ltol=1e-3, stol=1e-3, angle_tol=0.1, primitive_cell=False, scale=False)
    for item_id, s in structures.items():
        assert matcher.fit(s, rebuilt[item_id]), item_id


def test_script_rejects_a_broken_spec(script) -> None:
    # Two atoms 0.5 Å apart: the script's own checks must refuse to write it.
    bad = script.Spec("Xx_bad", "bad", "test", "Pm-3m", 4.0, ("Na", "Cl"), ((0, 0, 0), (0.125, 0, 0)))
    with pytest.raises(ValueError, match="Xx_bad"):
        script.build(bad)
