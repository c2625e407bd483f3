#!/usr/bin/env bash
# Retrain the shipped model set (U-Net -> VAE with DFC through it -> CGCNN) from scratch.
#
#   scripts/train_all.sh [RUN_DIR] [extra `icsg3d train all` options...]
#
# Resumable: run the same command again after an interruption (kill, reboot); each stage goes
# on from its last checkpoint (saved every 5 minutes and at every epoch end), finished stages are
# skipped. Per-stage epochs and time budgets (<= 3 h in total on a 2-core CPU) are in
# core/train/recipe.py. INSTALL=1 copies the best checkpoints into resources/models/perov_5/.
# Multi-GPU: LAUNCH="torchrun --nproc_per_node 4" scripts/train_all.sh runs/shipped --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/perov_5}
RUN=${1:-runs/shipped}
shift || true
PY=${PY:-.venv/bin/python}
# OpenMP threads that sleep instead of spinning while they wait: on a shared 2-core machine a
# U-Net step with 2 threads took 3.8 s with PASSIVE and 5.5-14 s without (1 thread: 2.5-3.2 s).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
LAUNCH=${LAUNCH:-$PY}
RESUME=()
if [ -d "$RUN/unet/last" ] || [ -d "$RUN/unet/last.old" ]; then RESUME=(--resume); fi
$LAUNCH -m core.cli train all --data "$DATA/train.csv.gz" --val "$DATA/val.csv.gz" \
    --target heat_ref --out "$RUN" "${RESUME[@]}" "$@"
if [ "${INSTALL:-0}" = "1" ]; then
    for kind in unet vae cgcnn; do
        rm -rf "resources/models/perov_5/$kind.new"
        cp -r "$RUN/$kind/best" "resources/models/perov_5/$kind.new"
        rm -f "resources/models/perov_5/$kind.new/train_state.pt"
        rm -rf "resources/models/perov_5/$kind" && mv "resources/models/perov_5/$kind.new" "resources/models/perov_5/$kind"
    done
    echo "installed $RUN/{unet,vae,cgcnn}/best into resources/models/perov_5/"
fi
