"""New crystals, not copies: uniqueness, novelty, V.U.N. and rediscovery of held-out crystals.

A generator that hands back its training set scores near 1 on COV-R and validity; these keys say
whether it makes new crystals, and whether the new ones are real (they match crystals held out of
training: ``reference``). All with the CDVAE matcher through an index by reduced formula and
reduced site count (``core.known.KnownCrystals``), so 10,000 samples cost minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymatgen.core import Structure

from core.known import KnownCrystals, match_key
from core.metrics.matching import _fits, cdvae_matcher


def unique_flags(structures: Sequence[Structure | None]) -> list[bool]:
    """True for the first of each group of matching structures (greedy, in order); None -> False."""
    matcher = cdvae_matcher()
    flags = [False] * len(structures)
    reps: dict[tuple[str, int], list[Structure]] = {}
    for i, s in enumerate(structures):
        if s is None:
            continue
        group = reps.setdefault(match_key(s), [])
        if not any(_fits(matcher, r, s) for r in group):
            group.append(s)
            flags[i] = True
    return flags


def novelty_metrics(
    gen: Sequence[Structure | None],
    valid: Sequence[bool],
    known: KnownCrystals | None,
    reference: KnownCrystals | None = None,
) -> dict:
    """Keys: uniqueness, novelty, vun_rate, rediscovered, rediscovered_fraction,
    rediscovery_precision, n_novel, n_known (+ known_ids: training id -> times generated).

    - uniqueness = distinct valid samples / valid samples;
    - novelty = valid samples matching no training crystal / valid samples (None without ``known``);
    - vun_rate = valid, unique and novel samples / all samples;
    - rediscovered = distinct reference crystals matched by novel valid samples;
      rediscovery_precision = novel valid samples that match a reference crystal / novel valid
      samples (a held-out crystal generated twice counts twice here, once in ``rediscovered``).
    """
    if len(gen) != len(valid):
        raise ValueError(f"{len(gen)} samples for {len(valid)} validity flags")
    kept = [s if ok else None for s, ok in zip(gen, valid, strict=True)]
    n_valid = sum(s is not None for s in kept)
    unique = unique_flags(kept)
    out: dict = {"uniqueness": sum(unique) / n_valid if n_valid else None}
    if known is None:
        return out | {"novelty": None, "vun_rate": None}
    matches = known.match_all(kept)
    novel = [s is not None and m is None for s, m in zip(kept, matches, strict=True)]
    n_novel = sum(novel)
    out |= {
        "novelty": n_novel / n_valid if n_valid else None,
        "vun_rate": sum(u and v for u, v in zip(unique, novel, strict=True)) / len(gen) if gen else None,
        "n_novel": n_novel,
        "n_known": n_valid - n_novel,
        "n_training_crystals": len(known),
    }
    if reference is not None:
        found = [reference.match(s) if is_new else None for s, is_new in zip(kept, novel, strict=True)]
        hits = [f for f in found if f is not None]
        out |= {
            "rediscovered": len(set(hits)),
            "rediscovered_fraction": len(set(hits)) / len(reference) if len(reference) else None,
            "rediscovery_precision": len(hits) / n_novel if n_novel else None,
            "n_reference": len(reference),
        }
    return out
