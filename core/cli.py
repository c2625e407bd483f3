"""`icsg3d`: the command-line interface of the core (see DESIGN.md, "CLI contract").

Exit status 0 on success, 2 on bad input with one clear line on stderr (never a traceback for
a user error). Batch commands record every failure (summary.csv / JSON) and go on.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core import __version__
from core.errors import ICSGError, OutputExistsError
from core.structures import STRUCTURES_HELP

log = logging.getLogger("icsg3d")



def _write_json(path: Path, data: dict, force: bool = True) -> None:
    from core.atomic import atomic_write

    atomic_write(path, json.dumps(data, indent=2, default=_json_default) + "\n", force=force)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _cmd_voxelise(args: argparse.Namespace) -> int:
    from core.elements import Vocabulary
    from core.structures import load_entries
    from core.voxel import VoxelConfig, Voxeliser, check_representable

    out = Path(args.out)
    if out.exists() and not args.force:
        raise OutputExistsError(str(out))
    cfg = VoxelConfig(d=args.d)
    entries, failures = load_entries(args.structures, limit=args.limit)
    usable = []
    for entry in entries:
        reason = check_representable(entry.structure, cfg)
        if reason:
            failures.append(_failure(entry, reason))
        else:
            usable.append(entry)
    if not usable:
        raise ICSGError(f"{args.structures}: no crystal could be voxelised ({len(failures)} failures)")
    vocab = Vocabulary.from_structures(e.structure for e in usable)
    density, labels, abc = Voxeliser(cfg, vocab).batch([e.structure for e in usable])
    import io

    from core.atomic import atomic_write

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, density=density, labels=labels, abc=abc, ids=np.array([e.id for e in usable]),
        vocab=np.array(vocab.to_list()), config=json.dumps(cfg.to_dict()),
    )
    atomic_write(out, buffer.getvalue(), force=True)  # --force was checked above
    _report_failures(failures)
    log.info("wrote %d grids (d=%d) to %s; %d failures", len(usable), cfg.d, out, len(failures))
    return 0


def _failure(entry, reason: str):
    from core.structures import Failure

    return Failure(entry.id, entry.source, reason)


def _report_failures(failures) -> None:
    for f in failures[:20]:
        log.warning("skipped %s: %s", f.source, f.reason)
    if len(failures) > 20:
        log.warning("... and %d more failures", len(failures) - 20)


_WHERE = re.compile(r"^\s*([\w.\-]+)\s*(>=|<=|==|!=|>|<)\s*([-+0-9.eE]+)\s*$")
_OPS = {">=": np.greater_equal, "<=": np.less_equal, "==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less}


def select_entries(entries: list, where: str | None) -> list:
    """Entries whose numeric property satisfies ``where`` (e.g. "spacegroup.number>=195")."""
    if not where:
        return entries
    match = _WHERE.match(where)
    if not match:
        raise ICSGError(f"--where {where!r}: expected COLUMN OP NUMBER, e.g. spacegroup.number>=195")
    column, op, value = match.group(1), _OPS[match.group(2)], float(match.group(3))
    if entries and not any(column in e.props for e in entries):
        raise ICSGError(f"--where: no numeric column {column!r} in the data")
    return [e for e in entries if column in e.props and op(e.props[column], value)]


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from core.report import render_report
    from core.structures import load_entries

    entries, read_failures = load_entries(args.data, limit=args.limit)
    if args.where:  # unreadable CSV rows keep their numeric columns, so they are filtered too
        entries = select_entries(entries, args.where)
        read_failures = select_entries(read_failures, args.where)
    if args.kind == "roundtrip":
        from core.evaluation import roundtrip

        result = roundtrip(entries, read_failures)
        metrics, failures = result.metrics, result.failures
    else:
        from core.evaluation_models import run_model_evaluation

        metrics, failures = run_model_evaluation(args, entries, read_failures)
    metrics["failures"] = [{"id": f.id, "source": f.source, "reason": f.reason} for f in failures]
    _report_failures(failures)
    summary = {k: v for k, v in metrics.items() if k != "failures" and not isinstance(v, dict | list)}
    print(json.dumps(summary, default=_json_default))
    if args.json:
        _write_json(Path(args.json), metrics)
    if args.report:
        from core.atomic import atomic_write

        data_name = f"{args.data}" + (f" where {args.where}" if args.where else "")
        atomic_write(args.report, render_report(args.kind, metrics, data=data_name), force=True)
    return 0


def _add_voxelise(sub) -> None:
    p = sub.add_parser("voxelise", help="crystals -> density/label grids in one .npz")
    p.add_argument("structures", help=STRUCTURES_HELP)
    p.add_argument("--out", required=True, help="output .npz (density, labels, abc, ids, vocab, config)")
    p.add_argument("--d", type=int, default=32, help="grid points per cell axis (default 32)")
    p.add_argument("--limit", type=int, help="read at most N crystals")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(func=_cmd_voxelise)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score the method with the CDVAE protocol")
    p.add_argument("kind", choices=["roundtrip", "reconstruction", "generation", "properties"])
    p.add_argument("--data", required=True, help=STRUCTURES_HELP)
    p.add_argument("--limit", type=int, help="use at most N crystals of --data")
    p.add_argument("--where", help='keep rows whose numeric column passes a test, e.g. "spacegroup.number>=195"')
    p.add_argument("--json", help="write all figures (and every failure) to this JSON file")
    p.add_argument("--report", help="write a Markdown table beside the published figures")
    p.add_argument("--models", type=Path, help="model set folder (default: the shipped one)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--n", type=int, default=1000, help="generation: number of samples (default 1000)")
    p.add_argument("--train", help="generation: novelty against these crystals (default: the model set's "
                   "index of its training crystals, known.json.gz)")
    p.add_argument("--calibrate", metavar="STRUCTURES",
                   help="generation: score these real crystals as if generated (the metrics' floor on real data)")
    p.add_argument("--reference", help="generation: crystals to rediscover (default: the --data crystals); "
                   "use crystals held out of training")
    from core.commands import prior_arg

    prior_arg(p, "generation: ")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icsg3d",
        description="ICSG3D Studio core: voxel generative models of crystals (VAE + U-Net + CGCNN).",
    )
    parser.add_argument("--version", action="version", version=f"icsg3d {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_voxelise(sub)
    _add_evaluate(sub)
    from core.train.cli import add_train_parser, run_train

    add_train_parser(sub).set_defaults(func=run_train)
    try:
        from core.commands import add_model_commands
    except ImportError:  # the model commands are optional while they are being built
        add_model_commands = None
    if add_model_commands is not None:
        add_model_commands(sub)
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


if __name__ == "__main__":
    sys.exit(main())
