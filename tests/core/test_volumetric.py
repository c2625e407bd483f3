"""NumPy grids with a cell (core/volumetric.py): .npz (density + lattice [+ atoms]) and .npy with a
sidecar <name>.json; bad files raise StructureError naming the file and the reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.errors import StructureError
from core.volumetric import density_file_kind, grid_npz_bytes, grid_sidecar_text, read_volumetric

LATTICE = np.array([[4.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.5, 0.0, 6.0]])


def grid(shape=(6, 7, 8)) -> np.ndarray:  # noqa: ANN001
    return np.random.default_rng(0).random(shape).astype(np.float32)


def test_npz_roundtrip_with_and_without_atoms(tmp_path):
    crystal = Structure(Lattice(LATTICE), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rho = grid()
    (tmp_path / "with.npz").write_bytes(grid_npz_bytes(rho, LATTICE, crystal))
    vol = read_volumetric(tmp_path / "with.npz")
    np.testing.assert_array_equal(vol.density, rho)
    np.testing.assert_allclose(vol.lattice, LATTICE)
    assert vol.structure.composition.reduced_formula == "NaCl"
    np.testing.assert_allclose(vol.structure[1].frac_coords, [0.5, 0.5, 0.5])
    (tmp_path / "bare.npz").write_bytes(grid_npz_bytes(rho, LATTICE))
    bare = read_volumetric(tmp_path / "bare.npz")
    assert bare.structure is None and bare.density.shape == (6, 7, 8)
    assert density_file_kind(tmp_path / "bare.npz") == "npz"


def test_npy_takes_its_cell_from_the_sidecar(tmp_path):
    rho = grid()
    np.save(tmp_path / "rho.npy", rho)
    with pytest.raises(StructureError) as err:
        read_volumetric(tmp_path / "rho.npy")
    assert "rho.npy" in str(err.value) and "no cell" in str(err.value) and "rho.json" in str(err.value)
    (tmp_path / "rho.json").write_text(grid_sidecar_text(LATTICE))
    vol = read_volumetric(tmp_path / "rho.npy")
    np.testing.assert_array_equal(vol.density, rho)
    np.testing.assert_allclose(vol.lattice, LATTICE)
    assert vol.structure is None


@pytest.mark.parametrize(
    ("arrays", "reason"),
    [
        ({"density": np.zeros((4, 4))}, "3-D grid"),
        ({"density": np.zeros((4, 4, 4))}, "'lattice'"),
        ({"density": np.full((3, 3, 3), np.nan), "lattice": LATTICE}, "NaN"),
        ({"density": np.zeros((3, 3, 3)), "lattice": np.zeros((3, 3))}, "no volume"),
        ({"density": np.zeros((3, 3, 3)), "lattice": np.eye(2)}, "3 x 3"),
        ({"density": np.zeros((3, 3, 3)), "lattice": LATTICE, "species": np.array(["Na"])}, "both"),
        ({"density": np.zeros((3, 3, 3)), "lattice": LATTICE, "species": np.array(["Xx"]),
          "frac_coords": np.zeros((1, 3))}, "bad atoms"),
    ],
)
def test_bad_npz_files_name_the_file_and_the_reason(tmp_path, arrays, reason):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(StructureError) as err:
        read_volumetric(path)
    assert "bad.npz" in str(err.value) and reason in str(err.value)


def test_broken_and_pickled_files_are_refused(tmp_path):
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(StructureError, match="cut.npz.*not a readable NumPy file"):
        read_volumetric(tmp_path / "cut.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "obj.json").write_text(json.dumps({"lattice": LATTICE.tolist()}))
    with pytest.raises(StructureError, match="obj.npy"):
        read_volumetric(tmp_path / "obj.npy")
    np.save(tmp_path / "nolat.npy", grid())
    (tmp_path / "nolat.json").write_text("{}")
    with pytest.raises(StructureError, match="nolat.json.*lattice"):
        read_volumetric(tmp_path / "nolat.npy")
