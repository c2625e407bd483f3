"""The steps of a model set's decode after the network: grids to sites to crystals, then
refinement, relaxation and the U-Net's annotations.

``DecodeSteps`` is that half of ``core.pipeline.ModelSet`` (a mixin: it reads the set's
``vocab``, ``voxeliser``, ``max_elements``, ``charge_margin`` and ``relax``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition, Structure

from core.errors import SegmentationError
from core.refine import STEPS as REFINE_STEPS
from core.refine import refine_structures
from core.segment import find_sites, sites_to_structure
from core.segmentation import blobs_of, unet_disagreements
from core.voxel import cell_angles, cell_matrix

log = logging.getLogger(__name__)

MIN_BLOB_VOXELS = 2  # species components smaller than this in a decoded grid are noise


@dataclass
class Decoded:
    """One decoded latent vector: grids, the recovered crystal (or why not), properties."""

    density: np.ndarray  # (D,D,D) e/Å^3
    abc: np.ndarray  # (P,) lattice parameters: a, b, c in Å, then alpha, beta, gamma in degrees when P = 6
    labels: np.ndarray | None = None  # (D,D,D) class ids: the U-Net's argmax (the decoder's without a U-Net)
    structure: Structure | None = None
    error: str | None = None
    properties: dict[str, float] = field(default_factory=dict)
    blobs: list = field(default_factory=list)  # core.segmentation.Blob of the U-Net's segmentation
    disagreements: list = field(default_factory=list)  # (site, element, the U-Net's element)


class DecodeSteps:
    """Decode steps of a model set after the network (see the module docstring)."""

    def _structures_of_grids(self, density: np.ndarray, abc: np.ndarray, probs: np.ndarray,
                             counts: np.ndarray | None, label_grids: np.ndarray | None) -> list[Decoded]:  # fmt: skip
        """One Decoded per grid: density (B,D,D,D), lattice parameters (B, P), species probabilities
        (B,C,D,D,D), optional atoms per class (B,C) and label grids (B,D,D,D); atoms found and
        typed (core/segment.py), or the reason none were."""
        results, charge = [], self._charge_test()
        for k in range(len(density)):
            item = Decoded(
                density=density[k], abc=abc[k], labels=None if label_grids is None else label_grids[k]
            )
            try:
                sites = find_sites(
                    density[k], self.vocab, class_probs=probs[k], min_voxels=MIN_BLOB_VOXELS,
                    counts=None if counts is None else counts[k], voxel_size=cell_matrix(abc[k]) / density.shape[-1],
                    max_elements=self.max_elements, charge=charge,
                )  # fmt: skip
                item.structure = sites_to_structure(sites, abc[k][:3], cell_angles(abc[k]))
            except SegmentationError as exc:
                item.error = str(exc)
            results.append(item)
        return results

    def _charge_test(self) -> tuple[Callable[[dict[int, int]], bool], float] | None:
        """(composition test on {class: count}, margin) for core/charge.py, or None when off."""
        if self.charge_margin is None:
            return None
        from core.metrics.validity import composition_validity

        def charge_balanced(counts: dict[int, int]) -> bool:
            if any(not 0 < cls < len(self.vocab) for cls in counts):
                return False
            return composition_validity(Composition({self.vocab.symbol(c): n for c, n in counts.items()}))

        return charge_balanced, float(self.charge_margin)

    def _annotate(self, results: list[Decoded], unet: np.ndarray, blobs: bool) -> None:
        """The U-Net's reading of each decoded grid: sites it types differently, and its blobs."""
        for k, r in enumerate(results):
            if r.structure is not None:
                r.disagreements = unet_disagreements(r.structure, unet[k], self.vocab)
            if blobs:
                try:
                    r.blobs = blobs_of(r.density, unet[k], self.vocab, r.labels)
                except SegmentationError as exc:
                    log.debug("no blobs: %s", exc)

    def _refine(self, results: list[Decoded], steps: int = REFINE_STEPS) -> None:
        """Fit positions of every segmented structure to its density, in place (one batch)."""
        ok = [r for r in results if r.structure is not None]
        if ok:
            fitted = refine_structures([r.structure for r in ok], np.stack([r.density for r in ok]), self.voxeliser,
                                       steps=steps)  # fmt: skip
            for r, structure in zip(ok, fitted, strict=True):
                r.structure = structure

    def _relax(self, results: list[Decoded]) -> None:
        """Relax every decoded structure's positions in the set's potential, in place (one batch)."""
        from core.relax import relax_structures

        ok = [r for r in results if r.structure is not None]
        for r, structure in zip(ok, relax_structures([r.structure for r in ok], **self.relax), strict=True):
            r.structure = structure
