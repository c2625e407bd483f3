"""``icsg3d train {unet,vae,cgcnn,all}``: argument parsing and the run of one or all trainings.

core/cli.py registers the sub-command with ``add_train_parser(subparsers)`` and calls
``run_train(args)``. The same command runs under ``torchrun --nproc_per_node N`` (DDP).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from core.device import resolve_device
from core.errors import ICSGError
from core.train import dist
from core.train.data import SplitData, load_sources, split_by_id, write_failures, write_split
from core.train.loop import TrainConfig, Trainer
from core.train.recipe import RECIPE, stage_splits
from core.train.tasks import TaskOptions, build_task

log = logging.getLogger(__name__)

KINDS = ("unet", "vae", "cgcnn", "all")


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
    a("--seed", type=int, default=0)
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


def _model_overrides(text: str | None, kind: str) -> dict[str, Any]:
    """--model-config for one kind: a flat object, or {"unet": {...}, "vae": {...}, ...} for all."""
    data = _json_overrides(text)
    if data and set(data) <= {"unet", "vae", "cgcnn"}:
        return dict(data.get(kind) or {})
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


def load_split(args: argparse.Namespace, info: dist.DistInfo) -> SplitData:
    """Read --data/--val and split (by material id, fixed seed); re-uses split.json on resume."""
    entries, failures = load_sources(args.data, args.limit)
    fails = [(f, "load") for f in failures]
    if args.val:
        val, vf = load_sources(args.val, args.limit)
        fails += [(f, "load") for f in vf]
        frac = (
            args.val_train_frac if args.val_train_frac is not None else (0.5 if args.kind == "all" else 0.0)
        )
        if frac > 0:
            moved, val = split_by_id(val, 1.0 - frac, args.seed)
            entries = entries + moved
        overlap = {e.id for e in entries} & {e.id for e in val}
        if overlap:
            log.warning("%d material ids are in both --data and --val (e.g. %s): validation is not held out",
                        len(overlap), sorted(overlap)[:3])  # fmt: skip
        split = SplitData(entries, val, fails)
    else:
        train, val = split_by_id(entries, args.val_frac, args.seed)
        split = SplitData(train, val, fails)
    if info.is_main:
        args.out.mkdir(parents=True, exist_ok=True)
        write_split(
            args.out / "split.json",
            split.train,
            split.val,
            seed=args.seed,
            data_sources=args.data,
            val_sources=args.val,
        )
    return split


def _limit(value: float | None, default: Any) -> Any:
    """Command-line limit over the recipe's; 0 means no limit."""
    if value is None:
        return default
    return None if value == 0 else value


def _train_config(args: argparse.Namespace, kind: str) -> TrainConfig:
    rec = RECIPE[kind]
    return TrainConfig(
        epochs=args.epochs or rec["epochs"],
        batch_size=args.batch_size or rec["batch_size"],
        lr=args.lr or rec["lr"],
        weight_decay=args.weight_decay,
        patience=args.patience or rec["patience"],
        ckpt_every_s=args.ckpt_every,
        seed=args.seed,
        num_workers=args.workers,
        bf16=(args.precision or ("bf16" if rec.get("bf16") else "fp32")) == "bf16",
        channels_last=args.channels_last or rec.get("channels_last", False),
        max_minutes=_limit(args.max_minutes, rec.get("max_minutes")),
        stop_epoch=args.stop_after_epoch,
        epoch_size=_limit(args.epoch_size, rec.get("epoch_size")),
        val_size=_limit(args.val_size, rec.get("val_size")),
    )


def train_one(kind: str, split: SplitData, args: argparse.Namespace, out: Path, device: torch.device,
              unet_dir: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Build the task of ``kind`` on a split and train it into ``out``."""
    info = dist.env_dist()
    targets = _targets(args) or ([args.condition] if args.condition else [])
    opts = TaskOptions(
        d=args.grid,
        condition=args.condition or (targets[0] if targets else None),
        targets=targets,
        unet_dir=unet_dir if unet_dir is not None else args.unet,
        model={**RECIPE[kind].get("model", {}), **_model_overrides(args.model_config, kind)},
        voxel=_json_overrides(args.voxel_config, "--voxel-config"),
        decoded_from=args.decoded_from if kind == "unet" else None,
        decoded_frac=args.decoded_frac,
        seed=args.seed,
    )
    task = build_task(kind, split, opts)
    resumable = (out / "last").exists() or (out / "last.old").exists()
    if getattr(args, "init", None) is not None and not (args.resume and resumable):  # resume: own last/
        from core.checkpoint import init_from_checkpoint

        fresh = init_from_checkpoint(task.model, args.init, kind, getattr(task, "vocab", None) and task.vocab.to_list())
        log.info("initialised from %s; %d tensors start fresh: %s", args.init, len(fresh), fresh[:8])
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_split(out / "split.json", task.train_set.entries, task.val_set.entries, seed=args.seed)
        write_failures(out / "failures.csv", split.failures + getattr(task, "failures", []))
    trainer = Trainer(task, _train_config(args, kind), out, device)
    resume = args.resume and resumable
    if args.resume and not resume:
        log.info("%s: no checkpoint to resume from, starting a new run", out)
    summary = trainer.fit(resume=resume)
    log.info("%s done: %s", kind, json.dumps({k: v for k, v in summary.items() if k != "last"}))
    return summary


def _file_logging(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO or logging.getLogger().level == logging.NOTSET:
        logging.getLogger().setLevel(logging.INFO)


def _set_threads(threads: int | None) -> None:
    """--threads, or 1 thread on a busy machine: with the cores already loaded, OpenMP threads that
    wait for each other at every barrier ran a U-Net step 8x slower with 2 threads than with 1."""
    if threads is None:
        cores = os.cpu_count() or 1
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if cores > 1 and load >= cores:
            log.warning(
                "load average %.1f on %d cores: training with 1 thread (set --threads to override)",
                load,
                cores,
            )
            threads = 1
    if threads:
        torch.set_num_threads(threads)
    log.info("torch CPU threads: %d", torch.get_num_threads())


def run_train(args: argparse.Namespace) -> int:
    """Entry point of ``icsg3d train``; user errors raise ICSGError (the CLI prints one line)."""
    _check_args(args)
    _set_threads(args.threads)
    device = resolve_device(args.device)
    info = dist.init_distributed(device)
    try:
        if info.is_main:
            _file_logging(args.out)
        else:  # one log for the run: other ranks only report problems
            logging.getLogger().setLevel(logging.WARNING)
        split = load_split(args, info)
        if args.kind != "all":
            train_one(args.kind, split, args, args.out, device)
            return 0
        for kind, stage_split, unet_dir in stage_splits(split, args):
            train_one(kind, stage_split, args, args.out / kind, device, unet_dir)
        return 0
    finally:
        dist.cleanup(info)


__all__ = ["add_train_parser", "run_train", "resolve_device"]
