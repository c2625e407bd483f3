"""The crystals a model set trained on, as a compact offline index: "new" or "known: <id>".

Shipped beside the weights (``known.json.gz``: ids, lattices, species, fractional coordinates and
reduced site counts, a few hundred kB for 14k crystals; the data themselves are not shipped).
Lookups go through an index by reduced formula and reduced site count (formula only for indexes
written before the counts) and then pymatgen's StructureMatcher with the CDVAE settings, so a lookup
costs a handful of matcher calls, and 10,000 samples take seconds to minutes, not hours.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element, Lattice, Structure

from core.atomic import atomic_write
from core.errors import CheckpointError
from core.metrics.matching import cdvae_matcher

FILENAME = "known.json.gz"
FORMAT = "icsg3d-known-crystals/1"


@cache
def _symbol(z: int) -> str:
    return Element.from_Z(int(z)).symbol


def _reduced_formula(numbers: Sequence[int]) -> str:
    return _formula_of(tuple(sorted(numbers)))


@lru_cache(maxsize=65536)
def _formula_of(numbers: tuple[int, ...]) -> str:
    counts: dict[str, int] = {}
    for z in numbers:
        counts[_symbol(z)] = counts.get(_symbol(z), 0) + 1
    return Composition(counts).reduced_formula


def reduced_site_count(structure: Structure) -> int:
    """Sites of the Niggli-reduced primitive cell, found as the CDVAE matcher finds it
    (primitive_cell=True, attempt_supercell=False): two crystals with different counts never match,
    so it splits a one-formula index (carbon_24: every crystal is "C") into small buckets."""
    return len(structure.get_reduced_structure("niggli").get_primitive_structure())


def match_key(structure: Structure, with_sites: bool = True) -> tuple[str, int]:
    """The bucket a crystal is matched in: (reduced formula, reduced site count or 0)."""
    return structure.composition.reduced_formula, reduced_site_count(structure) if with_sites else 0


class KnownCrystals:
    """Structures by id, grouped by reduced formula for matching (built on first use: reading an
    index of 14k crystals stays well under a second)."""

    def __init__(self, ids: Sequence[str], structures: Sequence[Structure] | None = None, *,
                 raw: dict | None = None) -> None:  # fmt: skip
        self.ids = [str(i) for i in ids]
        if structures is not None:
            if len(self.ids) != len(structures):
                raise ValueError(f"{len(self.ids)} ids for {len(structures)} structures")
            self._structures: list[Structure | None] = list(structures)
            formulas = [s.composition.reduced_formula for s in structures]
            self.site_counts: list[int] | None = [reduced_site_count(s) for s in structures]
        else:  # from a file: formulas from the species lists, structures when a lookup needs them
            self._structures = [None] * len(self.ids)
            self._raw = raw or {}
            formulas = [_reduced_formula(z) for z in self._raw["species"]]
            counts = self._raw.get("n_reduced")  # absent from indexes written before session 9
            self.site_counts = [int(n) for n in counts] if counts is not None else None
        groups: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, formula in enumerate(formulas):
            groups[(formula, self.site_counts[i] if self.site_counts is not None else 0)].append(i)
        self._by_key = dict(groups)
        self._matcher = cdvae_matcher()

    @classmethod
    def from_entries(cls, entries: Sequence) -> KnownCrystals:
        """An index of read crystals (``core.structures.Entry``: id and structure)."""
        return cls([e.id for e in entries], [e.structure for e in entries])

    def __len__(self) -> int:
        return len(self.ids)

    def formulas(self) -> set[str]:
        """The reduced formulas of the crystals here."""
        return {formula for formula, _ in self._by_key}

    def structure(self, i: int) -> Structure:
        if self._structures[i] is None:
            raw = self._raw
            self._structures[i] = Structure(Lattice(np.reshape(raw["lattice"][i], (3, 3))), raw["species"][i],
                                            np.reshape(raw["frac"][i], (-1, 3)))  # fmt: skip
        return self._structures[i]

    @property
    def structures(self) -> list[Structure]:
        return [self.structure(i) for i in range(len(self))]

    def match(self, structure: Structure) -> str | None:
        """The id of a crystal here that ``structure`` matches (CDVAE matcher), else None."""
        for i in self._by_key.get(match_key(structure, with_sites=self.site_counts is not None), ()):
            try:
                if self._matcher.fit(self.structure(i), structure):
                    return self.ids[i]
            except Exception:  # noqa: BLE001 - a matcher crash on one pair means "no match" for that pair
                continue
        return None

    def match_all(self, structures: Sequence[Structure | None]) -> list[str | None]:
        return [None if s is None else self.match(s) for s in structures]

    # -- storage ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "ids": list(self.ids),
            "lattice": [np.round(s.lattice.matrix, 4).ravel().tolist() for s in self.structures],
            "species": [[site.specie.Z for site in s] for s in self.structures],
            "frac": [np.round(s.frac_coords, 4).ravel().tolist() for s in self.structures],
            "n_reduced": self.site_counts if self.site_counts is not None else [
                reduced_site_count(s) for s in self.structures],  # fmt: skip
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "known crystals") -> KnownCrystals:
        if data.get("format") != FORMAT:
            raise CheckpointError(source, f"not a known-crystal index (format {data.get('format')!r})")
        if not len(data["ids"]) == len(data["lattice"]) == len(data["species"]) == len(data["frac"]):
            raise CheckpointError(source, "ids, lattices, species and coordinates differ in number")
        if "n_reduced" in data and len(data["n_reduced"]) != len(data["ids"]):
            raise CheckpointError(source, "ids and reduced site counts differ in number")
        return cls(data["ids"], raw={k: data[k] for k in ("lattice", "species", "frac", "n_reduced") if k in data})

    def save(self, path: str | Path) -> Path:
        raw = json.dumps(self.to_dict(), separators=(",", ":")).encode()
        return atomic_write(path, gzip.compress(raw, mtime=0), force=True)

    @classmethod
    def load(cls, path: str | Path) -> KnownCrystals:
        """Read an index (plain JSON: nothing executes); a broken file names itself."""
        try:
            data = json.loads(gzip.decompress(Path(path).read_bytes()))
            return cls.from_dict(data, str(path))
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            raise CheckpointError(str(path), f"unreadable known-crystal index ({exc})") from None
