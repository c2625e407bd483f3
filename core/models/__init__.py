"""PyTorch models: 3-D U-Net, conditional 3-D VAE, CGCNN, and their shared blocks.

The voxel models are imported eagerly (torch only); the CGCNN names are resolved lazily because
its graph building pulls in pymatgen.
"""

from __future__ import annotations

from typing import Any

from core.models.blocks import coord_channels, make_input
from core.models.unet import UNet3D, UNetConfig, class_weights_from_counts, unet_loss
from core.models.vae import CondVAE3D, VAEConfig, freeze, vae_loss

_LAZY = {"CGCNN", "CGCNNConfig", "Graph", "Batch", "build_graph", "collate"}

__all__ = [
    "CondVAE3D",
    "UNet3D",
    "UNetConfig",
    "VAEConfig",
    "class_weights_from_counts",
    "coord_channels",
    "freeze",
    "make_input",
    "unet_loss",
    "vae_loss",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from core.models import cgcnn

        return getattr(cgcnn, name)
    raise AttributeError(f"module 'core.models' has no attribute {name!r}")
