"""Training crystals made by ionic substitution of a set's own training crystals (core/substitution.py).

    python scripts/augment_substitutions.py --source ../shared/data/mp_20_biternary/val.csv.gz \
        --val-train-frac 0.5 --vocab resources/models/mp_20/vae/meta.json \
        --per-parent 5 --out runs/data/mp20_substituted.csv.gz

Parents are the rows of --source that training moves into its training part: the same reader and
the same split by id as ``icsg3d train ... --val SOURCE --val-train-frac F --split-seed S``
(core/train/data.py), or the ``train`` ids of an existing ``--split`` file; never a held-out one. No result shares a reduced formula with any row of --source, trained or held out, so no
held-out figure can be helped by a substitution that happens to give a held-out crystal. The
output is a CSV like the shared data (material_id ``sub-<parent>-<k>``, cif, formula, parent);
written under runs/ (git-ignored), never committed.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from core.substitution import substitutions

log = logging.getLogger("augment_substitutions")


def _training_ids(args: argparse.Namespace, meta: dict) -> set[str]:
    """The --source ids training learns from. Training also drops the crystals of its share that
    its grid cannot hold, and those are scored as held out (scripts/prepare_data.py --add-parts), so
    they are dropped here too: a substitution of one could shrink to fit the grid."""
    if args.split:
        return {str(i) for i in json.loads(Path(args.split).read_text())["train"]}
    from core.train.data import load_sources, split_by_id
    from core.voxel import VoxelConfig, representable

    entries, _ = load_sources([args.source], None)
    moved, _ = split_by_id(entries, 1.0 - args.val_train_frac, args.split_seed)
    vocab = set(meta["vocab"])
    in_vocab = [e for e in moved if {el.symbol for el in e.structure.composition.elements} <= vocab]
    usable, _ = representable(in_vocab, VoxelConfig.from_dict(meta["normalisers"]["voxel"]))
    return {e.id for e in usable}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="CSV with material_id and cif columns")
    parts = ap.add_mutually_exclusive_group(required=True)
    parts.add_argument("--split", help="split.json whose 'train' ids are the parents")
    parts.add_argument(
        "--val-train-frac",
        type=float,
        help="the parents: this share of --source, split by id as training does",
    )
    ap.add_argument(
        "--split-seed", type=int, default=0, help="with --val-train-frac: training's --split-seed"
    )
    ap.add_argument("--vocab", required=True, help="a VAE meta.json: its 'vocab' are the allowed elements")
    ap.add_argument("--per-parent", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    frame = pd.read_csv(args.source)
    meta = json.loads(Path(args.vocab).read_text())
    train = _training_ids(args, meta)
    vocab = set(meta["vocab"])
    parents, ids, every_formula = [], [], set()
    for mid, cif in zip(frame["material_id"].astype(str), frame["cif"], strict=True):
        try:
            s = Structure.from_str(cif, fmt="cif")
        except Exception as exc:  # noqa: BLE001 (a bad row is logged and skipped, as training does)
            log.warning("%s: %s: unreadable, skipped (%s)", args.source, mid, exc)
            continue
        every_formula.add(s.composition.reduced_formula)
        if mid in train:
            parents.append(s)
            ids.append(mid)
    made = substitutions(
        parents, args.per_parent, args.seed, allowed=vocab.__contains__, exclude=every_formula
    )
    counters: dict[int, int] = {}
    rows = []
    for parent, s in made:
        k = counters[parent] = counters.get(parent, 0) + 1
        rows.append({"material_id": f"sub-{ids[parent]}-{k}", "cif": s.to(fmt="cif"),
                     "formula": s.composition.reduced_formula, "parent": ids[parent]})  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    log.info(
        "%d parents (of %d rows) -> %d substituted crystals -> %s",
        len(parents),
        len(frame),
        len(rows),
        args.out,
    )


if __name__ == "__main__":
    main()
