"""Data files derived from ../shared/data for the shipped model set (written under runs/, git-ignored).

    python scripts/prepare_data.py                       # cubic mp_20_biternary val -> runs/data/mp20_cubic.csv.gz
    python scripts/prepare_data.py --heldout resources/models/split.json
        # the held-out validation rows of a training run -> runs/data/heldout_{perov5,mp20_cubic}.csv.gz,
        # and its selection / report parts -> runs/data/heldout_{perov5,mp20_cubic}_{select,report}.csv.gz

The shared data stay where they are; nothing derived from them is committed.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=MP_VAL)
    parser.add_argument("--out", default="runs/data/mp20_cubic.csv.gz")
    parser.add_argument("--heldout", type=Path, help="split.json of a training run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cubic = Path(args.out)
    if not cubic.exists():
        write_cubic(args.src, cubic)
    if args.heldout:
        write_heldout(args.heldout, {"perov5": PEROV_VAL, "mp20_cubic": str(cubic)}, cubic.parent)


if __name__ == "__main__":
    main()
