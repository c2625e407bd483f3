"""`icsg3d voxelise`: crystals -> density and label grids in one .npz."""

from __future__ import annotations

import argparse
import io
import json
import logging
from pathlib import Path

import numpy as np

from core.cli.common import report_failures
from core.errors import ICSGError, OutputExistsError
from core.structures import STRUCTURES_HELP

log = logging.getLogger("icsg3d")


def cmd_voxelise(args: argparse.Namespace) -> int:
    from core.atomic import atomic_write
    from core.elements import Vocabulary
    from core.structures import load_entries
    from core.voxel import VoxelConfig, Voxeliser, representable

    out = Path(args.out)
    if out.exists() and not args.force:
        raise OutputExistsError(str(out))
    cfg = VoxelConfig(d=args.d)
    entries, failures = load_entries(args.structures, limit=args.limit)
    usable, unusable = representable(entries, cfg)
    failures += unusable
    if not usable:
        raise ICSGError(f"{args.structures}: no crystal could be voxelised ({len(failures)} failures)")
    vocab = Vocabulary.from_structures(e.structure for e in usable)
    density, labels, abc = Voxeliser(cfg, vocab).batch([e.structure for e in usable])
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, density=density, labels=labels, abc=abc, ids=np.array([e.id for e in usable]),
        vocab=np.array(vocab.to_list()), config=json.dumps(cfg.to_dict()),
    )
    atomic_write(out, buffer.getvalue(), force=True)  # --force was checked above
    report_failures(failures)
    log.info("wrote %d grids (d=%d) to %s; %d failures", len(usable), cfg.d, out, len(failures))
    return 0


def add_voxelise(sub) -> None:  # noqa: ANN001 (argparse's sub-parser collection)
    p = sub.add_parser("voxelise", help="crystals -> density/label grids in one .npz")
    p.add_argument("structures", help=STRUCTURES_HELP)
    p.add_argument("--out", required=True, help="output .npz (density, labels, abc, ids, vocab, config)")
    p.add_argument("--d", type=int, default=32, help="grid points per cell axis (default 32)")
    p.add_argument("--limit", type=int, help="read at most N crystals")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(func=cmd_voxelise)
