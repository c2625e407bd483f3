"""Property-based fuzzing of the crystal readers: mutated CIF text, random bytes, mutated CSV rows.

The contract: a reader returns a Structure or raises ``StructureError``; never any other exception
(the CLI turns StructureError into one line and exit 2, anything else would be a traceback).
Runs are derandomised so CI is reproducible; set ICSG3D_FUZZ_EXAMPLES=5000 to search harder
with fresh random inputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.groups import SpaceGroup

from core import structures as st
from core.errors import StructureError

_EXTRA = int(os.environ.get("ICSG3D_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_EXTRA or 200,
    deadline=None,
    derandomize=not _EXTRA,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _bases() -> list[str]:
    srtio3 = Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]]
    )
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    tetragonal = Structure(Lattice.tetragonal(3.9, 4.1), ["Ba", "Ti", "O", "O", "O"],
                           [[0, 0, 0], [0.5, 0.5, 0.52], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    return [st.cif_text(srtio3), st.cif_text(srtio3, 0.01), st.cif_text(nacl, 0.01), st.cif_text(tetragonal)]


BASES = _bases()
# A mutated CIF that lost its symmetry-operation loop makes pymatgen build SpaceGroup(name), ~0.8 s
# for Fm-3m, and pymatgen caches those only weakly; holding them keeps the fuzz run to seconds.
_SPACE_GROUPS = [SpaceGroup(symbol) for symbol in ("Pm-3m", "Fm-3m", "P4mm")]
# Characters that matter to a CIF tokenizer (quotes, semicolons, loop_/data_ keywords, numbers).
CIF_CHARS = hs.sampled_from(list("0123456789.-+eE _\n\t'\";#?()/,:xyzloopdatSrTiONaClX*"))
PIECES = hs.one_of(
    hs.text(CIF_CHARS, min_size=1, max_size=12),
    hs.sampled_from(
        ["loop_", "data_", "_cell_length_a", "_atom_site_occupancy", " 0.5", "nan", "1e400", "-1", "?"]
    ),
    hs.text(max_size=4),  # arbitrary unicode
)


@hs.composite
def mutation(draw) -> tuple:
    kind = draw(
        hs.sampled_from(["delete", "insert", "replace", "del_line", "dup_line", "swap_lines", "truncate"])
    )
    return kind, draw(hs.floats(0, 1)), draw(hs.integers(1, 40)), draw(PIECES)


def apply(text: str, op: tuple) -> str:
    kind, where, size, piece = op
    if not text:
        return piece if kind == "insert" else text
    i = min(int(where * len(text)), len(text) - 1)
    lines = text.split("\n")
    j = min(int(where * len(lines)), len(lines) - 1)
    if kind == "delete":
        return text[:i] + text[i + size :]
    if kind == "insert":
        return text[:i] + piece + text[i:]
    if kind == "replace":
        return text[:i] + piece + text[i + len(piece) :]
    if kind == "del_line":
        return "\n".join(lines[:j] + lines[j + 1 :])
    if kind == "dup_line":
        return "\n".join(lines[: j + 1] + lines[j:])
    if kind == "swap_lines":
        k = min(j + 1 + size % 5, len(lines) - 1)
        lines[j], lines[k] = lines[k], lines[j]
        return "\n".join(lines)
    return text[:i]  # truncate


@hs.composite
def mutated_cif(draw) -> str:
    text = draw(hs.sampled_from(BASES))
    for op in draw(hs.lists(mutation(), min_size=1, max_size=5)):
        text = apply(text, op)
    return text


def _parse_and_prepare(text: str, source: str) -> Structure | None:
    """The reader's full path on text; returns None when it raised StructureError (the allowed outcome)."""
    try:
        structure = st.parse_cif(text, source)
    except StructureError as exc:
        assert exc.source == source and exc.reason
        return None
    assert isinstance(structure, Structure)
    try:
        return st.prepare(structure, source)
    except StructureError as exc:
        assert exc.source == source and exc.reason
        return None


def test_apply_mutations_change_text() -> None:
    base = BASES[0]
    assert apply(base, ("delete", 0.5, 3, "")) == base[: len(base) // 2] + base[len(base) // 2 + 3 :]
    assert apply(base, ("truncate", 0.25, 1, "")) == base[: len(base) // 4]
    assert apply(base, ("del_line", 0.0, 1, "")) == base.split("\n", 1)[1]
    assert apply("", ("insert", 0.3, 1, "ab")) == "ab"


def test_unmutated_bases_parse() -> None:
    for text in BASES:
        assert _parse_and_prepare(text, "base.cif") is not None


@FUZZ
@given(text=mutated_cif())
def test_parse_cif_returns_structure_or_structure_error(text: str) -> None:
    _parse_and_prepare(text, "fuzz.cif")


@FUZZ
@given(data=hs.binary(max_size=400), suffix=hs.sampled_from([".cif", ".vasp", "POSCAR"]))
def test_read_structure_on_random_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / (f"x{suffix}" if suffix.startswith(".") else suffix)
    path.write_bytes(data)
    try:
        st.read_structure(path)
    except StructureError as exc:
        assert exc.source == str(path)


@settings(FUZZ, max_examples=max(_EXTRA // 10, 30))
@given(texts=hs.lists(mutated_cif(), min_size=1, max_size=3))
def test_csv_rows_become_entries_or_failures(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "rows.csv"
    ids = [f"m{i}" for i in range(len(texts) + 1)]
    pd.DataFrame({"material_id": ids, "cif": [*texts, BASES[0]]}).to_csv(path, index=False)
    entries, failures = st.load_entries(path)
    # Every row is accounted for and the clean last row always survives its broken neighbours.
    assert sorted([e.id for e in entries] + [f.id for f in failures]) == ids
    assert entries and entries[-1].id == ids[-1]


@pytest.mark.parametrize("base", range(len(BASES)))
def test_every_line_truncation(base: int) -> None:
    """Systematic, not random: cutting the file after a line never raises anything else.

    Every line of the header and the atom loop; every 8th line of a long symmetry-operation loop
    (Fm-3m lists 192 operations and each cut costs a full parse)."""
    lines = BASES[base].split("\n")
    header_end = next(i for i, line in enumerate(lines) if "_symmetry_equiv_pos_as_xyz" in line)
    atoms_start = next(i for i, line in enumerate(lines) if "_atom_site_type_symbol" in line) - 1
    cuts = (
        set(range(header_end + 1))
        | set(range(header_end, atoms_start, 8))
        | set(range(atoms_start, len(lines)))
    )
    assert len(cuts) >= 20
    for n in sorted(cuts):
        _parse_and_prepare("\n".join(lines[:n]), f"cut{n}.cif")
