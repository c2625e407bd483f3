#!/usr/bin/env bash
# The model card's figures of an any-lattice set (carbon_24, mp_20), on the REPORT part of its
# held-out crystals (split.json "val_report"; choices were made on "val_select").
#
#   scripts/evaluate_set.sh SET [MODELS_DIR] [OUT_DIR]   # defaults: resources/models/SET, runs/eval_SET
#
# Writes one JSON per figure into OUT_DIR: reconstruction as the files are, with the origin moved
# at random, and with origin, axes and cell all changed; generation (1,000 samples of the set's
# prior) with validity, COV against the report crystals, novelty against the set's training index,
# uniqueness and rediscovery; COV at 10,000 samples (novelty off); the real-data floor (the select
# crystals scored as if generated). LIMIT (default 0: all) caps the crystals of each reconstruction run.
set -euo pipefail
cd "$(dirname "$0")/.."
SET=${1:?usage: scripts/evaluate_set.sh carbon_24|mp_20 [MODELS_DIR] [OUT_DIR]}
MODELS=${2:-resources/models/$SET}
OUT=${3:-runs/eval_$SET}
PY=${PY:-.venv/bin/python}
case "$SET" in
  carbon_24) SOURCE=carbon24; VAL=../shared/data/carbon_24/val.csv.gz ;;
  mp_20) SOURCE=mp20; VAL=../shared/data/mp_20_biternary/val.csv.gz ;;
  *) echo "unknown set $SET (carbon_24 | mp_20)" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
$PY scripts/prepare_data.py --heldout "$MODELS/split.json" --source "$SOURCE=$VAL"  # -> runs/data/heldout_${SOURCE}_{select,report}.csv.gz
REPORT=runs/data/heldout_${SOURCE}_report.csv.gz
EV=($PY -m core.cli evaluate --models "$MODELS")
limit=(); if [ "${LIMIT:-0}" != "0" ]; then limit=(--limit "$LIMIT"); fi
"${EV[@]}" reconstruction --data "$REPORT" "${limit[@]}" --json "$OUT/rec_report.json"
"${EV[@]}" reconstruction --data "$REPORT" "${limit[@]}" --perturb shift --json "$OUT/rec_report_shift.json"
"${EV[@]}" reconstruction --data "$REPORT" "${limit[@]}" --perturb all --json "$OUT/rec_report_all.json"
"${EV[@]}" generation --data "$REPORT" --n 1000 --json "$OUT/gen1k.json"
# COV at the CDVAE protocol's 10,000 samples (novelty off: the matcher pass over 10,000 would take
# hours), and the floor real crystals set on this reference: the select crystals scored as if generated
"${EV[@]}" generation --data "$REPORT" --n 10000 --novelty off --json "$OUT/gen10k.json"
"${EV[@]}" generation --data "$REPORT" --n 10000 --calibrate "runs/data/heldout_${SOURCE}_select.csv.gz" \
    --json "$OUT/calibration_select_vs_report.json"
