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


def is_model_set(path: str | Path) -> bool:
    """A model set is a folder holding a trained VAE (``vae/meta.json``)."""
    return (Path(path) / "vae" / "meta.json").is_file()


def model_set_folders(root: Path | None = None) -> list[Path]:
    """The model sets under ``root`` (default: the shipped ones): folders holding ``vae/meta.json``,
    the default set first."""
    root = Path(root) if root is not None else models_root()
    if not root.is_dir():
        return []
    found = [p for p in sorted(root.iterdir()) if is_model_set(p)]
    return sorted(found, key=lambda p: p.name != DEFAULT_MODEL_SET)


def models_help() -> str:
    """The help text of ``--models``, naming the sets this install ships (no imports: parsers use it)."""
    others = [p.name for p in model_set_folders() if p.name != DEFAULT_MODEL_SET]
    listed = f"; {', '.join(others)}" if others else ""
    return f"model set: a shipped name ({DEFAULT_MODEL_SET}, the default{listed}) or a folder"
