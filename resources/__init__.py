"""Shipped data: model weights (``models/``) and the example gallery (``gallery/``).

Found the same way from a source checkout and from an installed wheel.
"""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """Path of a shipped resource, e.g. ``resource_path("gallery")``."""
    return _ROOT.joinpath(*parts)


DEFAULT_MODEL_SET = "perov_5"


def models_root() -> Path:
    """The folder of the shipped model sets (``models/<name>/``, with their model card README.md)."""
    return resource_path("models")


def default_models_dir() -> Path:
    """The default shipped model set (``models/perov_5``) of the CLI's --models and of the app."""
    return resource_path("models", DEFAULT_MODEL_SET)
