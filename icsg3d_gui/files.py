"""File export for the app: density grids (CHGCAR, Gaussian cube, .npy) and CIFs, all atomic.

Density grids are (D, D, D) arrays in e/Å^3 with point (i, j, k) at fractional (i/D, j/D, k/D).
- CHGCAR (VASP) stores rho x V_cell (electrons), x index fastest, 5 values per line (VESTA and
  pymatgen's ``Chgcar`` read it back).
- Gaussian cube stores lengths in Bohr and the density in e/Bohr^3, z index fastest.
- .npy stores the (D, D, D) float32 array as is (e/Å^3), with the cell (and atoms) in a sidecar
  ``<name>.json``; .npz stores density, lattice and atoms in one file (``core.volumetric``, which
  reads both back).
Nothing is half-written: text goes to a temporary file that is renamed over the target
(``core.atomic.atomic_write``); callers ask the user before overwriting (``force``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from core.atomic import atomic_write
from core.structures import write_cif

BOHR = 0.529177210903  # Å
DENSITY_FORMATS = {".chgcar": "CHGCAR", ".vasp": "CHGCAR", ".cube": "cube", ".npy": "npy", ".npz": "npz"}


def density_format(path: str | Path) -> str:
    """'CHGCAR', 'cube' or 'npy' from the file name (CHGCAR* names count as CHGCAR)."""
    p = Path(path)
    if p.name.upper().startswith("CHGCAR") or p.name.upper().startswith("CHG"):
        return "CHGCAR"
    try:
        return DENSITY_FORMATS[p.suffix.lower()]
    except KeyError:
        raise ValueError(f"{p}: unknown density format (use CHGCAR, .cube, .npz or .npy)") from None


def chgcar_text(density: np.ndarray, structure) -> str:  # noqa: ANN001 (pymatgen Structure)
    """VASP CHGCAR text: POSCAR block, grid size, rho x V in Fortran order, 5 per line."""
    from pymatgen.io.vasp import Poscar

    values = (np.asarray(density, dtype=float) * structure.volume).ravel(order="F")
    buf = io.StringIO()
    buf.write(Poscar(structure).get_str(significant_figures=8))
    buf.write("\n{:5d}{:5d}{:5d}\n".format(*density.shape))
    _write_rows(buf, values, 5, "{: .11E}")
    return buf.getvalue()


def cube_text(density: np.ndarray, structure, comment: str = "ICSG3D Studio density") -> str:  # noqa: ANN001
    """Gaussian cube text (Bohr, e/Bohr^3), z fastest, 6 values per line, atoms from ``structure``."""
    lat = np.asarray(structure.lattice.matrix, dtype=float) / BOHR
    shape = density.shape
    buf = io.StringIO()
    buf.write(f"{comment}\nelectron density, e/Bohr^3; lengths in Bohr\n")
    buf.write(f"{len(structure):5d} {0.0:12.6f} {0.0:12.6f} {0.0:12.6f}\n")
    for n, vec in zip(shape, lat, strict=True):
        step = vec / n
        buf.write(f"{n:5d} {step[0]:12.6f} {step[1]:12.6f} {step[2]:12.6f}\n")
    for site in structure:
        z_num = site.specie.Z if hasattr(site.specie, "Z") else 0
        x, y, z = np.asarray(site.coords) / BOHR
        buf.write(f"{z_num:5d} {float(z_num):12.6f} {x:12.6f} {y:12.6f} {z:12.6f}\n")
    values = np.asarray(density, dtype=float) * BOHR**3
    for i in range(shape[0]):
        for j in range(shape[1]):
            _write_rows(buf, values[i, j, :], 6, "{: .5E}")
    return buf.getvalue()


def _write_rows(buf: io.StringIO, values: np.ndarray, per_line: int, fmt: str) -> None:
    for start in range(0, len(values), per_line):
        buf.write(" ".join(fmt.format(v) for v in values[start : start + per_line]) + "\n")


def export_density(path: str | Path, density: np.ndarray, structure, force: bool = False,  # noqa: ANN001
                   lattice: np.ndarray | None = None) -> Path:  # fmt: skip
    """Write ``density`` (D, D, D) e/Å^3 in the format named by ``path`` (CHGCAR, .cube, .npz, .npy).

    CHGCAR and cube need the crystal (cell and atoms); .npz and .npy need a cell (``lattice``, or
    the crystal's) and store the atoms when there is a crystal; .npy without a cell writes the
    bare array (it then opens only with a sidecar written by hand).
    """
    from core.volumetric import grid_npz_bytes, grid_sidecar_text

    fmt = density_format(path)
    if lattice is None and structure is not None:
        lattice = np.asarray(structure.lattice.matrix)
    if fmt == "npz":
        if lattice is None:
            raise ValueError(f"{path}: .npz needs the grid's cell")
        return atomic_write(path, grid_npz_bytes(density, lattice, structure), force=force)
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, np.asarray(density, dtype=np.float32))
        out = atomic_write(path, buf.getvalue(), force=force)
        if lattice is not None:
            atomic_write(Path(path).with_suffix(".json"), grid_sidecar_text(lattice, structure), force=True)
        return out
    if structure is None:
        raise ValueError(f"{path}: {fmt} needs a crystal (cell and atoms); export .npz instead")
    text = chgcar_text(density, structure) if fmt == "CHGCAR" else cube_text(density, structure)
    return atomic_write(path, text, force=force)


def export_cif(path: str | Path, structure, symprec: float | None, force: bool = False) -> Path:  # noqa: ANN001
    """Atomic CIF export: symmetrised with ``symprec`` (Å) or P1 when None."""
    return write_cif(structure, path, symprec=symprec, force=force)
