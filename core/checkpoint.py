"""One checkpoint format for every model: a directory that loads without executing code.

Layout of a checkpoint directory::

    model.safetensors   weights (safetensors: plain tensors, no pickle)
    meta.json           format, version, kind, config, vocab, normalisers, data_hash, metrics, created
    train_state.pt      optional resume state; only ever read with torch.load(weights_only=True)

``save_checkpoint`` writes into a temporary sibling directory and swaps it into place, so a crash
never leaves a half-written checkpoint under the final name. ``load_checkpoint`` rebuilds the model
from ``meta['config']`` and refuses anything foreign, truncated, of the wrong kind or unsafe with a
:class:`core.errors.CheckpointError` naming the file and the reason.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from core.atomic import atomic_write
from core.errors import CheckpointError
from core.jsonable import jsonable

log = logging.getLogger(__name__)

FORMAT = "icsg3d-checkpoint"
VERSION = 1
WEIGHTS = "model.safetensors"
META = "meta.json"
TRAIN_STATE = "train_state.pt"
KINDS = ("unet", "vae", "cgcnn")


def _registry(kind: str) -> tuple[type, type]:
    """(ConfigClass, ModelClass) of a kind; imported lazily so this module stays light."""
    if kind == "unet":
        from core.models.unet import UNet3D, UNetConfig

        return UNetConfig, UNet3D
    if kind == "vae":
        from core.models.vae import CondVAE3D, VAEConfig

        return VAEConfig, CondVAE3D
    if kind == "cgcnn":
        from core.models.cgcnn import CGCNN, CGCNNConfig

        return CGCNNConfig, CGCNN
    raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two directories (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _swap_into_place(tmp: Path, path: Path) -> None:
    """Replace directory ``path`` by ``tmp`` with no moment where ``path`` holds no checkpoint.

    Where the kernel can exchange two directories in one step, it does; elsewhere the old one is
    renamed aside first, and ``recover_interrupted_swap`` (called by every reader) puts it back if a
    crash falls between the two renames."""
    if path.exists() and _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old checkpoint
        return
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_interrupted_swap(path: Path) -> None:
    """A crash between the two renames of a swap left ``path`` missing and ``.<name>.old-<pid>``
    beside it: move the newest such folder back (the previous checkpoint, complete)."""
    if path.exists():
        return
    olds = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime) if path.parent.is_dir() else []
    if olds and (olds[-1] / META).is_file():
        os.replace(olds[-1], path)
        log.warning("%s: restored the previous checkpoint left aside by an interrupted save", path)


def save_checkpoint(path: str | Path, model: nn.Module, kind: str, config: Any, **meta: Any) -> Path:
    """Write ``model`` as a checkpoint directory at ``path`` (atomic; replaces an existing one).

    config: the model's config dataclass (or its dict). Extra keyword metadata (vocab, normalisers,
    data_hash, metrics, or anything JSON-serialisable, e.g. a voxel config) goes into meta.json.
    An existing ``train_state.pt`` in ``path`` is kept. Returns the checkpoint path.
    """
    _registry(kind)
    reserved = {"format", "version", "kind", "config"} & set(meta)
    if reserved:
        raise ValueError(f"reserved meta keys cannot be overridden: {sorted(reserved)}")
    path = Path(path)
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "config": cfg,
        "vocab": None,
        "normalisers": {},
        "data_hash": None,
        "metrics": {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    record.update(meta)
    text = json.dumps(jsonable(record), indent=2, allow_nan=True)
    # Detach, move to CPU and un-share storage: safetensors refuses aliased tensors.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT, "kind": kind})
        (tmp / META).write_text(text, encoding="utf-8")
        if (path / TRAIN_STATE).is_file():
            shutil.copy2(path / TRAIN_STATE, tmp / TRAIN_STATE)
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved %s checkpoint to %s", kind, path)
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint's meta.json (no weights). Raises CheckpointError."""
    path = Path(path)
    recover_interrupted_swap(path)
    if not path.exists():
        raise CheckpointError(str(path), "no such checkpoint")
    if not path.is_dir():
        raise CheckpointError(
            str(path), f"not a checkpoint directory (expected a folder with {WEIGHTS} and {META})"
        )
    meta_path = path / META
    if not meta_path.is_file():
        raise CheckpointError(str(meta_path), "missing meta.json: not an icsg3d checkpoint")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(str(meta_path), f"unreadable meta.json ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(str(meta_path), f"foreign checkpoint (format is not {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(str(meta_path), f"unsupported checkpoint version {meta.get('version')!r}")
    if meta.get("kind") not in KINDS:
        raise CheckpointError(str(meta_path), f"unknown model kind {meta.get('kind')!r}")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(str(meta_path), "meta.json has no model config")
    return meta


def _read_weights(weights: Path) -> dict[str, torch.Tensor]:
    """The tensors of a model.safetensors file; CheckpointError when missing or unreadable."""
    if not weights.is_file():
        raise CheckpointError(str(weights), "missing weights file")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(str(weights), f"corrupt or truncated weights ({exc})") from exc


def load_checkpoint(
    path: str | Path, kind: str | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint directory -> (model in eval mode on ``device``, meta dict).

    kind: expected kind ('unet' | 'vae' | 'cgcnn') or None for any. Raises CheckpointError for a
    missing, foreign, truncated, wrong-kind or mismatching checkpoint.
    """
    path = Path(path)
    meta = read_meta(path)
    if kind is not None and meta["kind"] != kind:
        raise CheckpointError(str(path), f"is a {meta['kind']} checkpoint, expected {kind}")
    cfg_cls, model_cls = _registry(meta["kind"])
    try:
        cfg = cfg_cls.from_dict(meta["config"])
        model = model_cls(cfg)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(str(path / META), f"invalid {meta['kind']} config ({exc})") from exc
    weights = path / WEIGHTS
    state = _read_weights(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        reason = "; ".join(line.strip() for line in first[:3])
        raise CheckpointError(str(weights), f"weights do not match the config ({reason})") from exc
    model.to(device).eval()
    return model, meta


def init_from_checkpoint(model: nn.Module, path: str | Path, kind: str, vocab: list[str] | None = None) -> list[str]:
    """Warm-start ``model`` from the weights of a trained checkpoint of the same kind.

    Tensors whose name and shape match are copied; the rest (heads the checkpoint lacks) keep
    their fresh initialisation. A convolution that has gained input channels (e.g. the U-Net's
    ``density_features``) gets the old weights in its leading channels and zeros in the new ones,
    so the warm-started network starts as the old function. Returns the names not copied (or
    widened). Raises CheckpointError for another kind, another vocabulary (class indices would
    mean other elements) or no shared tensor.
    """
    path = Path(path)
    meta = read_meta(path)
    if meta["kind"] != kind:
        raise CheckpointError(str(path), f"is a {meta['kind']} checkpoint, cannot initialise a {kind}")
    if vocab is not None and meta.get("vocab") not in (None, list(vocab)):
        raise CheckpointError(str(path), "was trained with another element vocabulary (other data)")
    state = _read_weights(path / WEIGHTS)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise CheckpointError(str(path), "shares no weights with the model being trained")
    widened = {k: _widen_inputs(v, own[k]) for k, v in state.items() if k in own and _grew_inputs(v, own[k])}
    model.load_state_dict({**usable, **widened}, strict=False)
    return sorted(set(own) - set(usable))


def _grew_inputs(old: torch.Tensor, new: torch.Tensor) -> bool:
    """A 3-D conv weight (Cout, Cin, k, k, k) whose only change is more input channels."""
    return (
        old.ndim == new.ndim == 5
        and old.shape[1] < new.shape[1]
        and old.shape[:1] + old.shape[2:] == new.shape[:1] + new.shape[2:]
    )


def _widen_inputs(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """The old weights in the leading input channels, zeros in the added ones."""
    out = torch.zeros_like(new)
    out[:, : old.shape[1]] = old.to(new.dtype)
    return out


# -- resume state --------------------------------------------------------------------------
def _check_state(obj: Any, where: str = "state") -> Any:
    """Tensors and primitive containers only (numpy arrays/scalars converted to tensors/Python)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
        return {k: _check_state(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_check_state(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return tuple(items) if isinstance(obj, tuple) else items
    raise TypeError(f"{where}: {type(obj).__name__} cannot go into a train state (tensors/primitives only)")


def save_train_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Save resume state (optimiser state_dict, epoch, RNG states...) atomically.

    ``path`` is a checkpoint directory (-> path/train_state.pt) or a file path. Only tensors,
    numbers, strings, None and lists/tuples/dicts of them are accepted (TypeError otherwise), so
    the file can be read back with ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    target = path / TRAIN_STATE if path.is_dir() else path
    clean = _check_state(dict(state))
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(clean, buffer)
    atomic_write(target, buffer.getvalue(), force=True)
    return target


def load_train_state(path: str | Path) -> dict[str, Any]:
    """Load resume state written by :func:`save_train_state` without executing code.

    Uses ``torch.load(weights_only=True)``: a pickle that references any callable or class
    (e.g. one crafted with ``__reduce__``) is refused with a CheckpointError before it can run.
    """
    path = Path(path)
    target = path / TRAIN_STATE if path.is_dir() else path
    if not target.is_file():
        raise CheckpointError(str(target), "no such train state file")
    try:
        state = torch.load(target, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means: refuse the file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(str(target), f"refused or corrupt train state ({first[:200]})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(str(target), "train state is not a dict")
    return state
