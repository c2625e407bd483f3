"""`icsg3d train {unet,vae,cgcnn,all}`: the options of a training run, checked, as a TrainRun
(core/train/run.py). The same command runs under ``torchrun --nproc_per_node N`` (DDP)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from core.errors import ICSGError
from core.train.run import KINDS, TrainRun, train

log = logging.getLogger(__name__)


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on an argparse sub-parser collection; returns the new parser."""
    p = subparsers.add_parser(
        "train",
        help="train the U-Net, the VAE, CGCNN, or all three (the shipped-model recipe)",
        description="Train a model on STRUCTURES (a CIF/POSCAR file, a folder, or a CSV(.gz) with a cif column).",
    )
    p.add_argument(
        "kind", choices=KINDS, help="model to train; 'all' = unet -> vae (DFC through it) -> cgcnn"
    )
    _add_data_args(p)
    _add_model_args(p)
    _add_loop_args(p)
    p.set_defaults(func=run_train)
    return p


def _add_data_args(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--data", action="append", required=True, metavar="STRUCTURES", help="training crystals (repeatable)")
    a(
        "--val",
        action="append",
        metavar="STRUCTURES",
        help="validation crystals (repeatable); default: split --data by id",
    )
    a(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="run folder (best/, last/, metrics.csv, split.json)",
    )
    a("--limit", type=int, help="read at most N crystals from each input")
    a("--val-frac", type=float, default=0.1, help="validation fraction when --val is not given")
    a("--val-train-frac", type=float, help="move this fraction of --val (by id) into training (all: 0.5)")
    a(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="CGCNN target column(s) (repeatable or comma list)",
    )
    a(
        "--condition",
        metavar="NAME",
        help="property whose training deciles condition the VAE (default: first --target)",
    )
    a("--grid", type=int, default=32, metavar="D", help="grid points per cell axis")
    a("--voxel-config", metavar="JSON", help="VoxelConfig overrides (sigma_frac, max_voxel, ...)")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--unet", type=Path, metavar="DIR", help="trained U-Net checkpoint for the VAE's deep-feature loss")
    a(
        "--decoded-from",
        type=Path,
        metavar="MODELS",
        help="unet: also train on this model set's VAE reconstructions of the training crystals",
    )
    a("--decoded-frac", type=float, default=0.5, help="unet: share of samples that use the reconstruction")
    a("--origin", choices=["file", "site"], default="file",
      help="voxel models: grid each crystal with its file's origin, or with one atom moved to the "
           "origin (for data whose files fix no origin, e.g. carbon_24)")  # fmt: skip
    a("--site-frames", type=float, default=0.0, metavar="P",
      help="with --origin site: share P of training samples gridded with a random atom at the origin "
           "instead of the most compact one (augmentation over the frames encoding searches)")  # fmt: skip
    a("--class-weight-power", type=float, default=1.0,
      help="voxel models: class weights (1 / voxel frequency) ** P; 0 = unweighted, 0.5 = gentler")  # fmt: skip
    a(
        "--init",
        type=Path,
        metavar="DIR",
        help="start from a trained checkpoint's weights (same data vocabulary; new heads start fresh)",
    )
    a(
        "--model-config",
        metavar="JSON",
        help='model config overrides: JSON text or a .json file; for all: {"unet": {...}, "vae": {...}, "cgcnn": {...}}',
    )


def _add_loop_args(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--epochs", type=int, help="epochs (default: per model, see core/train/recipe.py)")
    a("--batch-size", type=int, help="batch size per process")
    a("--lr", type=float, help="peak learning rate (AdamW, warmup + cosine)")
    a("--weight-decay", type=float, default=1e-4)
    a("--patience", type=int, help="early-stopping patience in epochs")
    a(
        "--epoch-size",
        type=int,
        metavar="N",
        help="training samples per epoch, a fresh random subset (0 = all)",
    )
    a("--val-size", type=int, metavar="N", help="validate on a fixed subset of N crystals (0 = all)")
    a("--max-minutes", type=float, help="stop after this much training time per model (0 = no limit)")
    a(
        "--stop-after-epoch",
        type=int,
        metavar="N",
        help="end the run after epoch N (the LR schedule still spans --epochs; --resume goes on)",
    )
    a(
        "--ckpt-every",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="save last/ this often within an epoch",
    )
    a("--resume", action="store_true", help="continue the run in --out from last/")
    a("--seed", type=int, default=0, help="model initialisation, data order and augmentation")
    a("--split-seed", type=int, default=0,
      help="which crystals --val-frac / --val-train-frac hold out (kept apart from --seed on purpose)")  # fmt: skip
    a("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    a("--threads", type=int, help="torch CPU threads per process (default: all cores, 1 on a busy machine)")
    a(
        "--precision",
        choices=("bf16", "fp32"),
        help="bf16 autocast or fp32 (default: per model, see recipe.py)",
    )
    a("--channels-last", action="store_true", help="channels_last_3d memory format")
    a("--workers", type=int, default=0, help="DataLoader worker processes")


def _targets(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for t in args.target:
        out += [s.strip() for s in t.split(",") if s.strip()]
    return out


def _json_overrides(text: str | None, option: str = "--model-config") -> dict[str, Any]:
    if not text:
        return {}
    try:
        raw = Path(text).read_text() if text.endswith(".json") else text
        data = json.loads(raw)
    except (OSError, json.JSONDecodeError) as exc:
        raise ICSGError(f"{option}: not valid JSON or not readable ({exc})") from None
    if not isinstance(data, dict):
        raise ICSGError(f"{option}: expected a JSON object of config fields")
    return data


def _check_args(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "limit", "threads", "patience", "stop_after_epoch"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ICSGError(f"--{name.replace('_', '-')} must be positive, got {value}")
    for name in ("epoch_size", "val_size", "max_minutes"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ICSGError(f"--{name.replace('_', '-')} must be >= 0 (0 = no limit), got {value}")
    if args.lr is not None and args.lr <= 0:
        raise ICSGError(f"--lr must be positive, got {args.lr}")
    if not 0 < args.val_frac < 1:
        raise ICSGError(f"--val-frac must be between 0 and 1, got {args.val_frac}")
    if args.val_train_frac is not None and not 0 <= args.val_train_frac < 1:
        raise ICSGError(f"--val-train-frac must be in [0, 1), got {args.val_train_frac}")
    if args.grid < 8 or args.grid % 8:
        raise ICSGError(f"--grid must be a multiple of 8 (>= 8), got {args.grid}")
    if args.unet is not None and not args.unet.is_dir():
        raise ICSGError(f"{args.unet}: --unet must be a trained U-Net checkpoint folder")
    if args.kind == "cgcnn" and not _targets(args):
        raise ICSGError("train cgcnn needs --target NAME (a numeric column of the data)")
    if args.kind == "all" and not (_targets(args) or args.condition):
        raise ICSGError(
            "train all needs --target NAME (the property CGCNN learns and the VAE is conditioned on)"
        )
    last = args.out / "last"
    if not args.resume and (last.exists() or (args.out / "unet" / "last").exists()):
        raise ICSGError(
            f"{args.out}: holds a training run already; pass --resume to continue it or choose another --out"
        )


def _run(args: argparse.Namespace) -> TrainRun:
    """The parsed options as a TrainRun (JSON overrides read, --target lists split)."""
    return TrainRun(
        kind=args.kind, data=args.data, out=args.out, val=args.val, limit=args.limit, val_frac=args.val_frac,
        val_train_frac=args.val_train_frac, targets=_targets(args), condition=args.condition, grid=args.grid,
        voxel=_json_overrides(args.voxel_config, "--voxel-config"), model=_json_overrides(args.model_config),
        unet=args.unet, decoded_from=args.decoded_from, decoded_frac=args.decoded_frac, init=args.init,
        class_weight_power=args.class_weight_power, origin=args.origin, site_frames=args.site_frames,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        patience=args.patience, epoch_size=args.epoch_size, val_size=args.val_size, max_minutes=args.max_minutes,
        stop_after_epoch=args.stop_after_epoch, ckpt_every=args.ckpt_every, resume=args.resume, seed=args.seed,
        split_seed=args.split_seed,
        device=args.device, threads=args.threads, precision=args.precision, channels_last=args.channels_last,
        workers=args.workers,
    )  # fmt: skip


def run_train(args: argparse.Namespace) -> int:
    """Entry point of ``icsg3d train``; user errors raise ICSGError (the CLI prints one line)."""
    _check_args(args)
    train(_run(args))
    return 0


def add_train(sub: Any) -> None:
    add_train_parser(sub)
