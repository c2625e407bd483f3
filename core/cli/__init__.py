"""`icsg3d`: the command-line interface of the core (see DESIGN.md, "CLI contract").

Every sub-command lives in one module of this package and registers itself with an ``add_*``
function; the library below (core.pipeline, core.evaluation, core.train ...) takes plain
arguments and never sees argparse. Exit status 0 on success, 2 on bad input with one clear line on
stderr (never a traceback for a user error). Batch commands record every failure (summary.csv /
JSON) and go on.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from core import __version__
from core.cli.evaluate import add_evaluate
from core.cli.generate import add_generate, add_interpolate, add_reconstruct
from core.cli.predict import add_predict
from core.cli.priors import add_fit_prior, add_index_known
from core.cli.train import add_train
from core.cli.voxelise import add_voxelise
from core.errors import ICSGError

# The order of `icsg3d --help`.
COMMANDS = (add_voxelise, add_evaluate, add_train, add_reconstruct, add_generate, add_fit_prior,
            add_index_known, add_interpolate, add_predict)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icsg3d",
        description="ICSG3D Studio core: voxel generative models of crystals (VAE + U-Net + CGCNN).",
    )
    parser.add_argument("--version", action="version", version=f"icsg3d {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except ICSGError as exc:
        print(f"icsg3d: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("icsg3d: interrupted", file=sys.stderr)
        return 130
