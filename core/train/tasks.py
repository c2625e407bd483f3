"""Training tasks: what the generic trainer needs to train the U-Net, the VAE and CGCNN.

A task owns its model, its train/val data sets, its loss (``step``) and the metadata stored in
every checkpoint (config, vocabulary, normalisers, voxel config, data hash). Tasks are built from
an already loaded and split data set (:class:`core.train.data.SplitData`), so ``train all`` reads
the crystals once for the three models.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.elements import Vocabulary
from core.errors import ICSGError
from core.structures import Entry
from core.train.data import SplitData, VoxelDataset, check_voxelisable, voxel_normalisers
from core.train.loop import StepResult
from core.train.options import TaskOptions, data_hash, make_config
from core.train.rng import seed_everything

log = logging.getLogger(__name__)


def _require(entries: list[Entry], what: str) -> None:
    if not entries:
        raise ICSGError(f"no usable crystals left for {what} (see failures.csv in the run folder)")


class VoxelTask:
    """Shared set-up of the voxel models: vocabulary, voxeliser, normalisers, data sets."""

    kind = "voxel"
    channels_last = False  # set by the Trainer when it converts the model
    augment_train = True  # random cubic operations + translations (equivariant tasks such as the U-Net)

    def __init__(self, split: SplitData, opts: TaskOptions) -> None:
        from core.models.unet import class_weights_from_counts
        from core.voxel import VoxelConfig, Voxeliser

        self.opts = opts
        _require(split.train, "training")
        self.vocab = Vocabulary.from_structures(e.structure for e in split.train)
        self.voxel_cfg = make_config(VoxelConfig, opts.voxel, {"d": opts.d}, "--voxel-config")
        self.voxeliser = Voxeliser(self.voxel_cfg, self.vocab)
        if opts.origin not in ("file", "site"):
            raise ICSGError(f"--origin must be file or site, got {opts.origin!r}")
        if not 0.0 <= opts.site_frames <= 1.0 or (opts.site_frames and opts.origin != "site"):
            raise ICSGError(f"--site-frames must be in [0, 1] and needs --origin site, got {opts.site_frames}")
        train, f_train, counts = check_voxelisable(split.train, self.voxeliser, len(self.vocab))
        val, f_val, _ = check_voxelisable(split.val, self.voxeliser, len(self.vocab))
        train, val = _with_origin(train, opts.origin), _with_origin(val, opts.origin)
        self.failures = [(f, "voxelise") for f in f_train + f_val]
        for f, _stage in self.failures:
            log.warning("skipped %s: %s", f.source, f.reason)
        _require(train, "training")
        _require(val, "validation")
        counts_t = torch.as_tensor(counts, dtype=torch.float64)
        self.class_weights = class_weights_from_counts(counts_t, power=opts.class_weight_power)
        n_lattice = int(opts.model.get("lattice_params", 3)) if self.kind == "vae" else 3
        self.norms = voxel_normalisers(train, opts.condition, self.class_weights.tolist(), n_lattice)
        self.train_set = VoxelDataset(train, self.voxeliser, self.norms, augment=self.augment_train,
                                      site_frames=opts.site_frames)  # fmt: skip
        self.val_set = VoxelDataset(val, self.voxeliser, self.norms, augment=False)
        self.data_hash = data_hash(train, self.voxel_cfg.to_dict())
        log.info(
            "%d training / %d validation crystals, %d element classes", len(train), len(val), len(self.vocab)
        )

    def inputs(self, batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
        from core.models.blocks import make_input

        b = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        b["x"] = make_input(b["density"], b["abc"])  # (B, 4, D, D, D)
        if self.channels_last:
            b["x"] = b["x"].contiguous(memory_format=torch.channels_last_3d)
        return b

    def checkpoint_meta(self) -> dict[str, Any]:
        return {
            "config": self.model.cfg.to_dict(),
            "vocab": self.vocab.to_list(),
            "normalisers": {**self.norms, "voxel": self.voxel_cfg.to_dict(), "origin": self.opts.origin,
                            "site_frames": self.opts.site_frames},
            "data_hash": self.data_hash,
        }


def _with_origin(entries: list, origin: str) -> list:
    """The entries as gridded: their files' origins, or one atom moved to the origin."""
    if origin == "file":
        return entries
    from dataclasses import replace

    from core.canonical import site_origin

    return [replace(e, structure=site_origin(e.structure)) for e in entries]


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _fg_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    """Fraction of atom (non-background) voxels whose species class is right, and their count."""
    fg = labels != 0
    n = int(fg.sum())
    if n == 0:
        return float("nan"), 0
    return float((logits.argmax(1)[fg] == labels[fg]).float().mean()), n


class UNetTask(VoxelTask):
    """Segmentation U-Net: class-balanced CE on species + BCE on occupancy."""

    kind = "unet"
    loss_names = ["ce", "bce", "fg_acc"]

    def __init__(self, split: SplitData, opts: TaskOptions) -> None:
        from core.models.unet import UNet3D, UNetConfig

        super().__init__(split, opts)
        cfg = make_config(UNetConfig, opts.model, {"in_channels": 4, "n_classes": len(self.vocab)})
        self.model = UNet3D(cfg)
        if cfg.peak_templates:
            from core.models.peaks import element_templates

            self.model.set_templates(element_templates(self.vocab.to_list(), self.voxel_cfg.sigma))
        if opts.decoded_from is not None:
            self._attach_decoded(opts.decoded_from, opts.decoded_frac)

    def _attach_decoded(self, models_dir: Path, frac: float) -> None:
        """Mix the VAE's reconstructions of the training crystals into the training inputs."""
        from core.pipeline import ModelSet
        from core.train.decoded import decode_training_grids

        models = ModelSet.load(models_dir, device="cpu")
        if models.voxel_cfg.to_dict() != self.voxel_cfg.to_dict() or models.vocab.to_list() != self.vocab.to_list():
            raise ICSGError(f"{models_dir}: its VAE uses another grid or vocabulary than this training data")
        train = self.train_set
        train.decoded = decode_training_grids(models, train.entries, train.cond, frac)
        self.decoded_info = {"from": str(models_dir), "frac": frac}

    def checkpoint_meta(self) -> dict[str, Any]:
        meta = super().checkpoint_meta()
        if getattr(self, "decoded_info", None):
            meta["decoded_inputs"] = self.decoded_info
        return meta

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], train: bool) -> StepResult:
        from core.models.unet import unet_loss

        b = self.inputs(batch, _device_of(model))
        out = model(b["x"])
        loss, parts = unet_loss(out, b["labels"], self.class_weights, occ_weight=self.model.cfg.occ_weight)
        acc, n_fg = _fg_accuracy(out["logits"].detach(), b["labels"])
        n = b["x"].shape[0]
        return StepResult(loss, {**parts, "fg_acc": acc}, n, {"fg_acc": n_fg})


class VAETask(VoxelTask):
    """Conditional VAE; deep-feature-consistency loss through a frozen U-Net when given."""

    kind = "vae"
    # A reconstruction target must not move at random: with random rotations/translations z has
    # to encode an arbitrary origin, and on perov_5 the density loss stayed at ~0.45 (the mean
    # map) for 4 epochs. The conventional standard cell already fixes the origin.
    augment_train = False
    loss_names = ["density", "species", "lattice", "prop", "kl", "dfc", "comp", "abc_mae", "comp_acc"]

    def __init__(self, split: SplitData, opts: TaskOptions) -> None:
        from core.models.vae import CondVAE3D, VAEConfig

        super().__init__(split, opts)
        overrides = dict(opts.model)
        self.unet = self._load_unet(opts.unet_dir)
        if self.unet is None and overrides.get("dfc_weight", 0.5) > 0:
            log.warning("no --unet given: training the VAE without the deep-feature loss (dfc weight 0)")
            overrides["dfc_weight"] = 0.0
        cfg = make_config(VAEConfig, overrides, {"in_channels": 4, "n_classes": len(self.vocab), "d": opts.d})
        self.model = CondVAE3D(cfg)

    def _load_unet(self, unet_dir: Path | None) -> nn.Module | None:
        if unet_dir is None:
            return None
        from core.checkpoint import load_checkpoint
        from core.models.vae import freeze

        unet, meta = load_checkpoint(Path(unet_dir), kind="unet")
        voxel = (meta.get("normalisers") or {}).get("voxel")
        if voxel and voxel != self.voxel_cfg.to_dict():
            raise ICSGError(
                f"{unet_dir}: the U-Net was trained on other grids ({voxel}); retrain it or match --grid"
            )
        log.info("deep-feature loss through the frozen U-Net %s", unet_dir)
        return freeze(unet)

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], train: bool) -> StepResult:
        from core.models.vae import vae_loss

        device = _device_of(model)
        b = self.inputs(batch, device)
        if self.unet is not None:
            self.unet.to(device).eval()
        out = model(b["x"], b["cond"], b["abc_std"], b["labels"])
        cfg = self.model.cfg
        loss, parts = vae_loss(
            out, b["density"], b["labels"], b["abc_std"], b["prop"], cfg, self.class_weights, self.unet,
            counts=b["counts"],
        )
        # Keep every head in the graph (the property head has no target in unlabelled batches),
        # which DistributedDataParallel requires.
        loss = loss + 0.0 * out["prop"].sum()
        mean = torch.as_tensor(self.norms["abc_mean"], device=device)
        std = torch.as_tensor(self.norms["abc_std"], device=device)
        abc_mae = float(((out["abc"].detach().float() * std + mean)[:, :3] - b["abc"]).abs().mean())
        parts.pop("total", None)
        n = b["x"].shape[0]
        if "count_logits" in out:  # whole composition right
            hit = (out["count_logits"].detach().argmax(-1) == b["counts"].clamp(0, cfg.max_count)).all(1)
            parts["comp_acc"] = float(hit.float().mean())
        n_prop = int((~torch.isnan(b["prop"])).sum())
        return StepResult(loss, {**parts, "abc_mae": abc_mae}, n, {"prop": n_prop})


def build_task(kind: str, split: SplitData, opts: TaskOptions) -> Any:
    """The task object of a model kind ('unet', 'vae', 'cgcnn'); its model is seeded by opts.seed."""
    seed_everything(opts.seed)
    if kind == "unet":
        return UNetTask(split, opts)
    if kind == "vae":
        return VAETask(split, opts)
    if kind == "cgcnn":
        from core.train.cgcnn_task import CGCNNTask

        return CGCNNTask(split, opts)
    raise ICSGError(f"unknown model kind {kind!r}: expected unet, vae or cgcnn")
