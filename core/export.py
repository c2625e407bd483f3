"""Every file the app exports and the CLI writes, as pure functions of data (no Qt): CIFs, density
grids (VASP CHGCAR, Gaussian cube, .npz, .npy with a cell sidecar), NumPy arrays (latent vectors,
latent paths), PNG images from pixels, and JSON (sessions, evaluation figures).

Grids are (D, D, D) arrays in e/Å^3 with point (i, j, k) at fractional (i/D, j/D, k/D), the
convention of core.voxel; core.volumetric reads every grid format back. pymatgen writes the VASP
and cube formats (``Chgcar``, ``VolumetricData``); their units are fixed here (CHGCAR holds
rho x V_cell, cube e/Bohr^3 on a Bohr cell). Nothing is half-written: every file goes to a
temporary file that is renamed over the target (core.atomic.atomic_write), and an existing file
is replaced only with ``force``.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from core.atomic import atomic_write
from core.jsonable import jsonable
from core.structures import write_cif
from core.volumetric import BOHR, grid_npz_bytes, grid_sidecar_text

DENSITY_FORMATS = {".chgcar": "CHGCAR", ".vasp": "CHGCAR", ".cube": "cube", ".npy": "npy", ".npz": "npz"}
CUBE_COMMENT = "ICSG3D Studio density"


def density_format(path: str | Path) -> str:
    """'CHGCAR', 'cube', 'npz' or 'npy' from the file name (CHGCAR*/CHG* names count as CHGCAR)."""
    p = Path(path)
    if p.name.upper().startswith("CHGCAR") or p.name.upper().startswith("CHG"):
        return "CHGCAR"
    try:
        return DENSITY_FORMATS[p.suffix.lower()]
    except KeyError:
        raise ValueError(f"{p}: unknown density format (use CHGCAR, .cube, .npz or .npy)") from None


def _plain(structure: Structure) -> Structure:
    """The crystal without oxidation states: the cube header wants element numbers."""
    plain = structure.copy()
    plain.remove_oxidation_states()
    return plain


def _pymatgen_bytes(write: Any) -> bytes:
    """What pymatgen's ``write(filename)`` writes, read back from a scratch folder (it writes only
    to a named file; atomic_write then puts the bytes in place)."""
    with tempfile.TemporaryDirectory(prefix="icsg3d-export-") as scratch:
        target = Path(scratch) / "grid"
        write(str(target))
        return target.read_bytes()


def chgcar_bytes(density: np.ndarray, structure: Structure) -> bytes:
    """VASP CHGCAR: the POSCAR block, the grid size and rho x V_cell in Fortran order."""
    from pymatgen.io.vasp import Chgcar, Poscar

    data = {"total": np.asarray(density, dtype=float) * structure.volume}
    return _pymatgen_bytes(Chgcar(Poscar(_plain(structure)), data).write_file)


def cube_bytes(density: np.ndarray, structure: Structure, comment: str = CUBE_COMMENT) -> bytes:
    """Gaussian cube: cell and atoms in Bohr, the density in e/Bohr^3, z index fastest."""
    from pymatgen.io.common import VolumetricData

    volumetric = VolumetricData(_plain(structure), {"total": np.asarray(density, dtype=float) * BOHR**3})
    return _pymatgen_bytes(lambda name: volumetric.to_cube(name, comment=comment))


def npy_bytes(array: np.ndarray, dtype: Any = np.float32) -> bytes:
    """.npy bytes of ``array`` as ``dtype`` (None: its own)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=dtype))
    return buffer.getvalue()


def export_density(path: str | Path, density: np.ndarray, structure: Structure | None, force: bool = False,
                   lattice: np.ndarray | None = None) -> Path:  # fmt: skip
    """Write ``density`` (D, D, D) e/Å^3 in the format named by ``path`` (CHGCAR, .cube, .npz, .npy).

    CHGCAR and cube need the crystal (cell and atoms); .npz and .npy need a cell (``lattice``, or
    the crystal's) and store the atoms when there is a crystal; .npy without a cell writes the
    bare array (it then opens only with a sidecar written by hand).
    """
    fmt = density_format(path)
    if lattice is None and structure is not None:
        lattice = np.asarray(structure.lattice.matrix)
    if fmt == "npz":
        if lattice is None:
            raise ValueError(f"{path}: .npz needs the grid's cell")
        return atomic_write(path, grid_npz_bytes(density, lattice, structure), force=force)
    if fmt == "npy":
        out = atomic_write(path, npy_bytes(density), force=force)
        if lattice is not None:
            atomic_write(Path(path).with_suffix(".json"), grid_sidecar_text(lattice, structure), force=True)
        return out
    if structure is None:
        raise ValueError(f"{path}: {fmt} needs a crystal (cell and atoms); export .npz instead")
    data = chgcar_bytes(density, structure) if fmt == "CHGCAR" else cube_bytes(density, structure)
    return atomic_write(path, data, force=force)


def export_cif(path: str | Path, structure: Structure, symprec: float | None = None, force: bool = False) -> Path:
    """A CIF, symmetrised with ``symprec`` (Å) or P1 when None."""
    return write_cif(structure, path, symprec=symprec, force=force)


def export_cifs(folder: str | Path, items: Sequence[tuple[str, Structure]], symprec: float | None = None,
                force: bool = False) -> tuple[list[Path], list[tuple[int, Exception]]]:  # fmt: skip
    """``<stem>.cif`` in ``folder`` for each (stem, crystal) of ``items``: (the paths written, and
    (index into items, error) of each one that failed; one failing does not stop the rest)."""
    written, failed = [], []
    for k, (stem, structure) in enumerate(items):
        try:
            written.append(export_cif(Path(folder) / f"{stem}.cif", structure, symprec, force=force))
        except Exception as exc:  # noqa: BLE001 (e.g. an existing file, a symmetrisation failure)
            failed.append((k, exc))
    return written, failed


def export_npy(path: str | Path, array: np.ndarray, force: bool = False, dtype: Any = np.float32) -> Path:
    """A .npy of ``array`` as ``dtype`` (None: its own): a latent vector z (L,), a latent path."""
    return atomic_write(path, npy_bytes(array, dtype), force=force)


def export_png(path: str | Path, pixels: np.ndarray, force: bool = False) -> Path:
    """An (H, W, 3|4) uint8 image as PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels)).save(buffer, format="PNG")
    return atomic_write(path, buffer.getvalue(), force=force)


def export_json(path: str | Path, data: dict | list, force: bool = False, indent: int = 2) -> Path:
    """JSON with numpy values converted (core.jsonable), ending in a newline."""
    return atomic_write(path, json.dumps(jsonable(data), indent=indent) + "\n", force=force)


def session_dict(source: str, structure: Structure | None, z: np.ndarray | None, cond: int | None,
                 symprec: float | None, display: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """A session (what is shown and how): the shown crystal as P1 CIF text, so a decoded crystal
    comes back too; the latent point; the symmetry tolerance and the display settings."""
    from core.structures import cif_text

    return {
        "version": 1,
        "source": source,
        "cif": cif_text(structure) if structure is not None else None,
        "z": None if z is None else [float(x) for x in z],
        "cond": cond,
        "symprec": symprec,
        "display": display,
    }
