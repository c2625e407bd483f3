"""Choose how decoding types atoms (the VAE's species head, the U-Net, or their mean) on the
SELECTION part of the held-out crystals; the report part stays unseen by this choice.

    python scripts/select_segmenter.py [--models perov_5] [--n 1000] [--json runs/select_segmenter.json]

For each segmenter (core/segmentation.py SEGMENTERS): reconstruction of the selection crystals
(perov_5 and cubic mp_20), the segmentation scores of decoded grids, and n generated samples of the
default prior (seed 0) scored with the CDVAE protocol. The chosen one has the best perov_5
reconstruction match rate (ties: COV-R + COV-P); it goes into core.segmentation.DECODE_SEGMENTER.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "runs" / "data"
GEN_KEYS = ("struct_validity", "comp_validity", "cov_r", "cov_p", "uniqueness", "novelty", "rediscovered")


def _score(ms, segmenter: str, perov, mp20, n: int) -> dict:  # noqa: ANN001
    from core.evaluation import BATCH, evaluate_reconstruction_run
    from core.known import KnownCrystals
    from core.metrics import evaluate_generation
    from core.segmentation import evaluate_segmentation

    ms.segmenter = segmenter
    row = {}
    for name, entries in (("perov5", perov), ("mp20", mp20)):
        rec, _ = evaluate_reconstruction_run(ms, entries, [])
        row[f"rec_{name}"] = {k: rec.get(k) for k in ("match_rate", "composition_accuracy", "rmse")}
    seg = evaluate_segmentation(ms, [e.structure for e in perov], "decoded", segmenter, batch=BATCH)
    row["seg_decoded_perov5"] = {k: seg[k] for k in ("foreground_accuracy", "site_typing_accuracy")}
    z = ms.sample(n, seed=0)
    gen = []
    for first in range(0, len(z), BATCH):
        gen += [d.structure for d in ms.decode(z[first : first + BATCH], predict=False, labels=False)]
    m = evaluate_generation(gen, [e.structure for e in perov], n_jobs=2, known=ms.known,
                            rediscover=KnownCrystals.from_entries(perov), include_reference=False)  # fmt: skip
    row["gen"] = {k: m[k] for k in GEN_KEYS}
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=None)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from core.pipeline import ModelSet
    from core.segmentation import SEGMENTERS
    from core.structures import load_entries

    ms = ModelSet.load(args.models, device="cpu")
    perov, _ = load_entries(DATA / "heldout_perov5_select.csv.gz")
    mp20, _ = load_entries(DATA / "heldout_mp20_cubic_select.csv.gz")
    out = {}
    for segmenter in ("head", *[s for s in SEGMENTERS if s != "head"]):
        out[segmenter] = _score(ms, segmenter, perov, mp20, args.n)
        print(json.dumps({segmenter: out[segmenter]}), flush=True)
    best = max(out, key=lambda k: (out[k]["rec_perov5"]["match_rate"], out[k]["gen"]["cov_r"] + out[k]["gen"]["cov_p"]))
    result = {"models": str(ms.source), "n": args.n, "segmenters": out, "best": best}
    if args.json:
        from core.atomic import atomic_write

        atomic_write(args.json, json.dumps(result, indent=1), force=True)
    print(json.dumps({"best": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
