"""Device choice shared by training, inference and the app: CUDA when present, else MPS, else CPU."""

from __future__ import annotations

import torch

from core.errors import ICSGError


def resolve_device(name: str = "auto") -> torch.device:
    """auto = CUDA if available, else Apple MPS, else CPU; an unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ICSGError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ICSGError("--device mps: Apple MPS is not available")
    return torch.device(name)
