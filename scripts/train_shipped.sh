#!/usr/bin/env bash
# Reproduce the shipped perov_5 model set (resources/models/perov_5) from scratch, stage by stage, as it was trained
# on a 2-core CPU on 2026-11-25 (wall times and figures: resources/models/README.md).
#
#   scripts/train_shipped.sh [RUN_DIR]          # default runs/shipped; INSTALL=1 copies into resources/models/perov_5
#   UNET_RECIPE=short scripts/train_shipped.sh  # the whole recipe within 3 h on this CPU (U-Net below)
#
# Resumable: run the same command again after any interruption; each stage continues from its
# last checkpoint (--resume) and finished stages return at once. The same commands use a GPU when
# one is present (--device auto). Stages:
#   vae_a  5 epochs, no composition head                         (~23 min)
#   vae_b  2 of 28 scheduled epochs with the count head, weight 0.1 (~7 min)
#   vae    42 of 46 scheduled epochs, count-head weight 1.0      (the shipped VAE: vae/last, see the card)
#   unet_a, unet, unet_f, unet_g: the U-Net in four stages, true and VAE-decoded densities (~45 + ~60 + ~16 min)
#   unet_p, unet_t: peak features, then the peak templates (session 8; ~8 + ~27 min)
#   (UNET_RECIPE=short: one ~20-min U-Net stage from scratch instead of these six; see the model card)
#   cgcnn                                                         (~7 min)
#   fit-prior: the aggregate posterior (~3 min), the composition-first prior and the training index (~2 min)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/shipped}
PY=${PY:-.venv/bin/python}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # sleeping OpenMP waits: 2-4x faster on a busy 2-core box
[ -f runs/data/mp20_cubic.csv.gz ] || $PY scripts/prepare_data.py
DATA=(--data ../shared/data/perov_5/train.csv.gz --val ../shared/data/perov_5/val.csv.gz
      --val runs/data/mp20_cubic.csv.gz --val-train-frac 0.5 --grid 16 --seed 0 --threads 2)
VAE=(--condition heat_ref --lr 2e-3 --batch-size 32 --epoch-size 0 --val-size 512 --ckpt-every 240)

train() {  # train KIND OUT ARGS...: resumes OUT when it holds a run
    local kind=$1 out=$2
    shift 2
    local resume=()
    if [ -d "$out/last" ] || [ -d "$out/last.old" ]; then resume=(--resume); fi
    $PY -m core.cli train "$kind" "${DATA[@]}" --out "$out" "${resume[@]}" "$@"
}

train vae "$RUN/vae_a" "${VAE[@]}" --epochs 5 --max-minutes 30 \
    --model-config '{"dfc_weight": 0.0, "comp_head": false}'
train vae "$RUN/vae_b" "${VAE[@]}" --epochs 28 --stop-after-epoch 2 --init "$RUN/vae_a/best" \
    --model-config '{"dfc_weight": 0.0, "comp_head": true, "comp_weight": 0.1}'
train vae "$RUN/vae" "${VAE[@]}" --epochs 46 --stop-after-epoch 42 --max-minutes 120 --patience 100 --init "$RUN/vae_b/last" \
    --model-config '{"dfc_weight": 0.0, "comp_head": true, "comp_weight": 1.0}'
# The U-Net reads true densities and the VAE's reconstructions of the training crystals (through the
# VAE just trained, installed beside it as $RUN/set_vae), base 16; bf16 first, then fp32, whose
# precision tells neighbouring elements apart (their peak heights differ by ~1-2 %).
mkdir -p "$RUN/set_vae" && rm -rf "$RUN/set_vae/vae" && cp -r "$RUN/vae/last" "$RUN/set_vae/vae"
UNET=(--epoch-size 8000 --val-size 512 --batch-size 16 --patience 100 --model-config '{"base": 16}'
      --decoded-from "$RUN/set_vae")
if [ "${UNET_RECIPE:-shipped}" = "short" ]; then
    # One stage from scratch (~20 min on this CPU; session 8): the same true-density figures on
    # val_select as the shipped U-Net (site typing 1.000, foreground 0.997), but it reads the VAE's
    # decoded grids worse (U-Net alone 0.18 against 0.31). With it the whole recipe fits in 3 h.
    train unet "$RUN/unet_t" "${UNET[@]}" --epochs 8 --lr 2e-3 --precision bf16 --decoded-frac 0.3 --seed 1 \
        --class-weight-power 0.5 --max-minutes 40 \
        --model-config '{"base": 16, "density_features": 8, "peak_features": 6, "peak_templates": true}'
else
    train unet "$RUN/unet_a" "${UNET[@]}" --epochs 9 --stop-after-epoch 3 --lr 2e-3 --precision bf16 --decoded-frac 0.5
    train unet "$RUN/unet" "${UNET[@]}" --epochs 14 --lr 1e-3 --precision fp32 --decoded-frac 0.3 --seed 1 \
        --class-weight-power 0.5 --init "$RUN/unet_a/last"
    # Session 7: 20 more fp32 epochs from it with 8 Fourier pairs of the density channel
    # (density_features; the new input weights start at zero, so it starts as the stage above)
    train unet "$RUN/unet_f" "${UNET[@]}" --epochs 20 --lr 1e-3 --precision fp32 --decoded-frac 0.3 --seed 2 \
        --class-weight-power 0.5 --init "$RUN/unet/last" --max-minutes 120 \
        --model-config '{"base": 16, "density_features": 8}'
    # ... and 8 more at lr 3e-4 from its best epoch (validation foreground 0.894 -> 0.900)
    train unet "$RUN/unet_g" "${UNET[@]}" --epochs 8 --lr 3e-4 --precision fp32 --decoded-frac 0.3 --seed 3 \
        --class-weight-power 0.5 --init "$RUN/unet_f/best" --max-minutes 60 \
        --model-config '{"base": 16, "density_features": 8}'
    # Session 8: the Gaussian peak through each voxel, fitted (core.models.peaks): 3 epochs of a 12-epoch
    # schedule with its log-amplitude and sigma as 14 more input channels (new weights at zero) ...
    train unet "$RUN/unet_p" "${UNET[@]}" --epochs 12 --stop-after-epoch 3 --lr 1e-3 --precision fp32 --decoded-frac 0.3 \
        --seed 4 --class-weight-power 0.5 --init "$RUN/unet_g/best" --max-minutes 60 \
        --model-config '{"base": 16, "density_features": 8, "peak_features": 6}'
    # ... then each element's (amplitude, sigma) template, its gated log-likelihood added to the logits
    train unet "$RUN/unet_t" "${UNET[@]}" --epochs 10 --lr 5e-4 --precision fp32 --decoded-frac 0.3 --seed 5 \
        --class-weight-power 0.5 --init "$RUN/unet_p/best" --max-minutes 50 \
        --model-config '{"base": 16, "density_features": 8, "peak_features": 6, "peak_templates": true}'
fi
train cgcnn "$RUN/cgcnn" --target heat_ref,formation_energy_per_atom --epochs 150 --patience 30 --max-minutes 14

mkdir -p "$RUN/set"
# the VAE's last epoch reconstructs better than its best validation loss (model card), so last/ ships
for pick in vae/last unet_t/last cgcnn/best; do
    kind=${pick%%/*}; kind=${kind%_t}
    rm -rf "$RUN/set/$kind" && cp -r "$RUN/$pick" "$RUN/set/$kind" && rm -f "$RUN/set/$kind/train_state.pt"
done
cp "$RUN/vae/split.json" "$RUN/set/split.json"
$PY -m core.cli fit-prior ../shared/data/perov_5/train.csv.gz ../shared/data/perov_5/val.csv.gz \
    runs/data/mp20_cubic.csv.gz --split "$RUN/set/split.json" --models "$RUN/set" \
    --groups perov_5 perov_5 mp20_cubic   # aggregate posterior, one family per dataset
# the composition-first prior (the default of `icsg3d generate`) and the index of the training crystals
$PY -m core.cli fit-prior ../shared/data/perov_5/train.csv.gz ../shared/data/perov_5/val.csv.gz \
    runs/data/mp20_cubic.csv.gz --split "$RUN/set/split.json" --models "$RUN/set" \
    --groups perov_5 perov_5 mp20_cubic --kind composition --explore 0 --out "$RUN/set/vae/composition_prior.json"
$PY -m core.cli index-known ../shared/data/perov_5/train.csv.gz ../shared/data/perov_5/val.csv.gz \
    runs/data/mp20_cubic.csv.gz --split "$RUN/set/split.json" --models "$RUN/set" --out "$RUN/set/known.json.gz"
if [ "${INSTALL:-0}" = "1" ]; then
    for kind in vae unet cgcnn; do
        rm -rf "resources/models/perov_5/$kind" && cp -r "$RUN/set/$kind" "resources/models/perov_5/$kind"
    done
    cp "$RUN/set/split.json" "$RUN/set/known.json.gz" resources/models/perov_5/
    echo "installed $RUN/set into resources/models/perov_5/"
fi
