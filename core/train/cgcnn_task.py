"""CGCNN property regression task: graphs built once, standardised targets, masked loss.

Targets are standardised with the training mean/std (stored as normalisers ``targets``,
``target_mean``, ``target_std``; predictions in physical units are ``out * std + mean``). A crystal
may lack some targets: missing values are NaN and masked out of the loss and the MAE. Crystals
with none of the targets are left out (logged and written to failures.csv).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from core.errors import ICSGError
from core.structures import Entry, Failure
from core.train.data import SplitData, mean_std
from core.train.loop import StepResult
from core.train.options import TaskOptions, data_hash, make_config

log = logging.getLogger(__name__)


def target_matrix(entries: list[Entry], targets: list[str]) -> np.ndarray:
    """(N, T) float64 target values, NaN where missing."""
    return np.array(
        [[float(e.props.get(t, math.nan)) for t in targets] for e in entries], dtype=np.float64
    ).reshape(len(entries), len(targets))


class GraphDataset(Dataset):
    """Crystal graphs (built once) with standardised targets (NaN = missing).

    Items are keys (index or (index, seed)); :meth:`collate` gives (core.models.cgcnn.Batch,
    targets (B, T) f32 standardised).
    """

    def __init__(self, entries: list[Entry], graphs: list[Any], y: np.ndarray) -> None:
        self.entries, self.graphs = entries, graphs
        self.y = torch.from_numpy(y.astype(np.float32))

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, key: int | tuple[int, int]) -> int:
        return key[0] if isinstance(key, tuple) else int(key)

    def collate(self, keys: list[int]) -> tuple[Any, torch.Tensor]:
        from core.models.cgcnn import collate

        idx = [k[0] if isinstance(k, tuple) else int(k) for k in keys]
        return collate([self.graphs[i] for i in idx]), self.y[idx]


def _graphs(entries: list[Entry], cfg: Any) -> tuple[list[Entry], list[Any], list[Failure]]:
    from core.models.cgcnn import build_graph

    kept, graphs, failed = [], [], []
    for e in entries:
        try:
            graphs.append(build_graph(e.structure, cfg))
            kept.append(e)
        except (ValueError, RuntimeError, KeyError) as exc:
            failed.append(Failure(e.id, e.source, f"cannot build graph: {exc}"))
    return kept, graphs, failed


class CGCNNTask:
    """Multi-target CGCNN regression (MSE on standardised targets; MAE per target logged)."""

    kind = "cgcnn"

    def __init__(self, split: SplitData, opts: TaskOptions) -> None:
        from core.models.cgcnn import CGCNN, CGCNNConfig

        if not opts.targets:
            raise ICSGError("train cgcnn needs --target NAME")
        self.targets = list(opts.targets)
        cfg = make_config(CGCNNConfig, opts.model, {"targets": self.targets})
        self.failures: list[tuple[Failure, str]] = []
        sets = {}
        for name, entries in (("training", split.train), ("validation", split.val)):
            y = target_matrix(entries, self.targets)
            has = np.isfinite(y).any(axis=1)
            for e, ok in zip(entries, has, strict=True):
                if not ok:
                    self.failures.append(
                        (Failure(e.id, e.source, f"no value for {', '.join(self.targets)}"), "target")
                    )
            kept, graphs, failed = _graphs([e for e, ok in zip(entries, has, strict=True) if ok], cfg)
            self.failures += [(f, "graph") for f in failed]
            if not kept:
                raise ICSGError(
                    f"no {name} crystals with a value for {', '.join(self.targets)} (check --target)"
                )
            sets[name] = (kept, graphs)
        n_missing = sum(1 for _f, stage in self.failures if stage == "target")
        if n_missing:
            log.warning("%d crystals have none of the targets %s: left out", n_missing, self.targets)
        mean, std = mean_std(target_matrix(sets["training"][0], self.targets))
        self.norms = {"targets": self.targets, "target_mean": mean, "target_std": std}
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)
        self.train_set = self._dataset(*sets["training"])
        self.val_set = self._dataset(*sets["validation"])
        self.model = CGCNN(cfg)
        self.loss_names = [f"mae_{t}" for t in self.targets]
        self.data_hash = data_hash(sets["training"][0], cfg.to_dict())
        log.info("cgcnn: %d training / %d validation crystals, targets %s",
                 len(self.train_set), len(self.val_set), self.targets)  # fmt: skip

    def _dataset(self, entries: list[Entry], graphs: list[Any]) -> GraphDataset:
        y = (target_matrix(entries, self.targets) - np.asarray(self.norms["target_mean"])) / np.asarray(
            self.norms["target_std"]
        )
        return GraphDataset(entries, graphs, y)

    def step(self, model: nn.Module, batch: tuple[Any, torch.Tensor], train: bool) -> StepResult:
        graphs, y = batch
        device = next(model.parameters()).device
        pred = model(graphs.to(device)).float()
        y = y.to(device)
        known = torch.isfinite(y)
        diff = torch.where(known, pred - torch.nan_to_num(y), torch.zeros_like(pred))
        n_known = known.sum()
        loss = (diff**2).sum() / n_known.clamp(min=1)
        abs_err = diff.detach().abs() * self.std.to(device)  # physical units
        parts, weights = {}, {}
        for j, t in enumerate(self.targets):
            k = int(known[:, j].sum())
            parts[f"mae_{t}"] = float(abs_err[known[:, j], j].mean()) if k else math.nan
            weights[f"mae_{t}"] = k
        return StepResult(loss, parts, int(y.shape[0]), weights)

    def checkpoint_meta(self) -> dict[str, Any]:
        return {
            "config": self.model.cfg.to_dict(),
            "vocab": None,
            "normalisers": self.norms,
            "data_hash": self.data_hash,
        }
