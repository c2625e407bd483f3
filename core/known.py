"""The crystals a model set trained on, as a compact offline index: "new" or "known: <id>".

Shipped beside the weights (``known.json.gz``: ids, lattices, species and fractional coordinates,
a few hundred kB for 14k crystals; the data themselves are not shipped). Lookups go through a
reduced-formula index and then pymatgen's StructureMatcher with the CDVAE settings, so a lookup
costs a handful of matcher calls, and 10,000 samples take seconds to minutes, not hours.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from core.atomic import atomic_write
from core.errors import CheckpointError
from core.metrics.matching import cdvae_matcher

FILENAME = "known.json.gz"
FORMAT = "icsg3d-known-crystals/1"


@dataclass
class KnownCrystals:
    """Structures by id, grouped by reduced formula for matching."""

    ids: list[str]
    structures: list[Structure]
    _by_formula: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.structures):
            raise ValueError(f"{len(self.ids)} ids for {len(self.structures)} structures")
        groups: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(self.structures):
            groups[s.composition.reduced_formula].append(i)
        self._by_formula = dict(groups)
        self._matcher = cdvae_matcher()

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, structure: Structure) -> str | None:
        """The id of a crystal here that ``structure`` matches (CDVAE matcher), else None."""
        for i in self._by_formula.get(structure.composition.reduced_formula, ()):
            try:
                if self._matcher.fit(self.structures[i], structure):
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
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "known crystals") -> KnownCrystals:
        if data.get("format") != FORMAT:
            raise CheckpointError(source, f"not a known-crystal index (format {data.get('format')!r})")
        structures = []
        for lat, z, frac in zip(data["lattice"], data["species"], data["frac"], strict=True):
            structures.append(Structure(Lattice(np.reshape(lat, (3, 3))), z, np.reshape(frac, (-1, 3))))
        return cls([str(i) for i in data["ids"]], structures)

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
