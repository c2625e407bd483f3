"""Data files derived from ../shared/data for the shipped model set (written under runs/, git-ignored).

    python scripts/prepare_data.py                       # cubic mp_20_biternary val -> runs/data/mp20_cubic.csv.gz
    python scripts/prepare_data.py --heldout resources/models/perov_5/split.json
        # the held-out validation rows of a training run -> runs/data/heldout_{perov5,mp20_cubic}.csv.gz,
        # and its selection / report parts -> runs/data/heldout_{perov5,mp20_cubic}_{select,report}.csv.gz
    python scripts/prepare_data.py --heldout resources/models/carbon_24/split.json \
        --source carbon24=../shared/data/carbon_24/val.csv.gz --add-parts
        # another set's split: --add-parts first writes its val_select / val_report (every val row
        # not trained on, split in halves by material id) into the split.json when it has none

The shared data stay where they are; nothing derived from them is committed.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("prepare_data")
PEROV_VAL = "../shared/data/perov_5/val.csv.gz"
MP_VAL = "../shared/data/mp_20_biternary/val.csv.gz"


def write_cubic(src: str, out: Path) -> Path:
    frame = pd.read_csv(src)
    cubic = frame[frame["spacegroup.number"] >= 195]
    out.parent.mkdir(parents=True, exist_ok=True)
    cubic.to_csv(out, index=False)
    log.info("%s: %d of %d rows are cubic -> %s", src, len(cubic), len(frame), out)
    return out


def write_heldout(split_json: Path, sources: dict[str, str], folder: Path) -> None:
    """heldout_<name>.csv.gz (all of val) and, when the split names them, heldout_<name>_select
    (choices: checkpoints, priors, settings) and heldout_<name>_report (the model card's figures)."""
    split = json.loads(split_json.read_text())
    parts = {"": "val", "_select": "val_select", "_report": "val_report"}
    for name, src in sources.items():
        frame = pd.read_csv(src)
        for suffix, key in parts.items():
            if key not in split:
                continue
            held = {str(i) for i in split[key]}
            rows = frame[frame["material_id"].astype(str).isin(held)]
            out = folder / f"heldout_{name}{suffix}.csv.gz"
            rows.to_csv(out, index=False)
            log.info("%s: %d held-out rows (%s) -> %s", src, len(rows), key, out)


def add_parts(split_json: Path, sources: dict[str, str], seed: int = 1) -> None:
    """Write ``val`` (every row of the sources not in ``train``: unreadable or ungriddable ones
    included, they count against the model), ``val_select`` and ``val_report`` (halves of it: a
    default_rng(seed) permutation of the sorted ids) into ``split_json``, unless it has them."""
    split = json.loads(split_json.read_text())
    if "val_select" in split:
        log.info("%s already names its val parts: unchanged", split_json)
        return
    train = {str(i) for i in split["train"]}
    ids = sorted({str(i) for src in sources.values() for i in pd.read_csv(src)["material_id"]} - train)
    order = np.random.default_rng(seed).permutation(len(ids))
    half = (len(ids) + 1) // 2
    split["val"] = ids
    split["val_select"] = sorted(ids[i] for i in order[:half])
    split["val_report"] = sorted(ids[i] for i in order[half:])
    split["val_parts_note"] = (
        f"val = every row of {', '.join(sources.values())} not trained on, split by material id "
        f"(numpy default_rng({seed}) permutation of the sorted ids): val_select chooses checkpoints, "
        "priors and decoding settings; val_report gives the model card's figures"
    )
    split_json.write_text(json.dumps(split, indent=1))
    log.info("%s: %d held-out ids -> %d select / %d report", split_json, len(ids), half, len(ids) - half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=MP_VAL)
    parser.add_argument("--out", default="runs/data/mp20_cubic.csv.gz")
    parser.add_argument("--heldout", type=Path, help="split.json of a training run")
    parser.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                        help="held-out rows to extract (default: perov5 and mp20_cubic, the perov_5 set's)")
    parser.add_argument("--add-parts", action="store_true",
                        help="first write val / val_select / val_report into --heldout when it has none")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cubic = Path(args.out)
    if not cubic.exists():
        write_cubic(args.src, cubic)
    if args.heldout:
        sources = dict(item.split("=", 1) for item in args.source) or {"perov5": PEROV_VAL, "mp20_cubic": str(cubic)}
        if args.add_parts:
            add_parts(args.heldout, sources)
        write_heldout(args.heldout, sources, cubic.parent)


if __name__ == "__main__":
    main()
