"""Reading density grids users already have: VASP CHGCAR (and LOCPOT, AECCAR), Gaussian cube,
and NumPy grids with a cell.

Returns the crystal and its grid in e/Å^3 with point (i, j, k) at fractional (i/Na, j/Nb, k/Nc),
the convention of ``core.voxel``. pymatgen parses the VASP and cube files (``Chgcar``,
``VolumetricData``); this module fixes the units: CHGCAR stores rho x V_cell, cube stores e/Bohr^3.

NumPy grids (this format is ours; ``grid_npz_bytes`` and ``grid_sidecar_text`` write it):
- ``.npz`` with ``density`` (Na, Nb, Nc) e/Å^3 and ``lattice`` (3, 3) Å, rows a, b, c; optionally
  the crystal as ``species`` (N,) element symbols and ``frac_coords`` (N, 3).
- ``.npy`` holding the (Na, Nb, Nc) grid alone: a grid has no cell, so the cell comes from a
  sidecar ``<name>.json`` beside it (``{"lattice": [[...], [...], [...]]}``, optionally
  ``species`` and ``frac_coords``); without one, the error names the file and the missing cell.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from core.errors import StructureError

BOHR = 0.529177210903  # Å
VASP_NAMES = ("CHGCAR", "CHG", "LOCPOT", "AECCAR", "ELFCAR", "PARCHG")


@dataclass
class Volumetric:
    """A grid read from a file: ``density`` (Na, Nb, Nc) on the cell ``lattice`` (3, 3) Å, the
    file's crystal when it has one (None for a bare grid), and what the grid holds."""

    structure: Structure | None
    density: np.ndarray
    lattice: np.ndarray
    what: str


def density_file_kind(path: str | Path) -> str | None:
    """"vasp", "cube", "npz" or "npy" when ``path`` names a grid file, else None (a crystal file)."""
    p = Path(path)
    if p.suffix.lower() in (".cube", ".npz", ".npy"):
        return p.suffix.lower()[1:]
    if p.name.upper().startswith(VASP_NAMES):
        return "vasp"
    return None


def read_density_file(path: str | Path) -> tuple[Structure, np.ndarray, str]:
    """(crystal, grid (Na, Nb, Nc) in e/Å^3 (LOCPOT: the potential in eV), what the grid holds);
    raises StructureError naming the file and the reason."""
    p = Path(path)
    kind = density_file_kind(p)
    if not p.is_file():
        raise StructureError(str(p), "no such file")
    try:
        if kind == "cube":
            from pymatgen.io.common import VolumetricData

            data = VolumetricData.from_cube(str(p))
            grid = np.asarray(data.data["total"], dtype=np.float64) / BOHR**3  # e/Bohr^3 -> e/Å^3
            return data.structure, grid.astype(np.float32), "density from a Gaussian cube file"
        if kind == "vasp":
            from pymatgen.io.vasp import Chgcar

            data = Chgcar.from_file(str(p))
            grid = np.asarray(data.data["total"], dtype=np.float64)
            if p.name.upper().startswith("LOCPOT"):
                return data.structure, grid.astype(np.float32), "local potential (eV) from a LOCPOT"
            grid = grid / data.structure.volume  # VASP stores rho x V_cell
            return data.structure, grid.astype(np.float32), "density from a VASP file"
    except StructureError:
        raise
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many kinds for broken files
        lines = str(exc).strip().splitlines()
        raise StructureError(str(p), f"unreadable {kind} file ({lines[0][:160] if lines else type(exc).__name__})") from None
    raise StructureError(str(p), "not a density file (CHGCAR, LOCPOT or .cube)")


def read_volumetric(path: str | Path) -> Volumetric:
    """Any grid file (CHGCAR/LOCPOT, cube, .npz, .npy + sidecar); raises StructureError naming
    the file and the reason."""
    p = Path(path)
    kind = density_file_kind(p)
    if kind in ("npz", "npy"):
        return read_numpy_grid(p)
    structure, grid, what = read_density_file(p)
    return Volumetric(structure, grid, np.asarray(structure.lattice.matrix, dtype=float), what)


def read_numpy_grid(path: str | Path) -> Volumetric:
    """A ``.npz`` (density + lattice [+ species, frac_coords]) or a ``.npy`` with its sidecar."""
    p = Path(path)
    if not p.is_file():
        raise StructureError(str(p), "no such file")
    try:
        data = np.load(p, allow_pickle=False)  # no pickles: a grid file never runs code
        if isinstance(data, np.ndarray):
            fields = {"density": data}
        else:
            with data:
                fields = {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - numpy raises many kinds for broken files
        raise StructureError(str(p), f"not a readable NumPy file ({type(exc).__name__}: {exc})") from None
    if p.suffix.lower() == ".npy":
        fields.update(_sidecar(p))
    need = "a .npz grid needs 'density' (D, D, D) e/Å^3 and 'lattice' (3, 3) Å"
    if "density" not in fields:
        raise StructureError(str(p), f"no 'density' array ({need})")
    density = _checked_grid(p, fields["density"])
    if "lattice" not in fields:
        raise StructureError(str(p), f"no 'lattice' array ({need})")
    lattice = _checked_lattice(p, fields["lattice"])
    structure = _crystal(p, lattice, fields.get("species"), fields.get("frac_coords"))
    return Volumetric(structure, density, lattice, "density from a NumPy file")


def _sidecar(p: Path) -> dict:
    side = p.with_suffix(".json")
    if not side.is_file():
        raise StructureError(str(p), f"a .npy grid carries no cell: put the cell in {side.name} beside it "
                                     '({"lattice": [[ax, ay, az], [bx, by, bz], [cx, cy, cz]]} in Å) or save '
                                     "a .npz with 'density' and 'lattice'")  # fmt: skip
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StructureError(str(side), f"unreadable cell file ({exc})") from None
    if not isinstance(meta, dict) or "lattice" not in meta:
        raise StructureError(str(side), "no 'lattice' (3 x 3, Å) in the cell file")
    return {k: np.asarray(meta[k]) for k in ("lattice", "species", "frac_coords") if k in meta}


def _checked_grid(p: Path, grid: np.ndarray) -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim != 3 or min(grid.shape) < 2:
        raise StructureError(str(p), f"the density must be a 3-D grid (Na, Nb, Nc), got shape {grid.shape}")
    if not np.issubdtype(grid.dtype, np.number) or not np.isfinite(grid).all():
        raise StructureError(str(p), "the density has non-numeric, NaN or infinite values")
    return grid.astype(np.float32)


def _checked_lattice(p: Path, lattice: np.ndarray) -> np.ndarray:
    lat = np.asarray(lattice)
    if lat.shape != (3, 3) or not np.issubdtype(lat.dtype, np.number) or not np.isfinite(lat).all():
        raise StructureError(str(p), f"the lattice must be 3 x 3 numbers (rows a, b, c in Å), got shape {lat.shape}")
    lat = lat.astype(float)
    if abs(np.linalg.det(lat)) < 1e-3:
        raise StructureError(str(p), "the lattice has no volume (its rows a, b, c are flat or zero)")
    return lat


def _crystal(p: Path, lattice: np.ndarray, species, frac) -> Structure | None:  # noqa: ANN001
    """The file's crystal, or None when it has no atoms."""
    if species is None and frac is None:
        return None
    if species is None or frac is None:
        raise StructureError(str(p), "atoms need both 'species' and 'frac_coords'")
    frac = np.asarray(frac, dtype=float)
    species = [str(s) for s in np.asarray(species).ravel()]
    if frac.shape != (len(species), 3):
        raise StructureError(str(p), f"'frac_coords' must be ({len(species)}, 3) for {len(species)} species, "
                                     f"got {frac.shape}")  # fmt: skip
    try:
        from pymatgen.core import Element

        for symbol in species:
            Element(symbol)  # Structure would take "Xx" as a dummy species
        return Structure(lattice, species, frac) if species else None
    except Exception as exc:  # noqa: BLE001 - unknown element symbols and the like
        raise StructureError(str(p), f"bad atoms ({exc})") from None


def grid_npz_bytes(density: np.ndarray, lattice: np.ndarray, structure: Structure | None = None) -> bytes:
    """The ``.npz`` this module reads: density, lattice and, with a crystal, its atoms."""
    arrays = {"density": np.asarray(density, dtype=np.float32), "lattice": np.asarray(lattice, dtype=float)}
    if structure is not None and len(structure):
        arrays["species"] = np.array([s.specie.symbol for s in structure])
        arrays["frac_coords"] = np.array([s.frac_coords for s in structure], dtype=float)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def grid_sidecar_text(lattice: np.ndarray, structure: Structure | None = None) -> str:
    """The ``<name>.json`` that gives a ``.npy`` grid its cell (and atoms)."""
    meta: dict = {"lattice": np.asarray(lattice, dtype=float).tolist(), "units": "Å; density e/Å^3"}
    if structure is not None and len(structure):
        meta["species"] = [s.specie.symbol for s in structure]
        meta["frac_coords"] = [[float(x) for x in s.frac_coords] for s in structure]
    return json.dumps(meta, indent=1)


def periodic_trilinear(density: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Values (N,) of a periodic grid (D1, D2, D3) (point i at fractional i/D) at fractional
    positions ``frac`` (N, 3), by trilinear interpolation across the periodic boundary; float
    grids keep their dtype."""
    from scipy.ndimage import map_coordinates

    rho = np.asarray(density)
    if not np.issubdtype(rho.dtype, np.floating):
        rho = rho.astype(np.float64)
    index = np.asarray(frac, dtype=float) * np.asarray(rho.shape, dtype=float)
    return map_coordinates(rho, index.T, order=1, mode="grid-wrap", prefilter=False)
