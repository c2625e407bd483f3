"""`icsg3d predict`: CGCNN properties per crystal, as JSON (stdout or --json)."""

from __future__ import annotations

import argparse
import json

from core.cli.common import add_model_options, load_model_set
from core.cli.outputs import chunks
from core.errors import ICSGError
from core.export import export_json
from core.structures import STRUCTURES_HELP


def cmd_predict(args: argparse.Namespace) -> int:
    from core.structures import load_entries

    ms = load_model_set(args)
    if ms.cgcnn is None:
        raise ICSGError(f"{ms.source}: this model set has no CGCNN (cgcnn/)")
    entries, failures = load_entries(args.structures, limit=args.limit)
    results = [{"id": f.id, "status": "error", "error": f.reason} for f in failures]
    for chunk in chunks(entries, 256):
        for e, props in zip(chunk, ms.predict([x.structure for x in chunk]), strict=True):
            results.append({"id": e.id, "formula": e.structure.composition.reduced_formula, "status": "ok", **props})
    if args.json:
        export_json(args.json, results, force=True)
    else:
        print(json.dumps(results, indent=2))  # the command's output (stdout), not a log line
    return 0


def add_predict(sub) -> None:  # noqa: ANN001 (argparse's sub-parser collection)
    p = sub.add_parser("predict", help="CGCNN properties per crystal")
    p.add_argument("structures", help=STRUCTURES_HELP)
    p.add_argument("--json", help="write the predictions here instead of stdout")
    p.add_argument("--limit", type=int)
    add_model_options(p, out=False)
    p.set_defaults(func=cmd_predict)
