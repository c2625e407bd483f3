"""A small generic trainer: AdamW, warmup + cosine LR, clipping, early stopping, exact resume.

The trainer knows nothing about the models: a *task* (core.train.tasks) owns the model, its data
sets and its loss. Outputs in the run directory (rank 0 only):
- ``metrics.csv``: one row per epoch and split (loss, each loss part, lr, seconds);
- ``best/``: checkpoint of the lowest validation loss; ``last/``: latest checkpoint + resume state
  (``train_state.pt``), written at every epoch end and every ``ckpt_every_s`` seconds / steps.
Resume (``fit(resume=True)``) restores weights, optimiser, loop counters, running sums and RNG
states from ``last/``; the data order is a function of (seed, epoch), so the resumed epoch skips
the steps already done and reproduces the rest exactly.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.checkpoint import load_train_state, save_train_state
from core.errors import CheckpointError
from core.train import dist
from core.train.rng import rng_state, set_rng_state
from core.train.sampler import EpochBatchSampler

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Loop hyper-parameters (model hyper-parameters live in the task's model config)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    clip: float = 1.0
    warmup_steps: int = 50
    schedule: str = "cosine"  # 'cosine' (to min_lr_frac * lr) or 'constant'
    min_lr_frac: float = 0.05
    patience: int = 10
    ckpt_every_s: float = 300.0
    ckpt_every_steps: int = 0  # 0 = time-based only
    seed: int = 0
    num_workers: int = 0
    bf16: bool = False
    channels_last: bool = False  # channels_last_3d memory format for 3-D conv models
    max_minutes: float | None = None
    stop_epoch: int | None = None  # end this run after that many epochs; the schedule spans `epochs`
    epoch_size: int | None = None  # training samples per epoch (default: all)
    val_size: int | None = None  # validation samples per epoch (a fixed subset; default: all)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepResult:
    """A batch's loss (for backward), its parts (floats) and the weight of each part."""

    loss: torch.Tensor
    parts: dict[str, float]
    n: int
    weights: dict[str, float] | None = None  # per-part sample counts when not n (masked targets)


class StopTraining(Exception):
    """Raised by a step callback to end training early (tests use it to simulate a kill)."""


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate of a global step: linear warmup, then cosine decay or constant."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant" or total_steps <= cfg.warmup_steps:
        return cfg.lr
    t = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    floor = cfg.min_lr_frac * cfg.lr
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * t))


class _Sums:
    """Running, sample-weighted sums of loss parts."""

    def __init__(self, data: dict[str, float] | None = None) -> None:
        self.data: dict[str, float] = dict(data or {})

    def add(self, res: StepResult) -> None:
        w = res.weights or {}
        self.data["loss"] = self.data.get("loss", 0.0) + float(res.loss.detach()) * res.n
        self.data["n"] = self.data.get("n", 0.0) + res.n
        for k, v in res.parts.items():
            wk = w.get(k, res.n)
            if wk > 0 and math.isfinite(v):
                self.data[k] = self.data.get(k, 0.0) + v * wk
                self.data[f"{k}#n"] = self.data.get(f"{k}#n", 0.0) + wk

    def means(self) -> dict[str, float]:
        out = {"loss": self.data.get("loss", 0.0) / max(self.data.get("n", 0.0), 1.0)}
        for k, v in self.data.items():
            if k.endswith("#n") or k in ("loss", "n"):
                continue
            cnt = self.data.get(f"{k}#n", 0.0)
            out[k] = v / cnt if cnt > 0 else math.nan
        return out


class Trainer:
    """Runs a task's training. ``task`` provides: kind, model, train_set, val_set, loss_names,
    step(model, batch, train) -> StepResult, checkpoint_meta() -> dict; a data set may have a
    ``collate`` method (used as the DataLoader collate_fn)."""

    def __init__(self, task: Any, cfg: TrainConfig, out_dir: Path, device: torch.device) -> None:
        self.info = dist.env_dist()
        self.device = dist.rank_device(device, self.info)
        if cfg.bf16 and self.device.type not in ("cpu", "cuda"):
            log.warning("bf16 autocast is not used on %s: training in fp32", self.device.type)
            cfg = replace(cfg, bf16=False)
        self.task, self.cfg, self.out = task, cfg, Path(out_dir)
        self.model: nn.Module = task.model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
            task.channels_last = True
        self.ddp_model: nn.Module = self.model
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.train_sampler = EpochBatchSampler(
            len(task.train_set),
            cfg.batch_size,
            cfg.seed,
            True,
            self.info.rank,
            self.info.world,
            drop_last=True,
            per_epoch=cfg.epoch_size,
        )
        self.val_sampler = EpochBatchSampler(
            len(task.val_set), cfg.batch_size, cfg.seed, False, self.info.rank, self.info.world,
            per_epoch=cfg.val_size,
        )  # fmt: skip
        self.total_steps = cfg.epochs * self.train_sampler.batches_per_epoch()
        self._loaders: dict[int, DataLoader] = {}
        if self.info.is_main:
            n_params = sum(p.numel() for p in params)
            log.info(
                "%s: %.2fM parameters on %s x %d process(es); %d epochs x %d steps of %d; lr %.3g; %s",
                task.kind, n_params / 1e6, self.device, self.info.world, cfg.epochs,
                self.train_sampler.batches_per_epoch(), cfg.batch_size, cfg.lr, "bf16" if cfg.bf16 else "fp32",
            )  # fmt: skip
        # Short runs (tests, --limit) would otherwise spend all their steps warming up.
        self.sched = replace(cfg, warmup_steps=min(cfg.warmup_steps, max(1, self.total_steps // 10)))
        self.state: dict[str, Any] = {
            "epoch": 0, "step_in_epoch": 0, "global_step": 0, "best": math.inf, "best_epoch": -1,
            "bad_epochs": 0, "sums": {}, "epoch_seconds": 0.0, "train_seconds": 0.0, "done": False,
        }  # fmt: skip

    # -- data -------------------------------------------------------------------------------
    def _loader(self, dataset: Any, sampler: EpochBatchSampler) -> DataLoader:
        """One DataLoader per data set, kept for the whole run (persistent workers)."""
        key = id(dataset)
        if key not in self._loaders:
            workers = self.cfg.num_workers
            # A private generator: creating a DataLoader iterator must not consume the global torch
            # RNG, or a resumed epoch would draw different VAE noise than the uninterrupted run.
            # Workers are spawned, not forked: the voxeliser's numba threads are not fork-safe.
            self._loaders[key] = DataLoader(
                dataset,
                batch_sampler=sampler,
                collate_fn=getattr(dataset, "collate", None),
                num_workers=workers,
                generator=torch.Generator().manual_seed(self.cfg.seed),
                multiprocessing_context="spawn" if workers > 0 else None,
                persistent_workers=workers > 0,
                pin_memory=self.device.type == "cuda",
            )
        return self._loaders[key]

    # -- checkpoints ------------------------------------------------------------------------
    def _save_model(self, name: str, metrics: dict[str, Any], train_state: dict | None = None) -> None:
        """Write ``out/name`` atomically: into ``name.tmp``, then swap directories."""
        from core.checkpoint import save_checkpoint

        final, tmp, old = self.out / name, self.out / f"{name}.tmp", self.out / f"{name}.old"
        shutil.rmtree(tmp, ignore_errors=True)
        meta = self.task.checkpoint_meta()
        save_checkpoint(
            tmp, self.model, self.task.kind, meta.pop("config"), metrics=metrics,
            train={**self.cfg.to_dict(), "epochs_done": self.state["epoch"]}, **meta,
        )  # fmt: skip
        if train_state is not None:
            save_train_state(tmp, train_state)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def _save_last(self, metrics: dict[str, Any]) -> None:
        ts = {
            "optimizer": self.opt.state_dict(),
            "loop": dict(self.state),
            "rng": rng_state(),
            "train_config": self.cfg.to_dict(),
        }
        self._save_model("last", metrics, ts)
        log.debug("saved last/ at epoch %d step %d", self.state["epoch"], self.state["step_in_epoch"])

    def _resume(self) -> None:
        from core.checkpoint import load_checkpoint

        last = self.out / "last"
        if not last.is_dir() and (self.out / "last.old").is_dir():
            last = self.out / "last.old"  # killed during the directory swap
        if not last.is_dir():
            raise CheckpointError(
                str(self.out / "last"), "nothing to resume: no last/ checkpoint in the run folder"
            )
        loaded, _meta = load_checkpoint(last, kind=self.task.kind)
        self.model.load_state_dict(loaded.state_dict())
        ts = load_train_state(last)
        self.opt.load_state_dict(ts["optimizer"])
        self.state.update(ts["loop"])
        if not self.info.is_main:
            # the saved running sums are rank 0's; summed over ranks they would count it twice
            self.state["sums"] = {}
        set_rng_state(ts["rng"])
        if self.state["done"] and self.state["bad_epochs"] < self.cfg.patience:
            log.info("resuming an early-stopped run with --patience %d", self.cfg.patience)
            self.state["done"] = False
        saved = ts.get("train_config") or {}
        benign = {"epochs", "max_minutes", "stop_epoch", "patience", "ckpt_every_s", "ckpt_every_steps", "num_workers"}
        changed = sorted(
            k for k, v in self.cfg.to_dict().items() if k in saved and saved[k] != v and k not in benign
        )
        if changed:  # e.g. batch size or seed: the data order of the resumed epoch differs
            log.warning(
                "resuming with changed settings %s: the run is no longer an exact continuation", changed
            )
        log.info(
            "resumed %s: %d epochs + %d steps done (best val loss %.5g)",
            self.out, self.state["epoch"], self.state["step_in_epoch"], self.state["best"],
        )  # fmt: skip

    # -- metrics ----------------------------------------------------------------------------
    def _write_metrics(
        self, epoch: int, split: str, means: dict[str, float], lr: float, seconds: float
    ) -> None:
        path = self.out / "metrics.csv"
        cols = ["epoch", "split", "loss", *self.task.loss_names, "lr", "seconds"]
        row = {"epoch": epoch + 1, "split": split, "lr": f"{lr:.6g}", "seconds": f"{seconds:.1f}"}
        row.update({k: f"{means.get(k, math.nan):.6g}" for k in ["loss", *self.task.loss_names]})
        new = not path.exists()
        with path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)

    # -- steps ------------------------------------------------------------------------------
    def _step(self, batch: Any) -> StepResult:
        lr = lr_at(self.sched, self.state["global_step"], self.total_steps)
        for g in self.opt.param_groups:
            g["lr"] = lr
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            res = self.task.step(self.ddp_model, batch, train=True)
        self.opt.zero_grad(set_to_none=True)
        res.loss.backward()
        if self.cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.opt.step()
        return res

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean validation loss and parts over the whole validation set (all ranks)."""
        self.ddp_model.eval()
        sums = _Sums()
        self.val_sampler.set_epoch(0)
        for batch in self._loader(self.task.val_set, self.val_sampler):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
                sums.add(self.task.step(self.ddp_model, batch, train=False))
        total = dist.all_reduce_sums(sums.data, self.info, self.device)
        return _Sums(total).means()

    def _time_up(self) -> bool:
        """Whether the training-time budget (over all runs of this training) is spent."""
        if self.cfg.max_minutes is None:
            return False
        spent = self.state["train_seconds"] + self.state["epoch_seconds"]
        return dist.broadcast_flag(spent > 60 * self.cfg.max_minutes, self.info, self.device)

    def _epoch(self, epoch: int, callback: Callable[[dict], None] | None) -> bool:
        """Train one epoch (from step_in_epoch on). Returns False when the time budget ran out."""
        self.ddp_model.train()
        self.train_sampler.set_epoch(epoch, self.state["step_in_epoch"])
        sums = _Sums(self.state["sums"])
        t0 = last_ckpt = time.time()
        seconds0 = self.state["epoch_seconds"]
        bar = tqdm(
            total=self.train_sampler.batches_per_epoch(), initial=self.state["step_in_epoch"],
            desc=f"{self.task.kind} {epoch + 1}/{self.cfg.epochs}", disable=not self.info.is_main,
            mininterval=0.5 if sys.stderr.isatty() else 30.0, dynamic_ncols=True, file=sys.stderr,
        )  # fmt: skip
        try:
            for batch in self._loader(self.task.train_set, self.train_sampler):
                sums.add(self._step(batch))
                now = time.time()
                self.state.update(
                    step_in_epoch=self.state["step_in_epoch"] + 1, global_step=self.state["global_step"] + 1,
                    sums=dict(sums.data), epoch_seconds=seconds0 + now - t0,
                )  # fmt: skip
                bar.update(1)
                bar.set_postfix(loss=f"{sums.means()['loss']:.4g}", refresh=False)
                due = (
                    self.cfg.ckpt_every_steps and self.state["step_in_epoch"] % self.cfg.ckpt_every_steps == 0
                )
                if self.info.is_main and (due or now - last_ckpt >= self.cfg.ckpt_every_s):
                    self._save_last({"train": sums.means(), "partial_epoch": True})
                    last_ckpt = now
                if callback is not None:
                    callback(dict(self.state))
                if self._time_up():
                    return False
        finally:
            bar.close()
        return True

    def _end_epoch(self, epoch: int) -> dict[str, Any]:
        train_means = _Sums(dist.all_reduce_sums(self.state["sums"], self.info, self.device)).means()
        val_means = self.evaluate()
        lr = self.opt.param_groups[0]["lr"]
        seconds = self.state["epoch_seconds"]
        improved = val_means["loss"] < self.state["best"]
        self.state.update(
            epoch=epoch + 1, step_in_epoch=0, sums={}, epoch_seconds=0.0,
            train_seconds=self.state["train_seconds"] + seconds,
            bad_epochs=0 if improved else self.state["bad_epochs"] + 1,
        )  # fmt: skip
        metrics = {"epoch": epoch + 1, "train": train_means, "val": val_means}
        if improved:
            self.state.update(best=val_means["loss"], best_epoch=epoch + 1)
        if self.info.is_main:
            self._write_metrics(epoch, "train", train_means, lr, seconds)
            self._write_metrics(epoch, "val", val_means, lr, seconds)
            if improved:
                self._save_model("best", metrics)
            log.info(
                "%s epoch %d/%d: train %.5g, val %.5g%s (%.0f s)", self.task.kind, epoch + 1,
                self.cfg.epochs, train_means["loss"], val_means["loss"], " *" if improved else "", seconds,
            )  # fmt: skip
        return metrics

    def fit(self, resume: bool = False, callback: Callable[[dict], None] | None = None) -> dict[str, Any]:
        """Train until cfg.epochs, early stopping or the time budget. Returns a summary dict.

        callback(state) runs after every training step (raise StopTraining to stop there).
        """
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume()
        metrics: dict[str, Any] = {}
        stopped = "epochs"
        while self.state["epoch"] < self.cfg.epochs and not self.state["done"]:
            if self.cfg.stop_epoch is not None and self.state["epoch"] >= self.cfg.stop_epoch:
                stopped = "stop epoch"  # also when resumed at or past it: nothing to do
                break
            if self._time_up():  # resumed with the budget already spent: nothing to do
                stopped = "time budget"
                break
            epoch = self.state["epoch"]
            completed = self._epoch(epoch, callback)
            # A budget stop still ends the (partial) epoch: validation, metrics and best/ exist
            # afterwards; a resume with a larger --max-minutes goes on with the next epoch.
            metrics = self._end_epoch(epoch)
            if self.state["bad_epochs"] >= self.cfg.patience:
                stopped = "early stopping"
                self.state["done"] = True
            if self.info.is_main:
                self._save_last(metrics)
            if not completed:
                stopped = "time budget"
                break
        dist.barrier(self.info)
        return {
            "stopped": stopped, "epochs_done": self.state["epoch"], "best_val_loss": self.state["best"],
            "best_epoch": self.state["best_epoch"], "last": metrics, "out": str(self.out),
        }  # fmt: skip
