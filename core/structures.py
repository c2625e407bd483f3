"""Reading and writing crystals: CIF, POSCAR, folders of them and CDVAE-style CSV(.gz) files.

Every crystal enters the project through this module, as a pymatgen ``Structure`` in its
conventional standard cell (the original ICSG3D voxelised primitive cells as if orthogonal).
Errors name the input and the reason (``StructureError``); batch reads record bad rows as
``Failure`` objects and go on, so nothing is dropped silently.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Structure
from pymatgen.core.periodic_table import DummySpecies
from pymatgen.io.cif import CifParser, CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from core.atomic import atomic_write
from core.elements import Vocabulary
from core.errors import StructureError

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20_000_000  # a single crystal file larger than this is not a crystal we can grid
STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar")
STRUCTURE_NAMES = ("POSCAR", "CONTCAR")
MIN_LENGTH, MAX_LENGTH = 1.0, 100.0  # Å: plausible lattice lengths of an input cell
DEFAULT_MAX_SITES = 80
STRUCTURES_HELP = "a CIF/POSCAR file, a folder of them, or a CSV(.gz) with a `cif` column"


@dataclass
class Entry:
    """One crystal read from an input: ``id`` names outputs, ``props`` holds numeric columns."""

    id: str
    structure: Structure
    source: str
    props: dict[str, float] = field(default_factory=dict)
    note: str = ""  # what reading changed, e.g. a supercell reduced to the conventional cell


@dataclass
class Failure:
    """An input that could not be read, with the reason (recorded, never dropped)."""

    id: str
    source: str
    reason: str
    props: dict[str, float] = field(default_factory=dict)
    formula: str = ""  # reduced formula when the file parsed (empty when it did not)


def _quiet_parse(fn, *args, **kwargs):
    """Run a pymatgen parser with its warnings captured (logged at debug level, not printed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    for w in caught:
        log.debug("pymatgen: %s", w.message)
    return result


def _first_line_of(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# pymatgen's words for a broken CIF -> words a chemist reads (matched in the exception's text)
CIF_REASONS = (
    ("occupancy", "a site's occupancy is above 1 ({detail}): occupancies of one site must add up to at most 1"),
    ("singular matrix", "the cell has zero volume (a lattice length or angle is 0, or the cell vectors are coplanar)"),
    ("modulo by zero", "the atom list ends early: is the file cut off?"),
    ("_atom_site", "no atom list (_atom_site_ loop) in the data block"),
    ("could not convert string to float", "a number in the file cannot be read ({detail})"),
)


def _cif_reason(exc: BaseException) -> str:
    """The real reason behind pymatgen's "No structure parsed" (its second line), in words."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith("No structure parsed")), "") or type(exc).__name__
    text = f"{type(exc).__name__} {' '.join(lines)}".lower()
    for needle, reason in CIF_REASONS:
        if needle in text:
            return "malformed CIF: " + reason.format(detail=detail.rstrip("."))
    return f"malformed CIF: {detail[:200]}"


def parse_cif(text: str, source: str) -> Structure:
    """Parse CIF text into a Structure as written (no cell change); raises StructureError.

    A CIF of several data blocks gives the first block that holds atoms (metadata blocks, e.g. a
    publication block before the crystal, are skipped, and the log says so)."""
    if not text.strip():
        raise StructureError(source, "empty file")
    if "_cell_length_a" not in text and "_cell_length_a".upper() not in text:
        raise StructureError(source, "malformed CIF: no _cell_length_a (not a CIF, or truncated)")
    try:
        parser = _quiet_parse(CifParser, io.StringIO(text))
        structures = _quiet_parse(parser.parse_structures, primitive=False, on_error="raise")
    except Exception as exc:  # pymatgen raises many types for broken CIFs
        structures = _blocks_with_atoms(text) if text.count("data_") > 1 else []
        if not structures:
            raise StructureError(source, _cif_reason(exc)) from None
        log.info("%s: read the first data block that holds atoms (%d blocks)", source, text.count("data_"))
    if not structures:
        raise StructureError(source, "malformed CIF: no structure found")
    _check_declared_formula(text, structures[0], source)
    return structures[0]


_FORMULA_SUM = re.compile(r"^_chemical_formula_sum\s+(?:'([^']*)'|\"([^\"]*)\"|(\S+))", re.MULTILINE)


def _check_declared_formula(text: str, structure: Structure, source: str) -> None:
    """A file cut off inside its atom list still parses, with atoms missing: compare the atoms
    read with the formula the file declares (``_chemical_formula_sum``), when it declares one."""
    found = _FORMULA_SUM.search(text)
    if found is None:
        return
    declared_text = next(g for g in found.groups() if g is not None)
    try:
        declared = Composition(declared_text.replace(" ", ""))
    except Exception:  # noqa: BLE001 - an unreadable declaration: nothing to compare against
        return
    read = structure.composition.element_composition
    # only atoms missing (a cut): edited symbols and partial occupancies get their own reasons
    missing_only = structure.is_ordered and set(read.elements) <= set(declared.elements)
    if missing_only and declared.num_atoms and not read.reduced_composition.almost_equals(
        declared.element_composition.reduced_composition
    ):
        raise StructureError(
            source,
            f"malformed CIF: the atom list gives {read.reduced_formula} but the file declares "
            f"{declared_text.strip()} (_chemical_formula_sum): is the file cut off?",
        )


def _blocks_with_atoms(text: str) -> list[Structure]:
    """Structures of every data block that parses (the others are skipped)."""
    try:
        parser = _quiet_parse(CifParser, io.StringIO(text))
        return list(_quiet_parse(parser.parse_structures, primitive=False, on_error="ignore"))
    except Exception:  # noqa: BLE001 - nothing readable: the caller reports the first block's reason
        return []


def parse_poscar(text: str, source: str) -> Structure:
    """Parse POSCAR/CONTCAR text; raises StructureError."""
    if not text.strip():
        raise StructureError(source, "empty file")
    try:
        return _quiet_parse(Structure.from_str, text, fmt="poscar")
    except Exception as exc:
        raise StructureError(source, f"malformed POSCAR: {_first_line_of(exc)}") from None


def _is_structure_file(path: Path) -> bool:
    name = path.name
    return path.suffix.lower() in STRUCTURE_SUFFIXES or name.startswith(STRUCTURE_NAMES)


def _read_text(path: Path) -> str:
    if not path.exists():
        raise StructureError(str(path), "no such file")
    if path.is_dir():
        raise StructureError(str(path), "is a folder, not a structure file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise StructureError(str(path), f"file too large ({size / 1e6:.0f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)")
    try:
        return path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise StructureError(str(path), "not a text file (cannot decode as UTF-8)") from None


MIN_DISTANCE = 0.5  # Å: closer atoms are overlapping (a duplicated site), not a crystal
MAX_DISTANCE_CHECK = 2000  # sites: the all-pairs check stays in milliseconds below this


def _check_distances(structure: Structure, source: str) -> None:
    dist = np.array(structure.distance_matrix, dtype=float)
    np.fill_diagonal(dist, np.inf)
    i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
    if dist[i, j] < MIN_DISTANCE:
        raise StructureError(
            source,
            f"atoms {i} ({structure[i].species_string}) and {j} ({structure[j].species_string}) are "
            f"{dist[i, j]:.3f} Å apart (< {MIN_DISTANCE} Å): overlapping atoms, a duplicated site?",
        )


def check_structure(
    structure: Structure, source: str, vocab: Vocabulary | None = None, max_sites: int | None = None
) -> None:
    """Raise StructureError if the crystal is disordered, absurd or outside the vocabulary."""
    if len(structure) == 0:
        raise StructureError(source, "structure has no atoms")
    if not structure.is_ordered:
        disordered = sum(1 for site in structure if not site.is_ordered)
        raise StructureError(
            source,
            f"partial occupancy on {disordered} site(s): disordered structures are not supported; "
            "order it first (e.g. pymatgen OrderDisorderedStructureTransformation)",
        )
    lengths = np.array(structure.lattice.abc)
    if not np.all(np.isfinite(lengths)) or structure.volume <= 0.1 or not np.isfinite(structure.volume):
        raise StructureError(source, f"absurd cell: lengths {lengths.round(3).tolist()} Å, volume {structure.volume:.3g} Å^3")
    if lengths.min() < MIN_LENGTH or lengths.max() > MAX_LENGTH:
        raise StructureError(
            source,
            f"absurd cell: lattice lengths {lengths.round(3).tolist()} Å outside {MIN_LENGTH}-{MAX_LENGTH} Å "
            "(too large for a 32-point grid, or not a crystal)",
        )
    not_elements = sorted({sp.symbol for sp in structure.composition.elements if isinstance(sp, DummySpecies)})
    if not_elements:
        raise StructureError(source, f"unknown element symbol(s) {', '.join(not_elements)}: not a chemical element")
    if vocab is not None:
        unknown = sorted({el.symbol for el in structure.composition.elements} - set(vocab.symbols))
        if unknown:
            raise StructureError(source, f"element(s) {', '.join(unknown)} not in the model's vocabulary")
    if max_sites is not None and len(structure) > max_sites:
        raise StructureError(
            source, f"{len(structure)} sites in the conventional cell: more than the grid resolves ({max_sites})"
        )
    if 1 < len(structure) <= MAX_DISTANCE_CHECK:
        _check_distances(structure, source)


def to_conventional(structure: Structure, source: str = "<structure>", symprec: float = 0.01) -> Structure:
    """The conventional standard cell (spglib); raises StructureError if symmetry analysis fails."""
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        conventional = sga.get_conventional_standard_structure()
    except Exception as exc:
        raise StructureError(source, f"symmetry analysis failed: {_first_line_of(exc)}") from None
    return conventional


def prepare(
    structure: Structure,
    source: str,
    vocab: Vocabulary | None = None,
    max_sites: int | None = DEFAULT_MAX_SITES,
) -> Structure:
    """Check a parsed crystal and return its conventional standard cell (raises StructureError)."""
    check_structure(structure, source)  # disorder and absurd cells before symmetry analysis
    if any(getattr(sp, "oxi_state", None) for sp in structure.composition.elements):
        structure = structure.copy()
        structure.remove_oxidation_states()  # classes are elements; oxidation states are not gridded
    conventional = to_conventional(structure, source)
    check_structure(conventional, source, vocab=vocab, max_sites=max_sites)
    return conventional


def reduction_note(original: Structure, conventional: Structure) -> str:
    """Say so when the conventional cell holds fewer atoms than the file's cell."""
    if len(conventional) < len(original):
        return (f"reduced from the file's {len(original)}-atom cell to the {len(conventional)}-atom conventional "
                "standard cell (the file's cell is a supercell or a non-standard setting)")  # fmt: skip
    return ""


def _prepared(structure: Structure, source: str, vocab, max_sites) -> tuple[Structure, str]:  # noqa: ANN001
    """(conventional cell, note); a StructureError carries the parsed formula in ``formula``."""
    try:
        conventional = prepare(structure, source, vocab=vocab, max_sites=max_sites)
    except StructureError as exc:
        try:
            exc.formula = structure.composition.reduced_formula
        except Exception:  # noqa: BLE001 - a structure too broken to name
            exc.formula = ""
        raise
    return conventional, reduction_note(structure, conventional)


def read_entry(path: str | Path, vocab: Vocabulary | None = None,
               max_sites: int | None = DEFAULT_MAX_SITES) -> tuple[Structure, str]:  # fmt: skip
    """(conventional cell, note) of one CIF or POSCAR file; raises StructureError."""
    path = Path(path)
    text = _read_text(path)
    source = str(path)
    if path.suffix.lower() == ".cif" or "_cell_length_a" in text:
        structure = parse_cif(text, source)
    else:
        structure = parse_poscar(text, source)
    return _prepared(structure, source, vocab, max_sites)


def read_structure(
    path: str | Path, vocab: Vocabulary | None = None, max_sites: int | None = DEFAULT_MAX_SITES
) -> Structure:
    """Read one CIF or POSCAR file into its conventional standard cell; raises StructureError."""
    return read_entry(path, vocab, max_sites)[0]


def _entry_or_failure(entry_id: str, path: Path, vocab, max_sites) -> Entry | Failure:  # noqa: ANN001
    try:
        structure, note = read_entry(path, vocab, max_sites)
    except StructureError as exc:
        return Failure(entry_id, str(path), exc.reason, formula=getattr(exc, "formula", ""))
    return Entry(entry_id, structure, str(path), note=note)


def _csv_props(row: dict) -> dict[str, float]:
    props = {}
    for key, value in row.items():
        if key in ("cif", "material_id") or isinstance(value, str):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        props[key] = number
    return props


def is_csv(path: Path) -> bool:
    """A CSV(.gz) of CIFs, by name (as iter_entries reads it)."""
    return path.name.lower().endswith((".csv", ".csv.gz"))


def read_csv_rows(path: Path, limit: int | None) -> tuple[list[dict], bool]:
    """The rows of a CSV(.gz) of CIFs as dicts, and whether it has a material_id column.

    Raises StructureError when the file as a whole is unusable (unreadable, no ``cif`` column)."""
    import pandas as pd  # imported here: only CSV inputs need it

    try:
        frame = pd.read_csv(path, nrows=limit)
    except Exception as exc:
        raise StructureError(str(path), f"cannot read CSV: {_first_line_of(exc)}") from None
    if "cif" not in frame.columns:
        raise StructureError(str(path), f"CSV has no 'cif' column (columns: {', '.join(map(str, frame.columns))})")
    return frame.to_dict("records"), "material_id" in frame.columns


def csv_row_id(path: Path, row_index: int, row: dict, has_ids: bool) -> str:
    """The id of a CSV row: its material_id, else ``<file stem>-<row>``."""
    return str(row["material_id"]) if has_ids else f"{path.name.split('.')[0]}-{row_index}"


def csv_row_source(path: Path, row_index: int, entry_id: str) -> str:
    """How outputs and failures name a CSV row."""
    return f"{path}:row {row_index} ({entry_id})"


def csv_row_item(path: Path, row_index: int, row: dict, has_ids: bool, vocab, max_sites) -> Entry | Failure:  # noqa: ANN001
    """One CSV row read: an Entry, or a Failure with the reason (the parallel cache calls this too)."""
    entry_id = csv_row_id(path, row_index, row, has_ids)
    source = csv_row_source(path, row_index, entry_id)
    try:
        cif = row["cif"]
        if not isinstance(cif, str):
            raise StructureError(source, "empty cif cell")
        structure, note = _prepared(parse_cif(cif, source), source, vocab, max_sites)
    except StructureError as exc:
        return Failure(entry_id, source, exc.reason, _csv_props(row), getattr(exc, "formula", ""))
    return Entry(entry_id, structure, source, _csv_props(row), note)


def _iter_csv(path: Path, limit: int | None, vocab, max_sites) -> Iterator[Entry | Failure]:
    rows, has_ids = read_csv_rows(path, limit)
    for row_index, row in enumerate(rows):
        yield csv_row_item(path, row_index, row, has_ids, vocab, max_sites)


def iter_entries(
    path: str | Path,
    limit: int | None = None,
    vocab: Vocabulary | None = None,
    max_sites: int | None = DEFAULT_MAX_SITES,
) -> Iterator[Entry | Failure]:
    """Yield an Entry or a Failure for every crystal in a file, folder or CSV(.gz) input.

    Raises StructureError only when the input as a whole is unusable (missing, unreadable CSV).
    """
    path = Path(path)
    if not path.exists():
        raise StructureError(str(path), "no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_structure_file(p))
        if not files:
            raise StructureError(str(path), "folder holds no CIF/POSCAR files")
        for file in files[:limit] if limit else files:
            yield _entry_or_failure(file.stem, file, vocab, max_sites)
        return
    if is_csv(path):
        yield from _iter_csv(path, limit, vocab, max_sites)
        return
    yield _entry_or_failure(path.stem, path, vocab, max_sites)


def load_entries(
    path: str | Path,
    limit: int | None = None,
    vocab: Vocabulary | None = None,
    max_sites: int | None = DEFAULT_MAX_SITES,
) -> tuple[list[Entry], list[Failure]]:
    """All crystals of an input as (entries, failures); see ``iter_entries``."""
    entries: list[Entry] = []
    failures: list[Failure] = []
    for item in iter_entries(path, limit=limit, vocab=vocab, max_sites=max_sites):
        (entries if isinstance(item, Entry) else failures).append(item)
    if failures:
        log.warning("%s: %d of %d inputs could not be read", path, len(failures), len(entries) + len(failures))
    return entries, failures


def cif_text(structure: Structure, symprec: float | None = None) -> str:
    """CIF text of a structure: symmetrised with ``symprec`` (Å), or P1 when None."""
    writer = _quiet_parse(CifWriter, structure, symprec=symprec)
    return str(writer)


def write_cif(structure: Structure, path: str | Path, symprec: float | None = None, force: bool = False) -> Path:
    """Write a CIF atomically (symmetrised with ``symprec`` or P1); refuses to overwrite unless ``force``."""
    return atomic_write(path, cif_text(structure, symprec), force=force)
