"""What every training task shares: the command line's options, the data fingerprint, configs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ICSGError
from core.structures import Entry


@dataclass
class TaskOptions:
    """Task settings from the command line (model overrides: fields of the model's config)."""

    d: int = 32
    condition: str | None = None  # property whose deciles condition the VAE
    targets: list[str] = field(default_factory=list)  # CGCNN targets
    unet_dir: Path | None = None  # frozen U-Net for the VAE's deep-feature loss
    model: dict[str, Any] = field(default_factory=dict)
    voxel: dict[str, Any] = field(default_factory=dict)
    decoded_from: Path | None = None  # model set whose VAE reconstructions the U-Net also trains on
    decoded_frac: float = 0.5  # share of U-Net samples that use the reconstruction
    class_weight_power: float = 1.0  # class weights = (1 / voxel frequency) ** power (0: unweighted)
    seed: int = 0  # seeds the model initialisation (python, numpy and torch RNGs)
    origin: str = "file"  # voxel models: "file" (each file's own origin) or "site" (core.canonical.site_origin)
    site_frames: float = 0.0  # origin "site": share of training samples gridded with a random atom at the origin


def data_hash(entries: list[Entry], *extra: Any) -> str:
    """Short fingerprint of the training ids (and settings), stored in checkpoints."""
    h = hashlib.blake2b(digest_size=8)
    for i in sorted(e.id for e in entries):
        h.update(i.encode())
    h.update(repr(extra).encode())
    return h.hexdigest()


def make_config(
    cls: type, overrides: dict[str, Any], fixed: dict[str, Any], option: str = "--model-config"
) -> Any:
    """A config from command-line overrides plus the fields the data fix (ICSGError if bad)."""
    try:
        return cls(**{**overrides, **fixed})
    except (TypeError, ValueError) as exc:
        raise ICSGError(f"{option}: invalid {cls.__name__} ({exc})") from None
