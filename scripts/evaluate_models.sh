#!/usr/bin/env bash
# Every figure of the model card, on the REPORT part of the held-out crystals (split.json
# "val_report": never used to choose a checkpoint, prior or setting; "val_select" was).
#
#   scripts/evaluate_models.sh [MODELS_DIR] [OUT_DIR]     # defaults: resources/models/perov_5, runs/eval
#
# Writes one JSON (+ Markdown report) per figure into OUT_DIR. About 80 minutes on 2 CPU cores,
# most of it CrystalNN fingerprints of the 10,000-sample runs.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${1:-resources/models/perov_5}
OUT=${2:-runs/eval}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
$PY scripts/prepare_data.py --heldout "$MODELS/split.json"   # -> runs/data/heldout_{perov5,mp20_cubic}_{select,report}.csv.gz
P5=runs/data/heldout_perov5_report.csv.gz
MP=runs/data/heldout_mp20_cubic_report.csv.gz
EV=($PY -m core.cli evaluate --models "$MODELS")
"${EV[@]}" reconstruction --data $P5 --json "$OUT/rec_perov5.json" --report "$OUT/rec_perov5.md"
"${EV[@]}" reconstruction --data $MP --json "$OUT/rec_mp20.json"
# the same crystals in other files: origin shifted, axes permuted, another cell, all three (first 300)
"${EV[@]}" reconstruction --data $P5 --perturb shift --json "$OUT/rec_report_shift.json"
for kind in shift permute reset all; do
    "${EV[@]}" reconstruction --data $P5 --limit 300 --perturb $kind --json "$OUT/rec_report300_$kind.json"
done
# the representation of any lattice: true density -> sites -> crystal (no model set)
$PY -m core.cli evaluate roundtrip --data ../shared/data/carbon_24/val.csv.gz --json "$OUT/roundtrip_carbon_24.json"
$PY -m core.cli evaluate roundtrip --data ../shared/data/mp_20_biternary/val.csv.gz --json "$OUT/roundtrip_mp_20_biternary.json"
# generation as CDVAE evaluates it (10,000 samples), with novelty against the shipped training
# index and rediscovery of the report crystals; the default prior is composition-first
"${EV[@]}" generation --data $P5 --n 10000 --json "$OUT/gen10k_composition.json" --report "$OUT/gen10k_composition.md"
"${EV[@]}" generation --data $P5 --n 4000 --json "$OUT/gen4k_composition.json"
"${EV[@]}" generation --data $P5 --n 1000 --prior composition-unfiltered --json "$OUT/gen1k_composition_unfiltered.json"
"${EV[@]}" generation --data $P5 --n 10000 --prior fitted --prior-group perov_5 --json "$OUT/gen10k_fitted.json"
"${EV[@]}" generation --data $P5 --n 1000 --prior normal --json "$OUT/gen1k_normal.json"
# segmentation: the U-Net on true densities, and each segmenter on the VAE's reconstructions
"${EV[@]}" segmentation --data $P5 --source true --json "$OUT/seg_true_perov5.json" --report "$OUT/seg_true_perov5.md"
for seg in unet head ensemble; do
    "${EV[@]}" segmentation --data $P5 --source decoded --segmenter $seg --json "$OUT/seg_decoded_${seg}_perov5.json"
done
"${EV[@]}" properties --data $P5 --json "$OUT/props_perov5.json"
"${EV[@]}" properties --data $MP --json "$OUT/props_mp20.json"
# the real-data floor of COV on this reference: the selection crystals scored as if generated
"${EV[@]}" generation --data $P5 --calibrate runs/data/heldout_perov5_select.csv.gz --json "$OUT/calibration_select_vs_report.json"
# throughput of the CLI (decode + segment + CGCNN + CIF writing)
time $PY -m core.cli generate --n 1000 --seed 0 --models "$MODELS" --out "$OUT/gen1000" --force
