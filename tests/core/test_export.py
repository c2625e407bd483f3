"""core/export.py: every exported file reads back as what was written (core.volumetric reads the
grids), is written atomically and is not overwritten without ``force``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.export import (
    chgcar_bytes,
    cube_bytes,
    export_cif,
    export_cifs,
    export_density,
    export_json,
    export_npy,
    export_png,
    session_dict,
)
from core.structures import read_structure
from core.volumetric import BOHR, read_volumetric


def monoclinic() -> Structure:
    lattice = Lattice.from_parameters(4.0, 4.5, 5.0, 90, 95, 90)
    crystal = Structure(lattice, ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0.5]])
    crystal.add_oxidation_state_by_element({"Sr": 2, "Ti": 4, "O": -2})  # a decorated crystal exports too
    return crystal


def grid(shape=(6, 7, 8)) -> np.ndarray:  # noqa: ANN001
    return np.random.default_rng(1).random(shape).astype(np.float32)


@pytest.mark.parametrize("name", ["CHGCAR", "rho.cube", "rho.npz", "rho.npy"])
def test_every_density_format_reads_back_as_written(tmp_path, name):
    crystal, rho = monoclinic(), grid()
    path = export_density(tmp_path / name, rho, crystal)
    back = read_volumetric(path)
    np.testing.assert_allclose(back.density, rho, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.lattice, crystal.lattice.matrix, atol=1e-5)
    assert back.structure.composition.reduced_formula == "SrTiO"
    np.testing.assert_allclose(back.structure.frac_coords, crystal.frac_coords, atol=1e-5)


def test_chgcar_stores_rho_times_volume():
    crystal, rho = monoclinic(), grid()
    text = chgcar_bytes(rho, crystal).decode()
    assert text.count("\n") > 6 * 7 * 8 / 5
    first = float(text.split("\n   6   7   8\n")[1].split()[0])
    assert first == pytest.approx(rho[0, 0, 0] * crystal.volume, rel=1e-6)


def test_cube_is_in_bohr_and_z_fastest():
    crystal = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rho = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    lines = cube_bytes(rho, crystal).decode().splitlines()
    assert int(lines[2].split()[0]) == len(crystal)
    assert float(lines[3].split()[1]) == pytest.approx(5.64 / 2 / BOHR, rel=1e-5)
    values = np.array(" ".join(lines[6 + len(crystal):]).split(), dtype=float)
    np.testing.assert_allclose(values / BOHR**3, rho.ravel(order="C"), rtol=1e-5)


def test_density_export_is_atomic_and_refuses_overwrite(tmp_path):
    rho = np.ones((4, 4, 4), np.float32)
    path = export_density(tmp_path / "rho.npy", rho, None)
    np.testing.assert_array_equal(np.load(path), rho)
    with pytest.raises(FileExistsError):
        export_density(path, rho * 2, None)
    export_density(path, rho * 2, None, force=True)
    assert np.load(path)[0, 0, 0] == 2
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    with pytest.raises(ValueError, match="needs a crystal"):
        export_density(tmp_path / "x.cube", rho, None)
    with pytest.raises(ValueError, match="unknown density format"):
        export_density(tmp_path / "x.txt", rho, None)


def test_cif_npy_png_json_and_session_read_back(tmp_path):
    crystal = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    cif = export_cif(tmp_path / "x.cif", crystal, symprec=0.01)
    assert read_structure(cif).composition.reduced_formula == "SrTiO3"
    z = np.linspace(-1, 1, 8)
    np.testing.assert_array_equal(np.load(export_npy(tmp_path / "z.npy", z)), z.astype(np.float32))
    pixels = np.zeros((4, 5, 3), np.uint8)
    pixels[1, 2] = (255, 0, 0)
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(export_png(tmp_path / "x.png", pixels))), pixels)
    session = session_dict("gallery:SrTiO3", crystal, np.float32([0.5, 1.0]), 10, 0.1, {"repeat": (1, 1, 1)})
    data = json.loads(export_json(tmp_path / "s.json", session).read_text())
    assert data["z"] == [0.5, 1.0] and data["display"] == {"repeat": [1, 1, 1]} and data["cif"].startswith("#")
    with pytest.raises(FileExistsError):
        export_json(tmp_path / "s.json", session)


def test_export_cifs_writes_the_rest_when_one_fails(tmp_path):
    crystal = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    (tmp_path / "b.cif").write_text("already here")
    written, failed = export_cifs(tmp_path, [("a", crystal), ("b", crystal), ("c", crystal)])
    assert [p.name for p in written] == ["a.cif", "c.cif"]
    assert [k for k, _ in failed] == [1] and isinstance(failed[0][1], FileExistsError)
