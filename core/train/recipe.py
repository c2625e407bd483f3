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

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.structures import Entry
from core.train.data import SplitData

log = logging.getLogger(__name__)

# Per-model defaults of `icsg3d train`: sample budgets per epoch and time limits that fit the whole
# recipe in <= 3 h on a 2-core CPU, bf16 autocast for the voxel models (the faster precision
# there), and the VAE's count head (composition from z). The measurements behind them are in
# the model card (resources/models/README.md, "Why the recipe's defaults").
RECIPE: dict[str, dict[str, Any]] = {
    "unet": {
        "epochs": 3, "epoch_size": 6000, "val_size": 512, "batch_size": 8, "lr": 2e-3,
        "patience": 3, "bf16": True, "max_minutes": 35, "model": {},
    },
    "vae": {
        "epochs": 10, "epoch_size": 6000, "val_size": 512, "batch_size": 16, "lr": 1e-3,
        "patience": 4, "bf16": True, "max_minutes": 110,
        "model": {"comp_head": True, "comp_weight": 1.0},
    },
    "cgcnn": {
        "epochs": 200, "batch_size": 64, "lr": 2e-3, "patience": 40, "max_minutes": 10, "model": {},
    },
}  # fmt: skip


def labelled(entries: list[Entry], targets: list[str]) -> list[Entry]:
    """Entries with at least one finite target value."""

    def known(e: Entry) -> bool:
        return any(math.isfinite(float(e.props.get(t, math.nan))) for t in targets)

    return [e for e in entries if known(e)]


def stage_splits(split: SplitData, out: Path, targets: list[str]) -> Iterator[tuple[str, SplitData, Path | None]]:
    """(kind, data split, U-Net folder for the DFC loss) of each stage of ``train all`` into ``out``;
    CGCNN trains on the crystals labelled with one of ``targets``."""
    yield "unet", split, None
    yield "vae", SplitData(split.train, split.val, []), out / "unet" / "best"
    train, val = labelled(split.train, targets), labelled(split.val, targets)
    log.info("cgcnn stage: %d labelled training / %d validation crystals (%s)", len(train), len(val), targets)
    yield "cgcnn", SplitData(train, val, []), None
