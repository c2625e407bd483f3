"""Segmentation of density grids into atoms with a model set, and how well it does.

Two sources of species probabilities exist for a decoded grid: the VAE's own species head (it sees
z) and the U-Net (it sees only the density). ``SEGMENTERS`` names the ways to use them:
- ``unet``: the U-Net alone (the only choice for grids the VAE did not decode: opened files);
- ``head``: the VAE's species head alone (decoded grids only);
- ``ensemble``: the mean of both distributions (decoded grids only).

``evaluate_segmentation`` measures a segmenter on true densities (voxelised crystals) or on the
VAE's reconstructions of them, against the true label grid and the true crystal:
- voxel_accuracy: voxels whose argmax class is the true label;
- foreground_accuracy: the same over atom voxels (true label != background);
- site_typing_accuracy: crystals whose every true site gets its element (site_classes);
- match_rate / match_rate_ungated / rmse: the segmented structures against the true crystals with
  the CDVAE matcher (core.metrics.matching; the gated rate needs SMACT-valid structures).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pymatgen.core import Structure

from core.errors import ICSGError, SegmentationError
from core.segment import find_sites, site_classes, sites_to_structure

if TYPE_CHECKING:
    from core.elements import Vocabulary


class SegmentingModelSet(Protocol):
    """What segmentation needs of a model set (core.pipeline.ModelSet has it; no import, so the
    pipeline can use this module)."""

    vocab: Vocabulary
    voxel_cfg: Any
    voxeliser: Any
    unet: Any
    source: str

    def unet_probabilities(self, density: np.ndarray, abc: np.ndarray) -> np.ndarray: ...

    def encode(self, structures: list[Structure], cond: Any = None) -> np.ndarray: ...

    def decode_grids(self, z: np.ndarray, cond: Any = None) -> dict[str, np.ndarray]: ...

    def condition_of(self, value: float | None) -> int: ...


log = logging.getLogger(__name__)

SEGMENTERS = ("unet", "head", "ensemble")
# ModelSet.decode's choice (resources/models/README.md): the ensemble reconstructs one selection
# crystal more, but running the U-Net on every decoded grid halves batch generation (below the
# >= 100 crystals/s target), so the head types atoms and the U-Net checks them where asked.
DECODE_SEGMENTER = "head"
UNET_TTA = 1  # cubic operations ModelSet.unet_probabilities averages over (TTA_OPS), chosen likewise
SOURCES = ("true", "decoded")
MIN_LABEL_VOXELS = 2  # at d = 16: argmax components smaller than this are noise, not atoms


def min_label_voxels(d: int) -> int:
    """MIN_LABEL_VOXELS scaled to a grid of d points per axis (the same volume of the cell)."""
    return max(1, round(MIN_LABEL_VOXELS * (d / 16) ** 3))


# Cubic operations (core.voxel.cubic_operation indices) whose average the U-Net's answer may be:
# identity first, then inversion and operations that mix axis permutations with reflections.
TTA_OPS = (0, 7, 9, 14, 18, 27, 37, 44)


def _undo(probs: np.ndarray, perm: Sequence[int], flips: Sequence[bool]) -> np.ndarray:
    """Map (B, C, D, D, D) probabilities of an operated grid back to the original grid."""
    for axis, flip in enumerate(flips):
        if flip:  # the flip of apply_operation (i -> -i mod d) is its own inverse
            probs = np.roll(np.flip(probs, axis=2 + axis), 1, axis=2 + axis)
    inverse = np.argsort(perm)
    return np.ascontiguousarray(np.transpose(probs, (0, 1, *(2 + int(i) for i in inverse))))


def averaged_over_operations(predict, density: np.ndarray, abc: np.ndarray, n_ops: int) -> np.ndarray:  # noqa: ANN001
    """Mean of ``predict`` over the first ``n_ops`` of TTA_OPS: each operation applied to the grids
    (B, D, D, D) and lengths (B, 3), its answer (B, C, D, D, D) mapped back. A segmentation of a
    crystal does not depend on how the cell's axes are named or oriented; averaging makes the
    network's answer closer to that."""
    from core.voxel import apply_operation, cubic_operation

    total = None
    for index in TTA_OPS[: max(1, n_ops)]:
        perm, flips = cubic_operation(index)
        answer = predict(apply_operation(density, perm, flips), np.asarray(abc)[:, list(perm)])
        answer = _undo(answer, perm, flips)
        total = answer if total is None else total + answer
    return total / max(1, min(n_ops, len(TTA_OPS)))


# The U-Net's share of the ensemble's probabilities (the head's is the rest); see the model card.
ENSEMBLE_UNET_WEIGHT = 0.5


def combine_probabilities(unet: np.ndarray | None, head: np.ndarray | None, segmenter: str) -> np.ndarray:
    """Species probabilities (B,C,D,D,D) of one segmenter from the U-Net's and the head's."""
    if segmenter not in SEGMENTERS:
        raise ICSGError(f"unknown segmenter {segmenter!r}: expected one of {', '.join(SEGMENTERS)}")
    if segmenter == "ensemble" and (unet is None or head is None):  # a set with only one of the two
        segmenter = "unet" if head is None else "head"
    if segmenter == "unet":
        if unet is None:
            raise SegmentationError("this model set has no U-Net")
        return unet
    if head is None:
        raise SegmentationError(f"segmenter {segmenter!r} needs the VAE's species head (decoded grids only)")
    if segmenter == "head":
        return head
    if unet is None:
        raise SegmentationError("this model set has no U-Net")
    return ENSEMBLE_UNET_WEIGHT * unet + (1.0 - ENSEMBLE_UNET_WEIGHT) * head


def _typed_sites(density: np.ndarray, probs: np.ndarray, vocab: Vocabulary,
                 argmax: np.ndarray | None = None) -> tuple[list, np.ndarray]:  # fmt: skip
    """Atoms of one grid (D,D,D) from species probabilities (C,D,D,D), and their confidences.

    Where the atoms are: the periodic components of the foreground (argmax not background), each
    split at the density maxima inside it (one atom at the centroid of a component without one).
    What they are: the class with the most probability mass around each atom (``site_classes``).
    Typing atoms after finding them, rather than taking each class's argmax components, keeps a
    few voxels of another class inside a blob from becoming atoms of their own. ``argmax``: the
    (D,D,D) argmax of ``probs`` when the caller has it already.
    """
    argmax = probs.argmax(axis=0) if argmax is None else argmax
    foreground = (argmax != 0).astype(np.int64)
    sites = find_sites(density, vocab, labels=foreground, min_voxels=min_label_voxels(density.shape[-1]))
    if not sites:
        return [], np.zeros(0)
    classes, confidence = site_classes(probs, np.array([site.frac for site in sites]))
    for site, cls in zip(sites, classes, strict=True):
        site.species = vocab.symbol(int(cls))
    return sites, confidence


def segment_grid(density: np.ndarray, abc: Sequence[float], probs: np.ndarray, vocab: Vocabulary,
                 argmax: np.ndarray | None = None) -> Structure:  # fmt: skip
    """A crystal from one grid (D,D,D) and its species probabilities (C,D,D,D), no composition
    given (``_typed_sites``). Raises SegmentationError."""
    sites, _ = _typed_sites(density, probs, vocab, argmax)
    return sites_to_structure(sites, abc)


@dataclass
class Blob:
    """One segmented atom: fractional position (3,), element, confidence in [0, 1] (the share of
    the atom probability mass around it that its element holds)."""

    frac: np.ndarray
    symbol: str
    confidence: float


@dataclass
class GridSegmentation:
    """A reading of a grid: labels (D, D, D) class ids on the model set's grid, blobs, and what read
    it (``method``: "U-Net" or "peak templates")."""

    labels: np.ndarray
    blobs: list[Blob] = field(default_factory=list)
    method: str = "U-Net"

    @property
    def mean_confidence(self) -> float | None:
        return float(np.mean([b.confidence for b in self.blobs])) if self.blobs else None


def blobs_of(
    density: np.ndarray, probs: np.ndarray, vocab: Vocabulary, argmax: np.ndarray | None = None
) -> list[Blob]:
    """The atoms of one grid (D,D,D) segmented by probabilities (C,D,D,D) (``_typed_sites``), each
    with its element's share of the atom probability mass around it."""
    sites, confidence = _typed_sites(density, probs, vocab, argmax)
    return [Blob(frac=np.asarray(s.frac), symbol=s.species, confidence=float(c))
            for s, c in zip(sites, confidence, strict=True)]  # fmt: skip


def to_model_grid(
    models: SegmentingModelSet, density: np.ndarray, lattice: np.ndarray, orthogonal_only: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A grid of any shape, resampled (periodic, trilinear, in fractional coordinates) to the model
    set's (d, d, d) grid; returns (density (d,d,d), abc (3,)). Raises SegmentationError when the
    cell is outside what the reader takes (skewed for the U-Net: ``orthogonal_only``; too long)."""
    from core.volumetric import periodic_trilinear

    lattice = np.asarray(lattice, dtype=float)
    abc = np.linalg.norm(lattice, axis=1)
    cosines = [lattice[i] @ lattice[j] / (abc[i] * abc[j]) for i, j in ((1, 2), (0, 2), (0, 1))]
    if orthogonal_only and max(abs(c) for c in cosines) > 1e-3:
        raise SegmentationError("the U-Net of this model set reads 90° cells only; this cell is skewed")
    cfg = models.voxel_cfg
    if float(abc.max()) / cfg.d > cfg.max_voxel + 1e-9:
        raise SegmentationError(
            f"the cell ({abc.max():.2f} Å) is too long for this model set's {cfg.d}-point grid "
            f"(at most {cfg.d * cfg.max_voxel:.1f} Å)"
        )
    density = np.asarray(density, dtype=np.float32)
    if density.shape != (cfg.d,) * 3:
        frac = np.stack(np.meshgrid(*[np.arange(cfg.d) / cfg.d] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
        density = periodic_trilinear(density, frac).reshape((cfg.d,) * 3).astype(np.float32)
    return density, abc.astype(np.float32)


def segment_with_unet(
    models: SegmentingModelSet, density: np.ndarray, lattice: np.ndarray
) -> GridSegmentation:
    """The U-Net's segmentation of any grid on screen (decoded, opened, a CHGCAR/cube), on the
    model set's grid. Raises SegmentationError naming why it cannot (no U-Net, cell outside)."""
    if models.unet is None:
        raise SegmentationError(f"{models.source}: this model set has no U-Net")
    rho, abc = to_model_grid(models, density, lattice)
    probs = models.unet_probabilities(rho[None], abc[None])[0]
    labels = probs.argmax(axis=0)
    return GridSegmentation(labels=labels.astype(np.uint8), blobs=blobs_of(rho, probs, models.vocab, labels))


def template_probabilities(models: SegmentingModelSet, rho: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Species probabilities (C,D,D,D) of a voxelised grid (D,D,D) e/Å^3 on a cell (3,3) Å of any
    shape, with no trained model: each voxel's fitted Gaussian peak (``core.models.peaks``: its
    ln-amplitude and sigma, exact for an isolated atom wherever it sits) against each element's
    peak as the voxeliser draws it. Voxels within ``label_frac`` sigmas of their peak are atom
    voxels (the voxeliser's own labels); the others are background."""
    import torch

    from core.models.peaks import MAX_TEMPLATE_D2, element_templates, peak_estimates, template_log_likelihood

    lattice = np.asarray(lattice, dtype=np.float64)
    d = rho.shape[0]
    spacing = np.linalg.norm(lattice, axis=1) / d
    units = lattice / np.linalg.norm(lattice, axis=1, keepdims=True)
    grid = torch.from_numpy(np.ascontiguousarray(rho, dtype=np.float32))[None]
    log_amp, sigma = peak_estimates(grid, torch.tensor(spacing[None], dtype=torch.float32),
                                    torch.tensor((units @ units.T)[None], dtype=torch.float32))  # fmt: skip
    symbols = [models.vocab.symbol(i) for i in range(1, len(models.vocab))]
    templates = element_templates(symbols, models.voxel_cfg.sigma)
    log_likelihood = template_log_likelihood(log_amp, sigma, templates)[0, 1:]  # (C-1, D, D, D)
    elements = torch.softmax(log_likelihood, dim=0)
    log_rho = torch.log(grid[0].clamp_min(1e-6))
    cfg = models.voxel_cfg
    # an atom voxel: within label_frac sigmas of its peak, and some element's peak near its fit
    # (saddles between atoms fit no element: their distance is capped at MAX_TEMPLATE_D2)
    atom = (log_rho - log_amp[0] >= -0.5 * cfg.label_frac**2) & (grid[0] > 1e-3) \
        & (log_likelihood.max(dim=0).values > -0.5 * MAX_TEMPLATE_D2)
    probs = torch.cat([(~atom).float()[None], elements * atom.float()[None]], dim=0)
    return probs.numpy()


def segment_with_templates(
    models: SegmentingModelSet, density: np.ndarray, lattice: np.ndarray
) -> GridSegmentation:
    """The untrained segmentation of any voxelised grid on any cell (``template_probabilities``):
    what a model set without a U-Net, or a skewed cell, gets. Raises SegmentationError when the
    cell is too long for the set's grid."""
    rho, _ = to_model_grid(models, density, lattice, orthogonal_only=False)
    probs = template_probabilities(models, rho, lattice)
    labels = probs.argmax(axis=0)
    return GridSegmentation(labels=labels.astype(np.uint8), blobs=blobs_of(rho, probs, models.vocab, labels),
                            method="peak templates")  # fmt: skip


def unet_disagreements(
    structure: Structure, unet_probs: np.ndarray, vocab: Vocabulary
) -> list[tuple[int, str, str]]:
    """Sites of a decoded crystal whose element the U-Net reads differently:
    [(site index, the crystal's element, the U-Net's element)]."""
    classes, _ = site_classes(unet_probs, structure.frac_coords)
    out = []
    for i, (site, cls) in enumerate(zip(structure, classes, strict=True)):
        theirs = vocab.symbol(int(cls))
        if site.specie.symbol != theirs:
            out.append((i, site.specie.symbol, theirs))
    return out


def _true_classes(structure: Structure, vocab: Vocabulary) -> np.ndarray:
    return np.array([vocab.index(site.specie.symbol) for site in structure])


def _grids(models: SegmentingModelSet, chunk: list[Structure], source: str, conds: list[int]) -> tuple:
    """(density, abc, head probabilities or None, true labels) of one chunk of crystals."""
    true_density, true_labels, true_abc = models.voxeliser.batch(chunk)
    if source == "true":
        return true_density, true_abc, None, true_labels
    # no frame search: the decoded grids are scored against the crystals' own label grids
    grids = models.decode_grids(models.encode(chunk, conds, frame_search=False), conds)
    return grids["density"], grids["abc"][:, :3], grids.get("species_probs"), true_labels


def evaluate_segmentation(
    models: SegmentingModelSet,
    structures: Sequence[Structure],
    source: str = "true",
    segmenter: str = "unet",
    conds: Sequence[int] | None = None,
    batch: int = 64,
) -> dict:
    """Scores of ``segmenter`` on the true or decoded grids of ``structures`` (see the module doc).

    conds: the VAE condition bin of each crystal (decoded source; default: unknown).
    """
    from core.metrics.matching import match_rate_rmse

    if source not in SOURCES:
        raise ICSGError(f"unknown source {source!r}: expected true or decoded")
    structures = list(structures)
    conds = [models.condition_of(None)] * len(structures) if conds is None else [int(c) for c in conds]
    voxels = voxel_hits = fg = fg_hits = typed = 0
    preds: list[Structure | None] = []
    for start in range(0, len(structures), batch):
        chunk = structures[start : start + batch]
        density, abc, head, labels = _grids(models, chunk, source, conds[start : start + batch])
        unet = models.unet_probabilities(density, abc) if models.unet is not None else None
        probs = combine_probabilities(unet, head, segmenter)
        argmax = probs.argmax(axis=1)
        voxels += argmax.size
        voxel_hits += int((argmax == labels).sum())
        mask = labels != 0
        fg += int(mask.sum())
        fg_hits += int((argmax[mask] == labels[mask]).sum())
        for k, structure in enumerate(chunk):
            classes, _ = site_classes(probs[k], structure.frac_coords)
            typed += bool(np.array_equal(classes, _true_classes(structure, models.vocab)))
            try:
                preds.append(segment_grid(density[k], abc[k], probs[k], models.vocab, argmax[k]))
            except SegmentationError as exc:
                log.debug("segmentation failed for %s: %s", structure.formula, exc)
                preds.append(None)
    n = len(structures)
    match = match_rate_rmse(preds, structures)
    return {
        "n": n,
        "source": source,
        "segmenter": segmenter,
        "voxel_accuracy": voxel_hits / voxels if voxels else None,
        "foreground_accuracy": fg_hits / fg if fg else None,
        "site_typing_accuracy": typed / n if n else None,
        "match_rate": match["match_rate"],
        "match_rate_ungated": match["match_rate_ungated"],
        "rmse": match["rmse"],
        "n_failed": match["n_failed"],
    }
