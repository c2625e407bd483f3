"""Grids back to crystals: density (+ species labels or probabilities) -> sites -> Structure.

The original ICSG3D ran a watershed on a flat binary mask and took unweighted centroids. Here the
density itself is the landscape: every site is a periodic local maximum of the density (so blobs
that touch are split where the density dips between them: the watershed's job, done by the
peaks), refined to sub-voxel precision by fitting a parabola to log(density) along each axis
(exact for an isolated Gaussian), and its species is the probability mass (or the label vote) of
the classes around the peak.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure
from scipy import ndimage

from core.charge import balance_species, log_shares, shares
from core.elements import Vocabulary
from core.errors import SegmentationError

MIN_PEAK_SEPARATION = 0.9  # Å: decoded maxima closer than this to a higher one are ripples
MIN_FILL_SEPARATION = 1.2  # Å: an atom placed without a maximum keeps this far from the others
MIN_DENSITY = 0.05  # e/Å^3: maxima below this are numerical tails, not atoms


@dataclass
class Site:
    """A recovered atom: fractional position (3,), element symbol, peak density (e/Å^3)."""

    frac: np.ndarray
    species: str
    weight: float


_OFFSETS = [o for o in itertools.product((-1, 0, 1), repeat=3) if any(o)]


def _periodic_maxima(density: np.ndarray, min_density: float) -> np.ndarray:
    """Indices (K,3) of grid points that are maxima of their periodic 3x3x3 neighbourhood.

    On a plateau of equal maxima only the point with no tied neighbour of lower flat index
    survives, so a flat-topped blob gives one peak (vectorised over the candidate points and
    their 26 neighbours: no full-grid copies, which cost ~2.5 ms per 16^3 grid).
    """
    peaks = (density >= ndimage.maximum_filter(density, size=3, mode="wrap")) & (density > min_density)
    cand = np.argwhere(peaks)  # (K, 3), in flat-index order
    if len(cand) < 2:
        return cand
    shape = np.array(density.shape)
    nbr = (cand[:, None, :] + np.asarray(_OFFSETS)[None]) % shape  # (K, 26, 3)
    nbr_flat = np.ravel_multi_index(tuple(np.moveaxis(nbr, -1, 0)), density.shape)  # (K, 26)
    own_flat = np.ravel_multi_index(tuple(cand.T), density.shape)  # (K,)
    tied = peaks.ravel()[nbr_flat] & (density.ravel()[nbr_flat] == density[tuple(cand.T)][:, None])
    return cand[~(tied & (nbr_flat < own_flat[:, None])).any(axis=1)]


def _subvoxel_offset(density: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Offset (3,) in voxels of the true peak from grid point idx: parabola through log(rho)."""
    d = np.array(density.shape)
    offset = np.zeros(3)
    centre = np.log(max(float(density[tuple(idx)]), 1e-30))
    for axis in range(3):
        step = np.zeros(3, dtype=int)
        step[axis] = 1
        lower = np.log(max(float(density[tuple((idx - step) % d)]), 1e-30))
        upper = np.log(max(float(density[tuple((idx + step) % d)]), 1e-30))
        curvature = lower - 2.0 * centre + upper
        if curvature < 0:
            offset[axis] = np.clip(0.5 * (lower - upper) / curvature, -0.5, 0.5)
    return offset


def _periodic_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (6-connectivity) of a boolean grid on a 3-torus."""
    comp, n = ndimage.label(mask)
    if n == 0:
        return comp, 0
    parent = np.arange(n + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for axis in range(3):  # glue components that touch across each pair of opposite faces
        first, last = np.take(comp, 0, axis=axis), np.take(comp, -1, axis=axis)
        for u, v in zip(first[(first > 0) & (last > 0)], last[(first > 0) & (last > 0)], strict=True):
            ru, rv = root(int(u)), root(int(v))
            if ru != rv:
                parent[max(ru, rv)] = min(ru, rv)
    roots = np.array([root(i) for i in range(n + 1)])
    _, relabel = np.unique(roots, return_inverse=True)
    return relabel[comp], int(relabel.max())


def _periodic_centroid(index: np.ndarray, weights: np.ndarray, d: int) -> np.ndarray:
    """Weighted mean position (voxels) of grid points on a torus (circular mean per axis)."""
    angle = 2.0 * np.pi * index / d
    c = (weights[:, None] * np.cos(angle)).sum(0)
    s = (weights[:, None] * np.sin(angle)).sum(0)
    return (np.arctan2(s, c) / (2.0 * np.pi) * d) % d


def _component_sites(density, index: np.ndarray, peaks_in_comp: np.ndarray, d: int) -> list[np.ndarray]:
    """Voxel positions of the atoms in one species component (grid indices ``index`` (K,3)).

    True density maxima inside the component are atoms (several of them split a merged blob).
    With none (a light atom seen as a shoulder of a heavy neighbour) the component's own
    centroid is the atom: the label region is a sphere around the site.
    """
    if len(peaks_in_comp):
        return [p + _subvoxel_offset(density, p) for p in peaks_in_comp]
    return [_periodic_centroid(index, np.ones(len(index)), d)]


def _split_components(components: np.ndarray, n: int) -> list[np.ndarray]:
    """Flat grid indices of each component 1..n (one sort instead of n full-grid masks)."""
    flat = components.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(1, n + 2))
    return [order[bounds[k] : bounds[k + 1]] for k in range(n)]


def _neighbourhood_mass(class_probs: np.ndarray, idx: np.ndarray, reach: int = 1) -> np.ndarray:
    """Probability mass (C,) of each class in the periodic (2 reach + 1)^3 block around idx."""
    d = class_probs.shape[-1]
    ranges = [np.arange(i - reach, i + reach + 1) % d for i in idx]
    block = class_probs[:, ranges[0][:, None, None], ranges[1][None, :, None], ranges[2][None, None, :]]
    return block.reshape(class_probs.shape[0], -1).sum(axis=1)


def limit_elements(mass: np.ndarray, max_elements: int, candidates: int = 12) -> np.ndarray:
    """Each atom's class when the crystal may hold at most ``max_elements`` elements.

    mass (N, C): each atom's probability mass per class (background, class 0, excluded by the
    caller with -inf or 0). Picks the element set S (|S| <= max_elements, from the ``candidates``
    classes of most total share) maximising sum_i log max_{e in S} p_i(e), p_i the atom's shares,
    and types each atom by its best element of S. One mistyped atom changes a formula; a
    binary or ternary set's atoms then vote on its elements together. Returns classes (N,).
    """
    share = shares(mass)
    pool = np.argsort(-share.sum(axis=0))[: min(candidates, share.shape[1])]
    pool = pool[share[:, pool].sum(axis=0) > 0]
    log_share = log_shares(share)
    best, best_score = share.argmax(axis=1), -np.inf
    for k in range(1, min(max_elements, len(pool)) + 1):
        for subset in itertools.combinations(pool, k):
            cols = np.array(subset)
            score = float(log_share[:, cols].max(axis=1).sum())
            if score > best_score:
                best_score, best = score, cols[log_share[:, cols].argmax(axis=1)]
    return best


def _sites_from_probabilities(
    density, class_probs, vocab, min_density, rel_density, max_sites, counts=None, voxel_size=None,
    max_elements=None, charge=None,
) -> list[Site]:
    """Decoded grids: every clear density maximum is an atom; its element is the class with the
    most probability mass around it (background excluded). Argmax components are not used here:
    a decoder's species map is only trustworthy where there is density.

    With ``counts`` (C,) (a composition predicted for the whole cell) the atoms are sum(counts)
    slots: maxima and elements are chosen jointly (Hungarian on -log mass - log relative height,
    so a spurious ripple does not take an atom's place), and slots left without a maximum (two
    atoms merged into one blob) go to the best remaining maxima of their element's probability.
    Without counts, ``charge`` (composition_ok, margin) retypes atoms to a composition that passes
    the test when one costs at most margin nats (core/charge.py).
    """
    d = density.shape[0]
    threshold = max(min_density, rel_density * float(density.max()))
    peaks = _periodic_maxima(density, threshold)
    if max_sites is not None and len(peaks) > max_sites:
        raise SegmentationError(f"more than {max_sites} atoms found: the grid is noise, not a crystal")
    if voxel_size is not None:
        peaks = _suppress_close(peaks, density, np.asarray(voxel_size, dtype=float))
    slots = _count_slots(counts, len(vocab))
    if len(peaks) == 0 and not slots.size:
        return []
    mass = (
        np.stack([_neighbourhood_mass(class_probs, idx) for idx in peaks]) if len(peaks) else np.zeros((0, 1))
    )
    positions: list[np.ndarray] = [idx + _subvoxel_offset(density, idx) for idx in peaks]
    if slots.size:
        height = np.array([density[tuple(p)] for p in peaks]) / float(density.max() or 1.0)
        chosen, species, missing = _assign_slots(mass, height, slots)
        positions = [positions[i] for i in chosen]
        for cls in missing:
            pos = _fill_position(density, class_probs[cls], positions, voxel_size)
            if pos is not None:
                positions.append(pos)
                species = np.append(species, cls)
    elif max_elements and len(mass):
        mass[:, 0] = 0.0
        species = limit_elements(mass, max_elements)
    else:
        mass[:, 0] = -np.inf
        species = mass.argmax(axis=1)
    if charge is not None and not slots.size and len(mass):
        species = balance_species(mass, species, charge[0], charge[1], max_elements)
    sites = []
    for pos, cls in zip(positions, species, strict=True):
        if 0 < cls < len(vocab):
            idx = tuple(np.round(pos).astype(int) % d)
            sites.append(
                Site(frac=(pos / d) % 1.0, species=vocab.symbol(int(cls)), weight=float(density[idx]))
            )
    return sites


def _periodic_distances(a: np.ndarray, b: np.ndarray, d: int, voxel_size: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) distances in Å between grid positions on a periodic d^3 grid.
    ``voxel_size``: (3,) Å per step along 90° axes, or (3, 3) rows = the grid's step vectors in Å
    (lattice / d) of any cell."""
    delta = (a[:, None, :] - b[None, :, :] + d / 2) % d - d / 2
    step = np.asarray(voxel_size, dtype=float)
    cart = delta @ step if step.ndim == 2 else delta * step
    return np.sqrt((cart**2).sum(axis=-1))


def _suppress_close(peaks: np.ndarray, density: np.ndarray, voxel_size: np.ndarray) -> np.ndarray:
    """Drop maxima closer than MIN_PEAK_SEPARATION Å to a higher one: a decoded blob with a
    ripple on its flank is one atom, not two (no bond in the training data is that short)."""
    if len(peaks) < 2:
        return peaks
    order = np.argsort(-density[tuple(peaks.T)], kind="stable")
    peaks = peaks[order]
    dist = _periodic_distances(peaks.astype(float), peaks.astype(float), density.shape[0], voxel_size)
    keep: list[int] = []
    for i in range(len(peaks)):
        if all(dist[i, j] >= MIN_PEAK_SEPARATION for j in keep):
            keep.append(i)
    return peaks[keep]


def _count_slots(counts, n_classes: int) -> np.ndarray:
    """Class index repeated by its count (background and out-of-vocabulary classes dropped)."""
    if counts is None:
        return np.zeros(0, dtype=int)
    counts = np.asarray(counts, dtype=int)[:n_classes].clip(min=0)
    counts[0] = 0
    return np.repeat(np.arange(len(counts)), counts)


def _assign_slots(mass: np.ndarray, height: np.ndarray, slots: np.ndarray):
    """Jointly pick a maximum for each element slot: mass (P, C) at P maxima, height (P,) relative
    to the highest -> (chosen maxima (M,), their classes (M,), classes of the M..S unmatched slots)."""
    from scipy.optimize import linear_sum_assignment

    if len(mass) == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int), slots
    cost = -np.log(np.clip(mass[:, slots], 1e-12, None)) - np.log(np.clip(height, 1e-12, None))[:, None]
    rows, cols = linear_sum_assignment(cost)  # min(P, S) pairs
    left = np.setdiff1d(np.arange(len(slots)), cols)
    return rows, slots[cols], slots[left]


def _fill_position(density: np.ndarray, probs: np.ndarray, taken: list[np.ndarray], voxel_size=None):
    """Grid position (3,) for an atom of one element that has no density maximum of its own: the
    highest maximum of probability x density at least MIN_FILL_SEPARATION Å (``voxel_size`` (3,)
    Å per voxel; 1.5 voxels when unknown) from every placed atom: a slot must not land on the
    flank of an atom already placed (seen on decoded perovskites: two O on one face centre)."""
    d = density.shape[0]
    score = probs * density
    cand = _periodic_maxima(score, 0.0)
    if len(cand) == 0:
        return None
    cand = cand[np.argsort(-score[tuple(cand.T)], kind="stable")]
    placed = np.asarray(taken, dtype=float).reshape(-1, 3)
    if voxel_size is None:
        scale, min_sep = np.ones(3), 1.5
    else:  # (3,) or (3, 3): see _periodic_distances
        scale, min_sep = np.asarray(voxel_size, dtype=float), MIN_FILL_SEPARATION
    for idx in cand:
        if (
            len(placed) == 0
            or _periodic_distances(idx[None].astype(float), placed, d, scale).min() >= min_sep
        ):
            return idx + _subvoxel_offset(score, idx)
    return None


def find_sites(
    density: np.ndarray,
    vocab: Vocabulary,
    labels: np.ndarray | None = None,
    class_probs: np.ndarray | None = None,
    min_density: float = MIN_DENSITY,
    min_voxels: int = 1,
    max_sites: int | None = 200,
    rel_density: float = 0.05,
    counts: np.ndarray | None = None,
    voxel_size: np.ndarray | None = None,
    max_elements: int | None = None,
    charge: tuple[Callable[[dict[int, int]], bool], float] | None = None,
) -> list[Site]:
    """Sites from a density grid (D,D,D) and species labels (D,D,D) or probabilities (C,D,D,D).

    With labels (true grids): species regions are split into periodic connected components;
    each holds one atom per density maximum inside it (at least one, at its centroid when the
    atom is only a shoulder of a heavier neighbour); components smaller than ``min_voxels`` are
    dropped. With probabilities (decoded grids): atoms are the density maxima above
    ``max(min_density, rel_density * max)``, typed by the probability mass around them, or, with
    ``counts`` (C,) atoms per class, sum(counts) atoms chosen and typed jointly to that composition
    (``voxel_size``, (3,) Å per voxel or the (3, 3) step vectors of a skewed cell, keeps atoms
    placed without a maximum apart from the others). Without counts, ``max_elements`` caps the
    elements of the crystal (``limit_elements``) and ``charge`` (a composition test on {class:
    count} and a margin in nats) retypes atoms towards a composition that passes it (core/charge.py).
    Raises SegmentationError when neither species source is given or the shapes disagree.
    """
    density = np.asarray(density, dtype=np.float64)
    if density.ndim != 3 or len(set(density.shape)) != 1:
        raise SegmentationError(f"density must be a cubic (D,D,D) grid, got shape {density.shape}")
    if labels is None and class_probs is None:
        raise SegmentationError("need species labels or class probabilities to assign elements")
    species_grid = labels if labels is not None else class_probs
    if species_grid.shape[-3:] != density.shape:
        raise SegmentationError(f"species grid {species_grid.shape} does not match density {density.shape}")
    if labels is None:
        return _sites_from_probabilities(
            density, np.asarray(class_probs), vocab, min_density, rel_density, max_sites, counts, voxel_size,
            max_elements, charge,
        )
    d = density.shape[0]
    peaks = _periodic_maxima(density, min_density)
    peak_flat = np.ravel_multi_index(tuple(peaks.T), density.shape) if len(peaks) else np.zeros(0, int)
    sites = []
    for cls in np.unique(labels):
        if cls == 0 or cls >= len(vocab):
            continue
        components, n = _periodic_components(labels == cls)
        for members in _split_components(components, n):
            if len(members) < min_voxels:
                continue
            index = np.stack(np.unravel_index(members, density.shape), axis=1)
            inside = peaks[np.isin(peak_flat, members)] if len(peaks) else peaks
            for pos in _component_sites(density, index, inside, d):
                idx = tuple(np.round(pos).astype(int) % d)
                sites.append(
                    Site(frac=(pos / d) % 1.0, species=vocab.symbol(int(cls)), weight=float(density[idx]))
                )
            if max_sites is not None and len(sites) > max_sites:
                raise SegmentationError(
                    f"more than {max_sites} atoms found: the grid is noise, not a crystal"
                )
    return sites


def sites_to_structure(
    sites: Sequence[Site], abc: Sequence[float], angles: Sequence[float] = (90.0, 90.0, 90.0)
) -> Structure:
    """A pymatgen Structure from recovered sites and lattice lengths/angles."""
    if not sites:
        raise SegmentationError("no atoms found in the density")
    abc = [float(x) for x in abc]
    if not all(np.isfinite(abc)) or min(abc) <= 0.5:
        raise SegmentationError(f"implausible lattice lengths {np.round(abc, 3).tolist()} Å")
    lattice = Lattice.from_parameters(*abc, *[float(x) for x in angles])
    return Structure(lattice, [s.species for s in sites], np.array([s.frac for s in sites]))


def grid_to_structure(
    density: np.ndarray,
    abc: Sequence[float],
    vocab: Vocabulary,
    labels: np.ndarray | None = None,
    class_probs: np.ndarray | None = None,
    min_density: float = MIN_DENSITY,
    angles: Sequence[float] = (90.0, 90.0, 90.0),
) -> Structure:
    """``find_sites`` then ``sites_to_structure`` on the cell (abc, angles); raises SegmentationError."""
    sites = find_sites(density, vocab, labels=labels, class_probs=class_probs, min_density=min_density)
    return sites_to_structure(sites, abc, angles)


def site_mass(class_probs: np.ndarray, frac: np.ndarray, reach: int = 1) -> np.ndarray:
    """Probability mass (N, C) of each class in the periodic (2 reach + 1)^3 block around the grid
    point nearest each fractional position ``frac`` (N, 3); class_probs (C, D, D, D)."""
    d = class_probs.shape[-1]
    frac = np.atleast_2d(np.asarray(frac, dtype=np.float64))
    if not len(frac):
        return np.zeros((0, class_probs.shape[0]))
    idx = np.round(frac * d).astype(int) % d
    return np.stack([_neighbourhood_mass(class_probs, i, reach) for i in idx])


def site_classes(class_probs: np.ndarray, frac: np.ndarray, reach: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Element class and confidence of atoms at fractional positions ``frac`` (N, 3).

    class_probs: (C, D, D, D) species probabilities (class 0 = background). Each atom takes the
    class with the most probability mass around it (``site_mass``), background excluded; its
    confidence is that class's share of the block's atom mass (1.0: every voxel around the atom
    agrees). Returns classes (N,) int, confidence (N,).
    """
    mass = site_mass(class_probs, frac, reach)[:, 1:]
    if not len(mass):
        return np.zeros(0, dtype=int), np.zeros(0)
    classes = mass.argmax(axis=1)
    total = mass.sum(axis=1)
    confidence = np.where(total > 0, mass[np.arange(len(mass)), classes] / np.maximum(total, 1e-12), 0.0)
    return classes + 1, confidence
