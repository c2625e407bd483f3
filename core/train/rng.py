"""Seeds and RNG states of a training run: derived per-step seeds (exact resume), seeding, and
the RNG states that go into the resume state (core.checkpoint.save_train_state).

The RNG state holds only tensors and primitive containers, so the resume state loads with
``torch.load(weights_only=True)`` (no code execution); numpy's RNG key is stored as a tensor.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a pure function of its parts (e.g. (seed, epoch, position)).

    Used so the data order and augmentation of every step depend only on (seed, epoch, step):
    a resumed run reproduces exactly the batches it would have seen.
    """
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (model initialisation and any global RNG use)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU, and CUDA when present) RNG states as safe containers."""
    py = random.getstate()
    npst = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {
            "bit_generator": npst["bit_generator"],
            "key": torch.from_numpy(np.asarray(npst["state"]["key"], dtype=np.int64)),
            "pos": int(npst["state"]["pos"]),
            "has_gauss": int(npst["has_gauss"]),
            "gauss": float(npst["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    py = state["python"]
    random.setstate((int(py[0]), tuple(int(v) for v in py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npst["bit_generator"],
            "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
            "has_gauss": npst["has_gauss"],
            "gauss": npst["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
