"""Choose a model set's reconstruction settings (origin search, refinement, symmetry snap) on the
SELECTION part of its held-out crystals, so that the report part stays unseen by the choice.

    python scripts/select_reconstruction.py --models runs/carbon/set \
        --data runs/data/heldout_carbon24_select.csv.gz [--limit 300] [--json runs/select_rec_carbon.json] \
        [--relax both]

Each crystal is encoded once per origin setting (the file's frame, or the frame search of
core/canonical.py), then decoded with each (refinement steps, symprec) pair and scored with the
CDVAE matcher (core.metrics.evaluate_reconstruction). Prints one JSON object per setting and the
best (highest match rate; ties to the cheaper setting, listed first).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DECODINGS = [(0, None), (30, None), (30, 0.1), (30, 0.3)]  # (refinement steps, symprec Å or None = off)
RELAX = {"potential": "tersoff_c", "steps": 300, "fmax": 0.05}  # core/relax.py (--relax on)


def _choices(option: str) -> tuple[bool, ...]:
    return {"both": (False, True), "on": (True,), "off": (False,)}[option]


def _decodings(option: str) -> list[tuple[int, float | None]]:
    pairs = [item.split(":") for item in option.split(",")]
    return [(int(steps), None if prec.lower() == "none" else float(prec)) for steps, prec in pairs]


def _refuse_unseen_parts(split_path: Path, ids: list[str], data: str) -> None:
    """Stop when --data holds crystals the set trained on or its report part (val_report): a
    choice made on them would not be a choice made on unseen selection crystals."""
    if not split_path.is_file():
        return
    split = json.loads(split_path.read_text(encoding="utf-8"))
    for part in ("train", "val_report"):
        clash = set(map(str, split.get(part) or [])) & set(ids)
        if clash:
            raise SystemExit(f"{data}: {len(clash)} of {len(ids)} crystals are in {split_path}'s {part!r} part "
                             f"(e.g. {sorted(clash)[0]}); select on its val_select part: "
                             f"scripts/prepare_data.py --heldout {split_path} --source NAME=VAL.csv.gz")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--frame-search", choices=["both", "on", "off"], default="both")
    p.add_argument("--counts", choices=["both", "on", "off"], default="on",
                   help="segment to the count head's composition (on), or type each maximum alone (off)")
    p.add_argument("--max-elements", default="0",
                   help="comma list of element caps to try without counts (0: none), e.g. 0,3")
    p.add_argument("--charge-margin", default="none",
                   help="comma list of charge-balance margins (nats; none: off) to try without counts, "
                        "e.g. none,2,4 (core/charge.py)")
    p.add_argument("--decodings", default=",".join(f"{s}:{p}" for s, p in DECODINGS).lower(),
                   help="comma list of refinement steps:symprec pairs to try, e.g. 30:none,30:0.1")
    p.add_argument("--relax", choices=["both", "on", "off"], default="off",
                   help=f"relax decoded positions in a classical potential (on: {RELAX['potential']})")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import numpy as np

    from core.metrics import evaluate_reconstruction
    from core.model_sets import resolve_models
    from core.pipeline import ModelSet
    from core.structures import load_entries

    ms = ModelSet.load(resolve_models(args.models), device="cpu")
    entries, failures = load_entries(args.data, limit=args.limit, max_sites=None)
    _refuse_unseen_parts(Path(ms.source) / "split.json", [e.id for e in entries], args.data)
    inside = [e for e in entries if ms.domain_problem(e.structure) is None]
    n_all = len(entries) + len(failures)  # outside the domain or unreadable: a miss
    caps = [int(c) or None for c in args.max_elements.split(",")]
    margins = [None if m == "none" else float(m) for m in args.charge_margin.split(",")]
    out = {}
    for search in _choices(args.frame_search):
        start = time.perf_counter()
        z = np.concatenate([ms.encode([e.structure for e in inside[i : i + 64]], frame_search=search)
                            for i in range(0, len(inside), 64)])  # fmt: skip
        encode_s = time.perf_counter() - start
        settings = itertools.product(_decodings(args.decodings), _choices(args.counts), caps, margins,
                                     _choices(args.relax))  # fmt: skip
        for (steps, symprec), counts, cap, margin, relax in settings:
            if counts and (cap or margin is not None):
                continue  # the cap and the charge balance apply to typing without counts
            ms.use_counts, ms.max_elements, ms.relax = counts, cap, (RELAX if relax else None)
            ms.charge_margin = margin
            preds = []
            for i in range(0, len(z), 64):
                preds += [d.structure for d in ms.decode(z[i : i + 64], predict=False, labels=False,
                                                         refine_steps=steps,
                                                         symprec=symprec)]  # fmt: skip
            m = evaluate_reconstruction(preds, [e.structure for e in inside])
            key = f"frame_search={search},steps={steps},symprec={symprec}" + ("" if counts else ",counts=off") + (f",max_elements={cap}" if cap else "") + (f",charge_margin={margin}" if margin is not None else "") + (",relax" if relax else "")
            out[key] = {"match_rate": m["n_matched"] / n_all, "n_matched": m["n_matched"], "n": n_all,
                        "composition_accuracy": m["composition_accuracy"], "rmse": m["rmse"],
                        "lattice_mae": m["lattice_mae"], "encode_s": encode_s}  # fmt: skip
            print(json.dumps({key: out[key]}), flush=True)
    best = max(out, key=lambda k: out[k]["match_rate"])
    result = {"models": args.models, "data": args.data, "n": n_all, "n_in_domain": len(inside),
              "settings": out, "best": best}  # fmt: skip
    if args.json:
        from core.atomic import atomic_write

        atomic_write(args.json, json.dumps(result, indent=1), force=True)
    print(json.dumps({"best": best, **out[best]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
