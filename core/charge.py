"""Charge-aware typing of decoded atoms: the most probable composition that can be charge-balanced.

A decoded grid types each atom by the probability mass of each element around it
(core/segment.py). One atom typed as its runner-up element turns Li2O into LiO, a formula no
oxidation states balance; the decoder's own probabilities often rank the balanced reading a
close second. ``balance_species`` keeps the decoder's typing when its composition passes a test
(``composition_ok``: CDVAE's SMACT charge-neutrality + Pauling test in the model sets that use it),
and otherwise takes the most probable retyping that passes, if it costs at most ``margin`` nats
of summed log probability. Retypings tried: one atom to another of its likely elements, two
such atoms together, and every atom of one element to another element. Beyond the margin the
decoder's typing stands: the caller then reports what it decoded, not a guess.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np

SITE_CHOICES = 3  # per atom, its most probable elements considered as a retyping
PAIR_POOL = 12  # the cheapest single retypings combined in pairs
ELEMENT_POOL = 8  # elements of most total share considered to replace a whole element


def shares(mass: np.ndarray) -> np.ndarray:
    """(N, C) each atom's share of its probability mass per class: background (class 0), negative
    and non-finite masses count as 0 (callers exclude the background with -inf or 0)."""
    mass = np.where(np.isfinite(mass), np.maximum(mass, 0.0), 0.0).astype(np.float64)
    mass[:, 0] = 0.0
    return mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-12)


def log_shares(share: np.ndarray) -> np.ndarray:
    """log of ``shares``, floored at 1e-12 (a class with no mass is very unlikely, not impossible)."""
    return np.log(np.maximum(share, 1e-12))


def _single_retypings(log_share: np.ndarray, species: np.ndarray) -> list[tuple[float, int, int]]:
    """(cost in nats, atom, new class) for each atom's other likely classes, cheapest first."""
    moves = []
    for i, row in enumerate(log_share):
        for cls in np.argsort(-row)[:SITE_CHOICES]:
            if cls != species[i] and cls > 0 and np.isfinite(row[cls]):
                moves.append((float(row[species[i]] - row[cls]), i, int(cls)))
    return sorted(moves)


def _candidates(share: np.ndarray, species: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
    """Every retyping considered, as (cost in nats, classes (N,)); unordered."""
    log_share = log_shares(share)
    singles = _single_retypings(log_share, species)
    for cost, i, cls in singles:
        retyped = species.copy()
        retyped[i] = cls
        yield cost, retyped
    for (cost_a, i, a), (cost_b, j, b) in itertools.combinations(singles[:PAIR_POOL], 2):
        if i != j:
            retyped = species.copy()
            retyped[i], retyped[j] = a, b
            yield cost_a + cost_b, retyped
    pool = np.argsort(-share.sum(axis=0))[:ELEMENT_POOL]
    for old in np.unique(species):
        members = species == old
        for new in pool:
            if new != old and new > 0:
                retyped = species.copy()
                retyped[members] = new
                yield float((log_share[members, old] - log_share[members, new]).sum()), retyped


def balance_species(
    mass: np.ndarray,
    species: np.ndarray,
    composition_ok: Callable[[dict[int, int]], bool],
    margin: float,
    max_elements: int | None = None,
) -> np.ndarray:
    """Classes (N,) of the atoms: ``species`` if its composition passes ``composition_ok``, else the
    cheapest retyping (summed log-share cost <= ``margin`` nats) whose composition passes and
    holds at most ``max_elements`` elements; ``species`` when none does.

    mass (N, C): each atom's probability mass per class (class 0, background, is ignored);
    composition_ok gets {class: atom count}."""
    species = np.asarray(species, dtype=int)
    if len(species) == 0 or composition_ok(dict(Counter(species.tolist()))):
        return species
    ranked = sorted((c for c in _candidates(shares(np.asarray(mass)), species) if c[0] <= margin), key=lambda c: c[0])
    for _, retyped in ranked:
        counts = dict(Counter(retyped.tolist()))
        if max_elements and len(counts) > max_elements:
            continue
        if composition_ok(counts):
            return retyped
    return species
