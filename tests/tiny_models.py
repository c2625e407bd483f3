"""A tiny, untrained but complete model set (VAE + U-Net + CGCNN) written in code for tests.

The weights are random: tests that use it check the mechanics (shapes, files, summaries, error
handling), never quality. Quality is measured by `icsg3d evaluate` on the shipped models.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pymatgen.core import Lattice, Structure

from core.checkpoint import save_checkpoint
from core.elements import Vocabulary
from core.models.cgcnn import CGCNN, CGCNNConfig
from core.models.unet import UNet3D, UNetConfig
from core.models.vae import CondVAE3D, VAEConfig
from core.voxel import VoxelConfig

D = 8


def tiny_crystals() -> list[Structure]:
    """CsCl, NaCl (conventional) and SrTiO3: small cubic cells the tests grid at d = 8."""
    cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    srtio3 = Structure(
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    return [cscl, nacl, srtio3]


def write_tiny_model_set(
    root: Path, seed: int = 0, comp_head: bool = False, lattice_params: int = 3, cell: str = "conventional"
) -> Path:
    """Save vae/, unet/ and cgcnn/ checkpoints under root; returns root. ``lattice_params = 6``: a
    VAE whose lattice head reads and predicts the angles too (any lattice); ``cell``: the cell it
    grids (``VoxelConfig.cell``)."""
    torch.manual_seed(seed)
    vocab = Vocabulary.from_structures(tiny_crystals())
    voxel = VoxelConfig(d=D, max_voxel=1.0, cell=cell)
    norms = {
        "abc_mean": [4.5, 4.5, 4.5, 90.0, 90.0, 90.0][:lattice_params],
        "abc_std": [0.7, 0.7, 0.7, 10.0, 10.0, 10.0][:lattice_params],
        "property": "heat_ref",
        "prop_edges": [float(x) for x in range(1, 10)],
        "prop_mean": 1.0,
        "prop_std": 1.0,
        "voxel": voxel.to_dict(),
    }
    vae_cfg = VAEConfig(n_classes=len(vocab), latent=16, d=D, widths=(4, 8), dec_widths=(8, 4), hidden=16,
                        comp_head=comp_head, max_count=4, lattice_params=lattice_params)  # fmt: skip
    save_checkpoint(root / "vae", CondVAE3D(vae_cfg), "vae", vae_cfg, vocab=vocab.to_list(), normalisers=norms)
    unet_cfg = UNetConfig(n_classes=len(vocab), base=4, levels=2)
    save_checkpoint(root / "unet", UNet3D(unet_cfg), "unet", unet_cfg, vocab=vocab.to_list(), normalisers=norms)
    cg_cfg = CGCNNConfig(atom_fea_len=8, n_conv=1, h_fea_len=8, targets=["heat_ref"])
    save_checkpoint(
        root / "cgcnn", CGCNN(cg_cfg), "cgcnn", cg_cfg, normalisers={"target_mean": [1.0], "target_std": [0.5]}
    )
    return root
