"""The shipped-model recipe: per-model defaults and the data of each stage of ``train all``.

``icsg3d train all --data TRAIN --val VAL --target PROP --out DIR`` trains, in order,
1. the U-Net on TRAIN + half of VAL (by material id) -> DIR/unet;
2. the VAE on the same crystals, conditioned on PROP deciles, with the deep-feature loss through
   DIR/unet/best -> DIR/vae;
3. CGCNN on the labelled crystals of the same training part -> DIR/cgcnn.
The other half of VAL is the validation (model selection) set of all three; DIR/split.json lists
it, so evaluation can report figures on crystals that no model trained on.
The defaults below are sized so that the whole recipe fits in <= 3 h on a 2-core CPU
(timings in resources/models/README.md); ``--epochs`` etc. override them for every stage.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.structures import Entry
from core.train.data import SplitData

log = logging.getLogger(__name__)

RECIPE: dict[str, dict[str, Any]] = {
    "unet": {"epochs": 6, "batch_size": 16, "lr": 2e-3, "patience": 4, "model": {}},
    "vae": {"epochs": 20, "batch_size": 32, "lr": 1e-3, "patience": 6, "model": {}},
    "cgcnn": {"epochs": 150, "batch_size": 64, "lr": 2e-3, "patience": 30, "model": {}},
}


def labelled(entries: list[Entry], targets: list[str]) -> list[Entry]:
    """Entries with at least one finite target value."""

    def known(e: Entry) -> bool:
        return any(math.isfinite(float(e.props.get(t, math.nan))) for t in targets)

    return [e for e in entries if known(e)]


def stage_splits(split: SplitData, args: argparse.Namespace) -> Iterator[tuple[str, SplitData, Path | None]]:
    """(kind, data split, U-Net folder for the DFC loss) of each stage of ``train all``."""
    yield "unet", split, None
    yield "vae", SplitData(split.train, split.val, []), args.out / "unet" / "best"
    targets = [t.strip() for a in args.target for t in a.split(",") if t.strip()] or [args.condition]
    train, val = labelled(split.train, targets), labelled(split.val, targets)
    log.info("cgcnn stage: %d labelled training / %d validation crystals (%s)", len(train), len(val), targets)
    yield "cgcnn", SplitData(train, val, []), None
