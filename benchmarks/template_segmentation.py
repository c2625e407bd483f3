"""The untrained peak-template segmentation on true densities of real crystals of any lattice.

    python benchmarks/template_segmentation.py --data ../shared/data/mp_20_biternary/val.csv.gz \
        [--limit 300] [--d 16] [--max-voxel 0.55]
    python benchmarks/template_segmentation.py --smoke     # seconds, on crystals built in code (CI)

Each crystal is gridded as an any-lattice model set grids it (``core.domain.domain_cell``: the
conventional cell, else the Niggli-reduced primitive one), voxelised, and read back by
``core.segmentation.segment_with_templates`` (no trained weights, so any crystals are fair). Prints
one JSON object: the share of gridded crystals whose blobs have the crystal's composition
(``composition_rate``) and whose blobs, as a crystal, match it (``match_rate``: the CDVAE
reconstruction test), the crystals off the grid, and the seconds per crystal.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from core.domain import domain_cell  # noqa: E402
from core.elements import Vocabulary  # noqa: E402
from core.errors import SegmentationError  # noqa: E402
from core.metrics.matching import reconstructs  # noqa: E402
from core.segmentation import segment_with_templates  # noqa: E402
from core.structures import load_entries  # noqa: E402
from core.voxel import VoxelConfig, Voxeliser  # noqa: E402


def read_back(models: SimpleNamespace, crystal: Structure) -> Structure:
    """The crystal the templates read from its true density (SegmentationError when none)."""
    density = Voxeliser(models.voxel_cfg, models.vocab)(crystal).density
    blobs = segment_with_templates(models, density, crystal.lattice.matrix).blobs
    if not blobs:
        raise SegmentationError("no atoms found")
    return Structure(crystal.lattice, [b.symbol for b in blobs], np.array([b.frac for b in blobs]))


def smoke_crystals() -> list[Structure]:
    """Hexagonal ZnO, graphite and a triclinic four-element cell: seconds, no data."""
    from pymatgen.core import Lattice

    return [
        Structure(Lattice.hexagonal(3.25, 5.2), ["Zn", "Zn", "O", "O"],
                  [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.88]]),
        Structure(Lattice.hexagonal(2.464, 6.711), ["C"] * 4,
                  [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]),
        Structure(Lattice.from_parameters(4.1, 4.6, 5.0, 75, 82, 101), ["Na", "Cl", "K", "Br"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0.2], [0.1, 0.5, 0.6]]),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIF/POSCAR file, folder, or CSV(.gz) with a cif column")
    parser.add_argument("--smoke", action="store_true", help="seconds-long run on crystals built in code (CI)")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--max-voxel", type=float, default=0.55)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.smoke:
        structures, failures = smoke_crystals(), []
    elif args.data:
        entries, failures = load_entries(args.data, limit=args.limit)
        structures = [e.structure for e in entries]
    else:
        parser.error("--data or --smoke")
    models = SimpleNamespace(vocab=Vocabulary.default(), voxel_cfg=VoxelConfig(d=args.d, max_voxel=args.max_voxel),
                             source="templates")  # fmt: skip
    n = composition = match = off_grid = 0
    start = time.perf_counter()
    for structure in structures:
        crystal, problem = domain_cell(structure, models.voxel_cfg, "any")
        if problem:
            off_grid += 1
            continue
        n += 1
        try:
            found = read_back(models, crystal)
        except SegmentationError:
            continue
        composition += found.composition.reduced_formula == crystal.composition.reduced_formula \
            and len(found) == len(crystal)
        match += reconstructs(found, crystal)
    seconds = time.perf_counter() - start
    print(json.dumps({"smoke": args.smoke, "data": args.data, "n_read": len(structures), "n_unreadable": len(failures), "n_gridded": n,
                      "off_grid": off_grid, "d": args.d, "max_voxel": args.max_voxel,
                      "composition_rate": composition / n if n else None, "match_rate": match / n if n else None,
                      "seconds_per_crystal": seconds / max(n, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
