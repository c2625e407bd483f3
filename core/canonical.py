"""One frame per crystal, whatever origin its file chose: the frame the VAE reads best.

A conventional standard cell (spglib) still leaves the origin free: any point of the Euclidean
normaliser's coset is a standard origin (perovskite A or B at 0,0,0), and in polar groups the
origin slides along the polar axis. The training files put perov_5's A cation near the origin;
the same crystal with B there is, to the VAE, another map, and it decoded 0.49 of shifted
held-out crystals against 0.98 of the originals.

The fix does not hard-code any data set's convention. Candidate frames are the file's own and one
with each symmetry-distinct site moved to the origin, each also slid along the polar directions
of its space group (where the origin is free) in steps of a grid spacing; each is encoded and
decoded once (no refinement), and the frame the VAE reproduces best (density error plus the count
head's surprise at the crystal's composition: ``reconstruction_misfit``) is the one it encodes.
That is a model-set property: a set trained on another convention picks that convention's frame.
Sites alone were not enough: on 120 shifted selection crystals they recovered 0.925, because
perov_5's polar cells keep their file's origin along the polar axis; with the slide, 1.00.
"""

from __future__ import annotations

import logging

import numpy as np
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from core.voxel import normalise_density

log = logging.getLogger(__name__)

MAX_SITE_FRAMES = 12  # the file's own frame + up to 11 distinct sites at the origin
COARSE_SHIFTS = {1: 4, 2: 4, 3: 2}  # first pass: translations tried along 1, 2 or 3 free directions
FINE_SHIFTS = {1: 16, 2: 8, 3: 4}  # second pass, around the first pass's best frame
COUNT_WEIGHT = 0.01  # misfit per nat of the count head's composition likelihood (reconstruction_misfit)


def _symmetry(structure: Structure, symprec: float) -> tuple[list[int], list[np.ndarray]]:
    """(one site index per symmetry orbit, the fractional rotations of the space group); all sites
    and the identity when symmetry analysis fails."""
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        orbits = sga.get_symmetrized_structure().equivalent_indices
        rotations = [
            np.rint(op.rotation_matrix).astype(int) for op in sga.get_symmetry_operations(cartesian=False)
        ]
    except Exception:  # noqa: BLE001 (spglib raises several types; then every site is a candidate)
        return list(range(len(structure))), [np.eye(3, dtype=int)]
    return sorted(int(orbit[0]) for orbit in orbits), rotations


def free_directions(rotations: list[np.ndarray]) -> np.ndarray:
    """(k, 3) fractional directions along which the origin may slide without changing the space
    group (polar axes: k = 1 for P4mm or R3m, 2 for Pm, 3 for P1; 0 when it is fixed), each scaled
    so that its largest component is 1 (one period of the slide is then 0..1)."""
    stacked = np.concatenate([np.asarray(r, dtype=float) - np.eye(3) for r in rotations])
    _, singular, vt = np.linalg.svd(stacked)
    free = vt[np.sum(singular > 1e-6) :]
    return np.asarray([v / v[np.argmax(np.abs(v))] for v in free]).reshape(-1, 3)


def settings(structure: Structure, rotations: list[np.ndarray], symprec: float = 0.01) -> list[np.ndarray]:
    """Proper rotations W (fractional, integer) of the cell's lattice, one per coset W·G of the
    crystal's own rotations G: each turns the crystal into another setting on the same cell
    (e.g. a polar axis along a instead of c in a cubic-metric cell). Identity first."""
    lattice_only = Structure(structure.lattice, ["H"], [[0.0, 0.0, 0.0]])
    try:
        ops = SpacegroupAnalyzer(lattice_only, symprec=symprec).get_symmetry_operations(cartesian=False)
    except Exception:  # noqa: BLE001 (as above: then only the file's setting)
        return [np.eye(3, dtype=int)]
    own = {r.tobytes() for r in rotations}
    kept: list[np.ndarray] = [np.eye(3, dtype=int)]
    for op in ops:
        w = np.rint(op.rotation_matrix).astype(int)
        if round(np.linalg.det(w)) != 1:
            continue
        if not any(np.rint(np.linalg.inv(k) @ w).astype(int).tobytes() in own for k in kept):
            kept.append(w)
    return kept


def _slides(free: np.ndarray, steps: dict[int, int]) -> np.ndarray:
    """(n, 3) fractional translations on a grid along the free directions ((1, 3) zeros if none)."""
    if not len(free):
        return np.zeros((1, 3))
    ticks = np.arange(steps[len(free)]) / steps[len(free)]
    grid = np.stack(np.meshgrid(*[ticks] * len(free), indexing="ij"), axis=-1).reshape(-1, len(free))
    return grid @ free


def _moved(structure: Structure, rotation: np.ndarray, origin: np.ndarray) -> Structure:
    frac = (structure.frac_coords @ rotation.T - origin) % 1.0
    return Structure(structure.lattice, structure.species, frac)


def origin_candidates(structure: Structure, symprec: float = 0.01,
                      steps: dict[int, int] = FINE_SHIFTS, slides: bool = True) -> list[Structure]:  # fmt: skip
    """Frames of one crystal: each setting (``settings``; the file's own first) with its own origin,
    then each distinct site at the origin (rarest species first, so a capped list keeps the sites
    that differ most), and in polar groups (``slides``) each of those slid along the free directions."""
    sites, rotations = _symmetry(structure, symprec)
    counts = structure.composition.as_dict()
    # without slides (a set trained with site_origin) the most compact sites first: the cap keeps
    # the site training put at the origin
    order = compactness(structure) if not slides else np.zeros(len(structure))
    sites = sorted(sites, key=lambda i: (counts[structure[i].specie.symbol], order[i], i))[: MAX_SITE_FRAMES - 1]
    slides = _slides(free_directions(rotations), steps) if slides else np.zeros((1, 3))
    frames = []
    for w in settings(structure, rotations, symprec):
        for site_origin in [np.zeros(3)] + [w @ structure.frac_coords[i] for i in sites]:
            frames += [_moved(structure, w, site_origin + (w @ t)) for t in slides]
    return frames


def atom_at_origin(structure: Structure, index: int) -> Structure:
    """The crystal moved (same cell, same axes) so that its atom ``index`` sits at the origin."""
    return _moved(structure, np.eye(3, dtype=int), structure.frac_coords[index])


def site_origin(structure: Structure, k: int = 4) -> Structure:
    """The crystal moved so that one atom sits at the origin: the atom with the smallest mean
    distance to its ``k`` nearest neighbours (its most compact site; ties to the first). Where the
    data fix no origin (a third of carbon_24 is P1), a VAE trained on the files' own origins learns
    only the mean map; with an atom always at a corner the density has an anchor, and encoding
    searches the site frames for the one the VAE reads best (``origin_candidates(slides=False)``)."""
    return atom_at_origin(structure, int(np.argmin(compactness(structure, k))))


def compactness(structure: Structure, k: int = 4) -> np.ndarray:
    """(N,) each site's mean distance (Å) to its ``k`` nearest neighbours (periodic images included)."""
    if len(structure) == 1:
        return np.zeros(1)
    radius = max(structure.lattice.abc) + 1.0
    centres, _, _, dist = structure.get_neighbor_list(radius)
    scores = np.full(len(structure), np.inf)
    for i in range(len(structure)):
        near = np.sort(dist[(centres == i) & (dist > 1e-6)])[:k]
        if len(near):
            scores[i] = near.mean()
    return scores


def _argmin_groups(groups: list[list[Structure]], misfit) -> list[int]:
    errors = np.asarray(misfit([f for group in groups for f in group]), dtype=np.float64)
    picks, start = [], 0
    for group in groups:
        picks.append(int(np.argmin(errors[start : start + len(group)])))
        start += len(group)
    return picks


def _fine_slides(frame: Structure, symprec: float = 0.01) -> list[Structure]:
    """The frame itself, then slid along its free directions in FINE_SHIFTS steps."""
    eye = np.eye(3, dtype=int)
    return [frame] + [
        _moved(frame, eye, t) for t in _slides(free_directions(_symmetry(frame, symprec)[1]), FINE_SHIFTS)[1:]
    ]


def best_frames(structures: list[Structure], misfit, slides: bool = True) -> tuple[list[Structure], list[int]]:
    """For each crystal, the candidate frame with the lowest ``misfit``, in two passes: settings x
    sites x coarse slides, then fine slides around the first pass's best frame (``slides=False``,
    for sets trained with an atom at the origin: settings x sites, one pass).

    misfit: callable(list[Structure]) -> (N,) array, the model's reconstruction error of each
    frame. Returns (frames, index of the first pass's pick per crystal; 0 = the file's own frame).
    """
    coarse = [origin_candidates(s, steps=COARSE_SHIFTS, slides=slides) for s in structures]
    picks = _argmin_groups(coarse, misfit)
    if not slides:
        return [group[k] for group, k in zip(coarse, picks, strict=True)], picks
    fine = [_fine_slides(group[k]) for group, k in zip(coarse, picks, strict=True)]
    chosen = [group[k] for group, k in zip(fine, _argmin_groups(fine, misfit), strict=True)]
    moved = sum(1 for k in picks if k)
    if moved:
        log.debug("canonical frame: %d of %d crystals moved to another origin", moved, len(structures))
    return chosen, picks


def reconstruction_misfit(models, structures: list[Structure], batch: int = 128) -> np.ndarray:
    """(N,) how badly a model set's VAE reconstructs each crystal: the mean squared error of its
    density (network log scale) plus COUNT_WEIGHT x the count head's negative log-likelihood of
    the crystal's atom counts, with the unknown condition (the frame, not the property, is being
    chosen). ``models``: a core.pipeline.ModelSet.

    The count term was chosen on 150 selection crystals: density alone kept the right frame of
    0.993 of unperturbed and 0.973 of shifted + permuted + re-set copies; with weights 0.003-0.1,
    1.00 of both (0.01 ships, mid-plateau)."""
    errors = []
    for start in range(0, len(structures), batch):  # bounds the (B, C, d, d, d) activations
        chunk = structures[start : start + batch]
        voxels = models.voxelise(chunk)  # (density, labels, lattice parameters): encoded and compared once
        grids = models.decode_grids(models.posterior_of_grids(*voxels)[0], species=False)
        target = normalise_density(voxels[0])
        error = ((normalise_density(grids["density"]) - target) ** 2).reshape(len(chunk), -1).mean(axis=1)
        if "count_log_probs" in grids:
            error = error + COUNT_WEIGHT * _count_nll(grids["count_log_probs"], chunk, models.vocab)
        errors.append(error)
    return np.concatenate(errors) if errors else np.zeros(0)


def _count_nll(log_probs: np.ndarray, structures: list[Structure], vocab) -> np.ndarray:
    """(N,) -sum over classes of log p(the crystal's count of that class); log_probs (N, C, K+1)."""
    counts = np.zeros(log_probs.shape[:2], dtype=np.int64)
    for i, structure in enumerate(structures):
        for site in structure:
            counts[i, vocab.index(site.specie.symbol)] += 1
    counts = np.minimum(counts, log_probs.shape[2] - 1)
    return -np.take_along_axis(log_probs, counts[..., None], axis=2)[..., 0].sum(axis=1)
