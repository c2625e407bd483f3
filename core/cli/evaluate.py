"""`icsg3d evaluate KIND`: score the method with the CDVAE protocol (core/evaluation.py) and write
the figures (stdout summary, --json, --report).

Each kind is one runner in RUNNERS: it takes the parsed arguments and the read crystals and returns
(metrics, failures). A new kind (e.g. `segmentation`) is one function and one RUNNERS entry.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable

import numpy as np

from core.cli.common import add_prior_options, load_model_set, models_root, report_failures
from core.errors import ICSGError
from core.export import export_json
from core.jsonable import jsonable
from core.perturb import PERTURBATIONS
from core.structures import STRUCTURES_HELP, Entry, Failure
from resources import models_help

Runner = Callable[[argparse.Namespace, list[Entry], list[Failure]], tuple[dict, list[Failure]]]

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


def _roundtrip(args: argparse.Namespace, entries: list[Entry], read_failures: list[Failure]):
    from core.checkpoint import read_meta
    from core.evaluation import roundtrip
    from core.voxel import VoxelConfig

    cfg = VoxelConfig(d=args.grid or 32)
    if args.models:  # the set's own grid (points, largest spacing, gridded cell), --grid overriding d
        meta = read_meta(models_root(args) / "vae")
        cfg = VoxelConfig.from_dict({**meta["normalisers"]["voxel"], **({"d": args.grid} if args.grid else {})})
    result = roundtrip(entries, read_failures, cfg=cfg)
    return {**result.metrics, "voxel": cfg.to_dict()}, result.failures


def _model_set_run(args: argparse.Namespace, entries: list[Entry], read_failures: list[Failure]):
    from core.evaluation import evaluate_model_set

    generation = {"n": args.n, "seed": args.seed, "prior": args.prior, "group": args.prior_group,
                  "train": args.train, "reference": args.reference, "calibrate": args.calibrate,
                  "temperature": args.temperature, "novelty": args.novelty == "on"}  # fmt: skip
    return evaluate_model_set(args.kind, load_model_set(args), entries, read_failures,
                              source=args.source, segmenter=args.segmenter, **generation)  # fmt: skip


RUNNERS: dict[str, Runner] = {
    "roundtrip": _roundtrip,
    "reconstruction": _model_set_run,
    "generation": _model_set_run,
    "properties": _model_set_run,
    "segmentation": _model_set_run,
}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.report import render_report
    from core.structures import load_entries

    entries, read_failures = load_entries(args.data, limit=args.limit)
    if args.where:  # unreadable CSV rows keep their numeric columns, so they are filtered too
        entries = select_entries(entries, args.where)
        read_failures = select_entries(read_failures, args.where)
    if args.perturb:
        from core.perturb import perturbed_entries

        entries = perturbed_entries(entries, args.perturb, seed=args.seed)
    metrics, failures = RUNNERS[args.kind](args, entries, read_failures)
    if args.perturb:
        metrics["perturbation"] = f"{args.perturb} (seed {args.seed})"
    metrics["failures"] = [{"id": f.id, "source": f.source, "reason": f.reason} for f in failures]
    report_failures(failures)
    summary = {k: v for k, v in metrics.items() if k != "failures" and not isinstance(v, dict | list)}
    print(json.dumps(jsonable(summary)))  # the command's output (stdout), not a log line
    if args.json:
        export_json(args.json, metrics, force=True)
    if args.report:
        from core.atomic import atomic_write

        data_name = f"{args.data}" + (f" where {args.where}" if args.where else "")
        atomic_write(args.report, render_report(args.kind, metrics, data=data_name), force=True)
    return 0


def add_evaluate(sub) -> None:  # noqa: ANN001 (argparse's sub-parser collection)
    p = sub.add_parser("evaluate", help="score the method with the CDVAE protocol")
    p.add_argument("kind", choices=list(RUNNERS))
    p.add_argument("--data", required=True, help=STRUCTURES_HELP)
    p.add_argument("--limit", type=int, help="use at most N crystals of --data")
    p.add_argument("--where", help='keep rows whose numeric column passes a test, e.g. "spacegroup.number>=195"')
    p.add_argument("--json", help="write all figures (and every failure) to this JSON file")
    p.add_argument("--report", help="write a Markdown table beside the published figures")
    p.add_argument("--models", help=models_help())
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--n", type=int, default=1000, help="generation: number of samples (default 1000)")
    p.add_argument("--train", help="generation: novelty against these crystals (default: the model set's "
                   "index of its training crystals, known.json.gz)")
    p.add_argument("--calibrate", metavar="STRUCTURES",
                   help="generation: score these real crystals as if generated (the metrics' floor on real data)")
    p.add_argument("--reference", help="generation: crystals to rediscover (default: the --data crystals); "
                   "use crystals held out of training")
    p.add_argument("--source", choices=["true", "decoded"], default="true",
                   help="segmentation: segment the true densities or the VAE's reconstructions of them")
    p.add_argument("--segmenter", choices=["unet", "head", "ensemble"], default=None,
                   help="segmentation: the U-Net alone (default), the VAE's species head, or their mean "
                   "(the last two: --source decoded); reconstruction, generation: how decoding types atoms "
                   "(default: the model set's choice)")
    p.add_argument("--perturb", choices=PERTURBATIONS,
                   help="score copies of the --data crystals with their origin shifted, axes permuted, "
                   "cell re-set, or all three (seeded by --seed): the answer should not change")
    p.add_argument("--grid", type=int, default=None, metavar="D",
                   help="roundtrip: points per cell axis (default 32; the cell may be at most D x 0.45 Å long; "
                        "with --models: the set's own grid)")
    add_prior_options(p, "generation: ")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None,
                   help="generation: the fitted prior's spread (default: the model set's own)")
    p.add_argument("--novelty", choices=["on", "off"], default="on",
                   help="generation: novelty, uniqueness and rediscovery (off: quick sweeps of a setting)")
    p.set_defaults(func=cmd_evaluate)
