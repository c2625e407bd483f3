#!/usr/bin/env bash
# Every figure of the model card, on the held-out crystals of a model set (CDVAE protocol).
#
#   scripts/evaluate_models.sh [MODELS_DIR] [OUT_DIR]     # defaults: resources/models, runs/eval
#
# Writes one JSON (+ Markdown report) per figure into OUT_DIR and prints one JSON line each.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${1:-resources/models}
OUT=${2:-runs/eval}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
$PY scripts/prepare_data.py --heldout "$MODELS/split.json"   # -> runs/data/heldout_{perov5,mp20_cubic}.csv.gz
EV=($PY -m core.cli evaluate --models "$MODELS")
"${EV[@]}" reconstruction --data runs/data/heldout_perov5.csv.gz --json "$OUT/rec_perov5.json" --report "$OUT/rec_perov5.md"
"${EV[@]}" reconstruction --data runs/data/heldout_mp20_cubic.csv.gz --json "$OUT/rec_mp20.json"
# generation as CDVAE evaluates it: 10,000 samples (~25 min, mostly CrystalNN fingerprints) from the
# perov_5 family of the mixed model's prior; 1,000 for the short figure and the N(0, I) baseline
"${EV[@]}" generation --data runs/data/heldout_perov5.csv.gz --n 10000 --prior-group perov_5 --json "$OUT/gen10k.json" --report "$OUT/gen10k.md"
"${EV[@]}" generation --data runs/data/heldout_perov5.csv.gz --n 1000 --prior-group perov_5 --json "$OUT/gen.json" --report "$OUT/gen.md"
"${EV[@]}" generation --data runs/data/heldout_perov5.csv.gz --n 1000 --json "$OUT/gen_all.json"
"${EV[@]}" generation --data runs/data/heldout_perov5.csv.gz --n 1000 --prior normal --json "$OUT/gen_normal.json"
"${EV[@]}" properties --data runs/data/heldout_perov5.csv.gz --json "$OUT/props_perov5.json"
"${EV[@]}" properties --data runs/data/heldout_mp20_cubic.csv.gz --json "$OUT/props_mp20.json"
# throughput of the CLI (decode + segment + CGCNN + CIF writing)
$PY -m core.cli generate --n 1000 --seed 0 --models "$MODELS" --out "$OUT/gen1000" --force
