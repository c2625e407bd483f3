"""Model sets the app can load (no Qt): the shipped ones and any folder a user picks.

A folder is a model set when it holds a trained VAE (``vae/meta.json``); ``unet/`` and ``cgcnn/``
are optional (``core.pipeline.ModelSet.load``). The shipped sets are the sub-folders of
``resources/models`` (``perov_5``, the default, and ``carbon_24``): ``core.model_sets``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.model_sets import SHIPPED_NAME, is_model_set, model_set_name, shipped_model_sets

__all__ = ["SHIPPED_NAME", "is_model_set", "model_problem", "model_set_name", "modelset_loader",
           "shipped_model_sets"]


def model_problem(models_dir: Path) -> str | None:
    """Why no model set can be loaded from ``models_dir`` (None if checkpoints are there)."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir() or not any(models_dir.rglob("meta.json")):
        return f"No trained models in {models_dir}: latent sliders disabled; see README to train"
    # find_spec, not an import: torch takes ~2 s to import and the worker thread imports it
    # while the window is already showing its first crystal
    missing = [name for name in ("torch", "safetensors") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed: latent sliders disabled"
    return None


def modelset_loader(models_dir: Path, device: str) -> Callable[[], Any]:
    """A loader the inference thread calls (the models are created in that thread)."""

    def load() -> Any:
        from core.pipeline import ModelSet

        return ModelSet.load(Path(models_dir), device=device)

    return load
