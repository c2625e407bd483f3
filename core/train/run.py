"""One training run in plain values (``TrainRun``) and its execution: read and split the data,
then train one model or, for ``all``, the three stages of the shipped recipe (core/train/recipe.py).

`icsg3d train` (core/cli/train.py) fills a TrainRun from its options; the same run works under
``torchrun --nproc_per_node N`` (DDP).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.device import resolve_device
from core.train import dist
from core.train.data import SplitData, load_sources, split_by_id, write_failures, write_split
from core.train.loop import TrainConfig, Trainer
from core.train.recipe import RECIPE, stage_splits
from core.train.tasks import TaskOptions, build_task

log = logging.getLogger(__name__)

KINDS = ("unet", "vae", "cgcnn", "all")
MODEL_KINDS = ("unet", "vae", "cgcnn")


@dataclass
class TrainRun:
    """What to train on what, and how. ``None`` limits take the recipe's value; 0 means no limit."""

    kind: str  # one of KINDS; 'all' = unet -> vae (DFC through it) -> cgcnn
    data: list[str]  # training crystals (files, folders, CSVs)
    out: Path  # run folder (best/, last/, metrics.csv, split.json)
    val: list[str] | None = None  # validation crystals; default: split ``data`` by id
    limit: int | None = None  # at most this many crystals per input
    val_frac: float = 0.1
    val_train_frac: float | None = None  # share of ``val`` moved into training (all: 0.5)
    targets: list[str] = field(default_factory=list)  # CGCNN targets
    condition: str | None = None  # property whose deciles condition the VAE (default: first target)
    grid: int = 32
    voxel: dict[str, Any] = field(default_factory=dict)  # VoxelConfig overrides
    model: dict[str, Any] = field(default_factory=dict)  # config overrides, flat or {"unet": {...}, ...}
    unet: Path | None = None  # trained U-Net for the VAE's deep-feature loss
    decoded_from: Path | None = None  # unet: also train on this model set's VAE reconstructions
    decoded_frac: float = 0.5
    class_weight_power: float = 1.0  # voxel models: class weights = (1 / frequency) ** power
    origin: str = "file"  # voxel models: "file" or "site" (an atom moved to the origin: core.canonical)
    site_frames: float = 0.0  # origin "site": share of training samples with a random atom at the origin
    init: Path | None = None  # start from a trained checkpoint's weights
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 1e-4
    patience: int | None = None
    epoch_size: int | None = None
    val_size: int | None = None
    max_minutes: float | None = None
    stop_after_epoch: int | None = None
    ckpt_every: float = 300.0  # seconds between last/ saves within an epoch
    resume: bool = False
    seed: int = 0  # model initialisation, data order and augmentation
    split_seed: int = 0  # which crystals are held out: NOT --seed, so a new seed never moves held-out crystals into training
    device: str = "auto"
    threads: int | None = None
    precision: str | None = None  # 'bf16' or 'fp32'; default per model
    channels_last: bool = False
    workers: int = 0


def model_overrides(model: dict[str, Any], kind: str) -> dict[str, Any]:
    """The config overrides of one kind: a flat object, or {"unet": {...}, "vae": {...}, ...} for all."""
    if model and set(model) <= set(MODEL_KINDS):
        return dict(model.get(kind) or {})
    return dict(model)


def load_split(run: TrainRun, info: dist.DistInfo) -> SplitData:
    """Read the data and split it (by material id, fixed seed); writes split.json."""
    entries, failures = load_sources(run.data, run.limit)
    fails = [(f, "load") for f in failures]
    if run.val:
        val, vf = load_sources(run.val, run.limit)
        fails += [(f, "load") for f in vf]
        frac = run.val_train_frac if run.val_train_frac is not None else (0.5 if run.kind == "all" else 0.0)
        if frac > 0:
            moved, val = split_by_id(val, 1.0 - frac, run.split_seed)
            entries = entries + moved
        overlap = {e.id for e in entries} & {e.id for e in val}
        if overlap:
            log.warning("%d material ids are in both --data and --val (e.g. %s): validation is not held out",
                        len(overlap), sorted(overlap)[:3])  # fmt: skip
        split = SplitData(entries, val, fails)
    else:
        train, val = split_by_id(entries, run.val_frac, run.split_seed)
        split = SplitData(train, val, fails)
    if info.is_main:
        run.out.mkdir(parents=True, exist_ok=True)
        write_split(run.out / "split.json", split.train, split.val, seed=run.split_seed,
                    data_sources=run.data, val_sources=run.val)  # fmt: skip
    return split


def _limit(value: float | None, default: Any) -> Any:
    """The run's limit over the recipe's; 0 means no limit."""
    if value is None:
        return default
    return None if value == 0 else value


def train_config(run: TrainRun, kind: str) -> TrainConfig:
    rec = RECIPE[kind]
    return TrainConfig(
        epochs=run.epochs or rec["epochs"],
        batch_size=run.batch_size or rec["batch_size"],
        lr=run.lr or rec["lr"],
        weight_decay=run.weight_decay,
        patience=run.patience or rec["patience"],
        ckpt_every_s=run.ckpt_every,
        seed=run.seed,
        num_workers=run.workers,
        bf16=(run.precision or ("bf16" if rec.get("bf16") else "fp32")) == "bf16",
        channels_last=run.channels_last or rec.get("channels_last", False),
        max_minutes=_limit(run.max_minutes, rec.get("max_minutes")),
        stop_epoch=run.stop_after_epoch,
        epoch_size=_limit(run.epoch_size, rec.get("epoch_size")),
        val_size=_limit(run.val_size, rec.get("val_size")),
    )


def _task_options(run: TrainRun, kind: str, unet_dir: Path | None) -> TaskOptions:
    targets = run.targets or ([run.condition] if run.condition else [])
    return TaskOptions(
        d=run.grid,
        condition=run.condition or (targets[0] if targets else None),
        targets=targets,
        unet_dir=unet_dir if unet_dir is not None else run.unet,
        model={**RECIPE[kind].get("model", {}), **model_overrides(run.model, kind)},
        voxel=dict(run.voxel),
        decoded_from=run.decoded_from if kind == "unet" else None,
        decoded_frac=run.decoded_frac,
        class_weight_power=run.class_weight_power,
        seed=run.seed,
        origin=run.origin,
        site_frames=run.site_frames,
    )


def train_one(kind: str, split: SplitData, run: TrainRun, out: Path, device: torch.device,
              unet_dir: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Build the task of ``kind`` on a split and train it into ``out``."""
    info = dist.env_dist()
    task = build_task(kind, split, _task_options(run, kind, unet_dir))
    resumable = (out / "last").exists() or (out / "last.old").exists()
    if run.init is not None and not (run.resume and resumable):  # a resumed run keeps its own last/
        from core.checkpoint import init_from_checkpoint

        fresh = init_from_checkpoint(task.model, run.init, kind, getattr(task, "vocab", None) and task.vocab.to_list())
        log.info("initialised from %s; %d tensors start fresh: %s", run.init, len(fresh), fresh[:8])
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_split(out / "split.json", task.train_set.entries, task.val_set.entries, seed=run.seed)
        write_failures(out / "failures.csv", split.failures + getattr(task, "failures", []))
    trainer = Trainer(task, train_config(run, kind), out, device)
    resume = run.resume and resumable
    if run.resume and not resume:
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


def set_threads(threads: int | None) -> None:
    """``threads``, or 1 thread on a busy machine: with the cores already loaded, OpenMP threads that
    wait for each other at every barrier ran a U-Net step 8x slower with 2 threads than with 1."""
    if threads is None:
        cores = os.cpu_count() or 1
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if cores > 1 and load >= cores:
            log.warning("load average %.1f on %d cores: training with 1 thread (set --threads to override)",
                        load, cores)  # fmt: skip
            threads = 1
    if threads:
        torch.set_num_threads(threads)
    log.info("torch CPU threads: %d", torch.get_num_threads())


def train(run: TrainRun) -> None:
    """Train ``run.kind`` (every stage for 'all') into ``run.out``; bad data raise ICSGError."""
    set_threads(run.threads)
    device = resolve_device(run.device)
    info = dist.init_distributed(device)
    try:
        if info.is_main:
            _file_logging(run.out)
        else:  # one log for the run: other ranks only report problems
            logging.getLogger().setLevel(logging.WARNING)
        split = load_split(run, info)
        if run.kind != "all":
            train_one(run.kind, split, run, run.out, device)
        else:
            for kind, stage_split, unet_dir in stage_splits(split, run.out, run.targets or [run.condition]):
                train_one(kind, stage_split, run, run.out / kind, device, unet_dir)
        # every rank done (rank 0 still writes checkpoints after the last collective) before any
        # tears gloo down: a rank that left first now and then made its peer abort (SIGABRT, CI)
        dist.barrier(info)
    finally:
        dist.cleanup(info)
