"""Build the built-in gallery of textbook cubic crystals (``resources/gallery/``).

Every crystal is built here from its space group, a lattice constant and Wyckoff positions with
``pymatgen.core.Structure.from_spacegroup``, so the gallery is reproducible from this file alone:

    .venv/bin/python scripts/make_gallery.py            # rewrites resources/gallery/
    .venv/bin/python scripts/make_gallery.py --out DIR  # writes somewhere else

Lattice constants (Å) are the usual room-temperature literature values (CRC Handbook of Chemistry
and Physics; R. W. G. Wyckoff, *Crystal Structures*). Where the cubic form only exists at high
temperature, or the real room-temperature structure is a small distortion of the cubic one, the
entry's ``note`` says so and ``a`` is the cubic (or pseudo-cubic) constant. Each file is checked
before it is written: ordered, cubic, the intended space group, conventional cell, <= 80 sites,
no two atoms closer than 1 Å. Output is deterministic (no timestamps) so reruns give equal files.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pymatgen.symmetry.groups import SpaceGroup

log = logging.getLogger("make_gallery")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from core.atomic import atomic_write  # noqa: E402

DEFAULT_OUT = REPO / "resources" / "gallery"
SYMPREC = 0.01
MAX_SITES = 80
MIN_DISTANCE = 1.0  # Å
HANDBOOK = "CRC Handbook / Wyckoff, Crystal Structures"


@dataclass(frozen=True)
class Spec:
    """One gallery crystal: the space group, the species on each Wyckoff orbit and their coordinates."""

    id: str
    name: str
    structure_type: str
    spacegroup: str
    a: float
    species: tuple[str, ...]
    coords: tuple[tuple[float, float, float], ...]
    note: str = field(default="room-temperature value")
    reference: str = HANDBOOK


# Wyckoff orbits of the recurring structure types (fractional coordinates of one representative).
_ORIGIN = (0.0, 0.0, 0.0)
_BODY = (0.5, 0.5, 0.5)
_FACE = (0.0, 0.5, 0.5)  # Pm-3m 3c
_QUARTER = (0.25, 0.25, 0.25)


def perovskite(a_site: str, b_site: str, x: str, a: float, note: str = "cubic at room temperature") -> Spec:
    """ABX3, Pm-3m: A 1a (0,0,0), B 1b (1/2,1/2,1/2), X 3c (0,1/2,1/2)."""
    formula = f"{a_site}{b_site}{x}3"
    return Spec(
        f"{formula}_perovskite",
        f"{formula} (cubic perovskite)",
        "perovskite",
        "Pm-3m",
        a,
        (a_site, b_site, x),
        (_ORIGIN, _BODY, _FACE),
        note,
    )


def rocksalt(cation: str, anion: str, a: float, note: str = "room-temperature value") -> Spec:
    """AB, Fm-3m (B1): A 4a (0,0,0), B 4b (1/2,1/2,1/2)."""
    formula = f"{cation}{anion}"
    return Spec(
        f"{formula}_rocksalt",
        f"{formula} (rock salt)",
        "rock salt (B1)",
        "Fm-3m",
        a,
        (cation, anion),
        (_ORIGIN, _BODY),
        note,
    )


def cscl(cation: str, anion: str, a: float) -> Spec:
    """AB, Pm-3m (B2): A 1a, B 1b."""
    formula = f"{cation}{anion}"
    return Spec(
        f"{formula}_cscl",
        f"{formula} (caesium chloride type)",
        "CsCl (B2)",
        "Pm-3m",
        a,
        (cation, anion),
        (_ORIGIN, _BODY),
    )


def zincblende(cation: str, anion: str, a: float, note: str = "room-temperature value") -> Spec:
    """AB, F-43m (B3): A 4a (0,0,0), B 4c (1/4,1/4,1/4)."""
    formula = f"{cation}{anion}"
    return Spec(
        f"{formula}_zincblende",
        f"{formula} (zincblende)",
        "zincblende (B3)",
        "F-43m",
        a,
        (cation, anion),
        (_ORIGIN, _QUARTER),
        note,
    )


def diamond(element: str, a: float, name: str) -> Spec:
    """A, Fd-3m (A4), origin choice 1 (pymatgen's default setting): A 8a (0,0,0)."""
    return Spec(f"{element}_diamond", name, "diamond (A4)", "Fd-3m", a, (element,), (_ORIGIN,))


def fluorite(cation: str, anion: str, a: float, note: str = "room-temperature value") -> Spec:
    """AX2, Fm-3m (C1): A 4a (0,0,0), X 8c (1/4,1/4,1/4)."""
    formula = f"{cation}{anion}2"
    return Spec(
        f"{formula}_fluorite",
        f"{formula} (fluorite)",
        "fluorite (C1)",
        "Fm-3m",
        a,
        (cation, anion),
        (_ORIGIN, _QUARTER),
        note,
    )


def heusler(x: str, y: str, z: str, a: float, note: str = "room-temperature value") -> Spec:
    """X2YZ full Heusler, Fm-3m (L2_1): X 8c (1/4,1/4,1/4), Y 4a (0,0,0), Z 4b (1/2,1/2,1/2)."""
    formula = f"{x}2{y}{z}"
    return Spec(
        f"{formula}_heusler",
        f"{formula} (full Heusler)",
        "full Heusler (L2_1)",
        "Fm-3m",
        a,
        (x, y, z),
        (_QUARTER, _ORIGIN, _BODY),
        note,
    )


def metal(element: str, lattice: str, a: float, name: str) -> Spec:
    """fcc (Fm-3m, 4a) or bcc (Im-3m, 2a) element."""
    sg, stype = {"fcc": ("Fm-3m", "fcc (A1)"), "bcc": ("Im-3m", "bcc (A2)")}[lattice]
    return Spec(f"{element}_{lattice}", name, stype, sg, a, (element,), (_ORIGIN,))


_PSEUDO = "pseudo-cubic constant; the room-temperature structure is a {} distortion of the cubic one"
_HIGH_T = "cubic above about {} K; a of the cubic phase"

SPECS: tuple[Spec, ...] = (
    perovskite("Sr", "Ti", "O", 3.905),
    perovskite("Ba", "Ti", "O", 4.00, _HIGH_T.format(393) + " (tetragonal at room temperature)"),
    perovskite("K", "Nb", "O", 4.02, _HIGH_T.format(708)),
    perovskite("La", "Al", "O", 3.79, _PSEUDO.format("rhombohedral (R-3c)")),
    perovskite("Ca", "Ti", "O", 3.84, _PSEUDO.format("orthorhombic (Pnma)")),
    perovskite("K", "Ta", "O", 3.989),
    perovskite("Na", "Nb", "O", 3.95, _HIGH_T.format(913)),
    perovskite("Ba", "Zr", "O", 4.19),
    perovskite("Sr", "Zr", "O", 4.10, _PSEUDO.format("orthorhombic (Pnma)")),
    perovskite("Pb", "Ti", "O", 3.97, _HIGH_T.format(763)),
    perovskite("La", "Mn", "O", 3.95, _PSEUDO.format("orthorhombic (Pnma)")),
    perovskite("Sr", "Ru", "O", 3.93, _PSEUDO.format("orthorhombic (Pnma)")),
    perovskite("Ba", "Sn", "O", 4.116),
    perovskite("Cs", "Pb", "Br", 5.87, _HIGH_T.format(403)),
    perovskite("Cs", "Pb", "Cl", 5.61, _HIGH_T.format(320)),
    perovskite("K", "Mg", "F", 3.99),
    rocksalt("Na", "Cl", 5.64),
    rocksalt("K", "Cl", 6.29),
    rocksalt("Mg", "O", 4.21),
    rocksalt("Li", "F", 4.03),
    rocksalt("Ca", "O", 4.81),
    rocksalt(
        "Ni",
        "O",
        4.18,
        "room-temperature value; a slight rhombohedral distortion below the Neel point is ignored",
    ),
    rocksalt("Pb", "S", 5.94),
    rocksalt("Ti", "N", 4.24),
    cscl("Cs", "Cl", 4.12),
    cscl("Cs", "Br", 4.29),
    zincblende("Ga", "As", 5.653),
    zincblende("Zn", "S", 5.41, "room-temperature value (sphalerite)"),
    zincblende("In", "P", 5.869),
    zincblende("Ga", "P", 5.451),
    diamond("Si", 5.431, "silicon (diamond)"),
    diamond("C", 3.567, "diamond"),
    diamond("Ge", 5.658, "germanium (diamond)"),
    fluorite("Ca", "F", 5.463),
    fluorite("U", "O", 5.47),
    fluorite("Ce", "O", 5.41),
    fluorite("Zr", "O", 5.07, "cubic above about 2640 K (or when stabilised); a of the cubic phase"),
    heusler("Cu", "Mn", "Al", 5.95),
    heusler("Co", "Mn", "Si", 5.65),
    heusler("Ni", "Mn", "Ga", 5.82, "cubic austenite (above the martensitic transition, about 200 K)"),
    heusler("Fe", "V", "Al", 5.76),
    heusler("Co", "Fe", "Si", 5.64),
    metal("Cu", "fcc", 3.615, "copper"),
    metal("Al", "fcc", 4.05, "aluminium"),
    metal("Fe", "bcc", 2.87, "alpha iron"),
    metal("W", "bcc", 3.165, "tungsten"),
    # Fd-3m origin choice 1: Mg 8a (0,0,0), Al 16d (5/8,5/8,5/8), O 32e (u,u,u), u = 0.387.
    Spec(
        "MgAl2O4_spinel",
        "MgAl2O4 (spinel)",
        "spinel (H1_1)",
        "Fd-3m",
        8.08,
        ("Mg", "Al", "O"),
        (_ORIGIN, (0.625, 0.625, 0.625), (0.387, 0.387, 0.387)),
        "room-temperature value; u = 0.387",
    ),
)


@functools.cache
def _space_group(symbol: str) -> SpaceGroup:
    """SpaceGroup objects are slow to build (~0.5 s for Fd-3m) and pymatgen only caches them weakly:
    holding one here makes every later ``from_spacegroup`` call with this symbol reuse it."""
    return SpaceGroup(symbol)


def build(spec: Spec) -> Structure:
    """Structure of one spec, checked: ordered, the intended cubic space group, <= MAX_SITES, no short contacts."""
    _space_group(spec.spacegroup)
    structure = Structure.from_spacegroup(
        spec.spacegroup, Lattice.cubic(spec.a), list(spec.species), [list(c) for c in spec.coords]
    )
    check(spec, structure)
    return structure


def check(spec: Spec, structure: Structure) -> None:
    """Raise ValueError when a built structure breaks one of the gallery's rules."""
    if not structure.is_ordered:
        raise ValueError(f"{spec.id}: not ordered")
    if len(structure) > MAX_SITES:
        raise ValueError(f"{spec.id}: {len(structure)} sites > {MAX_SITES}")
    sga = SpacegroupAnalyzer(structure, symprec=SYMPREC)
    if sga.get_crystal_system() != "cubic" or sga.get_space_group_symbol() != spec.spacegroup:
        raise ValueError(f"{spec.id}: found {sga.get_space_group_symbol()}, expected {spec.spacegroup}")
    # The built cell must already be the conventional standard cell (same number of sites, same a).
    conv = sga.get_conventional_standard_structure()
    if len(conv) != len(structure) or not np.isclose(conv.lattice.a, spec.a):
        raise ValueError(f"{spec.id}: not the conventional cell")
    dist = structure.distance_matrix[np.triu_indices(len(structure), k=1)]
    if len(structure) > 1 and dist.min() < MIN_DISTANCE:
        raise ValueError(f"{spec.id}: atoms {dist.min():.3f} Å apart")
    if len(structure) == 1 or structure.lattice.a < MIN_DISTANCE:
        raise ValueError(f"{spec.id}: degenerate cell")


def index_entry(spec: Spec, structure: Structure) -> dict:
    """The index.json record of one crystal."""
    sga = SpacegroupAnalyzer(structure, symprec=SYMPREC)
    return {
        "id": spec.id,
        "file": f"{spec.id}.cif",
        "formula": spec.id.split("_")[0],  # as chemists write it (PbTiO3, Cu2MnAl), not pymatgen's order
        "cell_formula": structure.composition.formula.replace(" ", ""),
        "n_sites": len(structure),
        "name": spec.name,
        "structure_type": spec.structure_type,
        "spacegroup": spec.spacegroup,
        "spacegroup_number": sga.get_space_group_number(),
        "a": spec.a,
        "note": spec.note,
        "reference": spec.reference,
    }


def cif_text(spec: Spec, structure: Structure) -> str:
    """Symmetrised CIF with a comment header saying where the numbers come from."""
    header = (
        f"# {spec.name}: {spec.structure_type}, {spec.spacegroup}, a = {spec.a} Å ({spec.note}).\n"
        f"# Source: {spec.reference}. Built by scripts/make_gallery.py (ICSG3D Studio gallery).\n"
    )
    return header + str(CifWriter(structure, symprec=SYMPREC))


def write_gallery(out: Path, specs: tuple[Spec, ...] = SPECS) -> list[dict]:
    """Write one CIF per spec and index.json into ``out``; returns the index records."""
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate gallery ids")
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for spec in specs:
        structure = build(spec)
        atomic_write(out / f"{spec.id}.cif", cif_text(spec, structure), force=True)
        records.append(index_entry(spec, structure))
    index = {"version": 1, "description": "Textbook cubic crystals, conventional cells", "items": records}
    atomic_write(out / "index.json", json.dumps(index, indent=1, ensure_ascii=False) + "\n", force=True)
    log.info("wrote %d crystals to %s", len(records), out)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: resources/gallery)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_gallery(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
