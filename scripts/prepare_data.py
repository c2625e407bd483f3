"""Write the cubic part of mp_20_biternary val (spacegroup >= 195) for the mixed model set.

    python scripts/prepare_data.py [--src ../shared/data/mp_20_biternary/val.csv.gz] [--out runs/data/mp20_cubic.csv.gz]

The shared data stays where it is; this derived file lives under runs/ (git-ignored).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger("prepare_data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default="../shared/data/mp_20_biternary/val.csv.gz")
    parser.add_argument("--out", default="runs/data/mp20_cubic.csv.gz")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    frame = pd.read_csv(args.src)
    cubic = frame[frame["spacegroup.number"] >= 195]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cubic.to_csv(out, index=False)
    log.info("%s: %d of %d rows are cubic -> %s", args.src, len(cubic), len(frame), out)


if __name__ == "__main__":
    main()
