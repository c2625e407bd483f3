"""The untrained peak-template segmentation on true densities of real crystals of any lattice.

    python benchmarks/template_segmentation.py --data ../shared/data/mp_20_biternary/val.csv.gz \
        [--limit 300] [--d 16] [--max-voxel 0.55]

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIF/POSCAR file, folder, or CSV(.gz) with a cif column")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--max-voxel", type=float, default=0.55)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    entries, failures = load_entries(args.data, limit=args.limit)
    models = SimpleNamespace(vocab=Vocabulary.default(), voxel_cfg=VoxelConfig(d=args.d, max_voxel=args.max_voxel),
                             source="templates")  # fmt: skip
    n = composition = match = off_grid = 0
    start = time.perf_counter()
    for entry in entries:
        crystal, problem = domain_cell(entry.structure, models.voxel_cfg, "any")
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
    print(json.dumps({"data": args.data, "n_read": len(entries), "n_unreadable": len(failures), "n_gridded": n,
                      "off_grid": off_grid, "d": args.d, "max_voxel": args.max_voxel,
                      "composition_rate": composition / n if n else None, "match_rate": match / n if n else None,
                      "seconds_per_crystal": seconds / max(n, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
