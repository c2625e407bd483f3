"""Decoded densities as U-Net training inputs: the VAE's reconstructions of the training crystals.

The U-Net must read what the VAE produces, and a decoded density is smoother than a true one (its
light atoms are faint shoulders, its peaks a little wide). So the U-Net trains on a mix: for each
sample, with probability ``frac``, the true density is replaced by the VAE's reconstruction of the
same crystal (decoded from the posterior mean), while the labels stay the true ones. The
reconstruction lives in the same cell and origin as the true crystal (the VAE sees no
translations), so the true label grid lines up with it; the augmentation (cubic operations,
translations) is applied to both afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import ICSGError
from core.structures import Entry

if TYPE_CHECKING:
    from core.pipeline import ModelSet

log = logging.getLogger(__name__)


@dataclass
class DecodedGrids:
    """Reconstructions of N crystals: density (N, D, D, D) float16 e/Å^3, abc (N, 3) float32 Å."""

    density: np.ndarray
    abc: np.ndarray
    frac: float  # share of training samples that use the reconstruction instead of the true grid

    def __len__(self) -> int:
        return len(self.density)


def decode_training_grids(
    models: ModelSet, entries: list[Entry], cond: np.ndarray, frac: float, batch: int = 256
) -> DecodedGrids:
    """The VAE of ``models`` reconstructs every entry (posterior mean, its own condition bin).

    cond: (N,) condition bins of the entries (the training set's own, unknown bin when unlabelled).
    Raises ICSGError when ``frac`` is not in (0, 1].
    """
    if not 0.0 < frac <= 1.0:
        raise ICSGError(f"--decoded-frac must be in (0, 1], got {frac}")
    d = models.voxel_cfg.d
    density = np.zeros((len(entries), d, d, d), dtype=np.float16)
    abc = np.zeros((len(entries), 3), dtype=np.float32)
    for start in range(0, len(entries), batch):
        chunk = [e.structure for e in entries[start : start + batch]]
        bins = [int(c) for c in cond[start : start + batch]]
        z = models.encode(chunk, bins, frame_search=False)  # the decode must line up with these labels
        rho, lengths = models.decode_density(z, bins)
        density[start : start + len(chunk)] = rho.astype(np.float16)
        abc[start : start + len(chunk)] = lengths[:, :3]
        if start // batch % 10 == 0:
            log.info(
                "decoded %d / %d training crystals through %s",
                start + len(chunk),
                len(entries),
                models.source,
            )
    return DecodedGrids(density=density, abc=abc, frac=frac)
