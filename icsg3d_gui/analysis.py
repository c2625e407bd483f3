"""Crystal facts for the Properties dock: formula, space group, validity and novelty badges.

Pure functions of a pymatgen Structure (no Qt), cheap enough (a few ms for ~10-site cells) to
run on the GUI thread for opened files and in the worker for decoded crystals. The validity
checks are the project's CDVAE-protocol ones from ``core.metrics.validity``.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from core.geometry import min_distance

log = logging.getLogger(__name__)

#: larger (typically failed) decodes skip spglib and the matcher: seconds each, meaningless anyway
MAX_SITES_ANALYSED = 200


def space_group(structure, symprec: float = 0.1) -> tuple[str, int]:  # noqa: ANN001
    """Space-group symbol and number found with ``symprec`` (Å); ("?", 0) if spglib fails."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        return sga.get_space_group_symbol(), int(sga.get_space_group_number())
    except Exception as exc:  # noqa: BLE001 (noisy generated cells can make spglib fail)
        log.info("space group analysis failed: %s", exc)
        return "?", 0


COVALENT_OVERLAP = 0.7  # closer than 0.7 x the sum of covalent radii: atoms overlap, not a bond


def oxidation_states(structure) -> tuple[str, bool | None]:  # noqa: ANN001
    """(text, ok): the charge-neutral oxidation states found (pymatgen's bond-valence guesses), or
    "n/a" for an element or an intermetallic (neutrality is not the question there)."""
    return _oxidation_states(structure.composition.element_composition.reduced_formula)


@lru_cache(maxsize=4096)
def _oxidation_states(formula: str) -> tuple[str, bool | None]:
    """Cached by reduced formula: the guess costs ~0.1 s, and batches, filmstrips and symprec
    changes ask again for the same compositions."""
    from pymatgen.core import Composition

    comp = Composition(formula)
    if len(comp.elements) == 1 or all(el.is_metal for el in comp.elements):
        return "n/a (element or intermetallic)", None
    try:
        guesses = comp.oxi_state_guesses(max_sites=-1)
    except Exception as exc:  # noqa: BLE001 - no guess is "none found", said as such
        log.info("oxidation-state guess failed: %s", exc)
        guesses = ()
    if not guesses:
        return "no charge-neutral oxidation states", False
    states = guesses[0]
    return " ".join(f"{el}{abs(v):g}{'+' if v > 0 else '-'}" if v else f"{el}0" for el, v in states.items()), True


def closest_pair(structure) -> dict:  # noqa: ANN001
    """The closest pair of sites relative to their covalent radii: symbols, distance (Å) and
    ratio d / (r_i + r_j); a ratio below COVALENT_OVERLAP means overlapping atoms."""
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    if len(structure) < 2:
        return {"pair": "", "distance": min_distance(structure), "ratio": None}
    dist = np.array(structure.distance_matrix, dtype=float)
    np.fill_diagonal(dist, np.inf)
    radii = np.array([CovalentRadius.radius.get(site.specie.symbol, 1.5) for site in structure])
    ratio = dist / (radii[:, None] + radii[None, :])
    i, j = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
    return {"pair": f"{structure[i].specie.symbol}–{structure[j].specie.symbol}", "distance": float(dist[i, j]),
            "ratio": float(ratio[i, j])}  # fmt: skip


def analyse(structure, symprec: float = 0.1, gallery=None, known=None) -> dict:  # noqa: ANN001
    # gallery, known: core.known.KnownCrystals (the gallery crystals; the model set's training ones)
    """Everything the Properties dock shows about one crystal, as plain values.

    Keys: formula, n_sites, abc (3,), volume, density (g/cm^3), spacegroup, spacegroup_number,
    min_distance, struct_valid, comp_valid, valid, match (gallery id or None), known (id of the
    training crystal it matches, or None), novel (True: no training crystal matches; None: the
    model set ships no index of its training crystals, so nobody can tell).
    """
    from core.metrics.validity import composition_validity, structural_validity

    big = len(structure) > MAX_SITES_ANALYSED
    symbol, number = ("(too many sites)", 0) if big else space_group(structure, symprec)
    out = {
        "formula": structure.composition.reduced_formula,
        "n_sites": len(structure),
        "abc": tuple(float(x) for x in structure.lattice.abc),
        "volume": float(structure.volume),
        "density": float(structure.density),
        "spacegroup": symbol,
        "spacegroup_number": number,
        "symprec": symprec,
        "min_distance": min_distance(structure),
        "struct_valid": bool(structural_validity(structure)),
        "comp_valid": bool(composition_validity(structure)),
    }
    out["valid"] = out["struct_valid"] and out["comp_valid"]
    out["oxidation_states"], out["oxidation_ok"] = oxidation_states(structure) if not big else ("–", None)
    if not big:
        out["closest"] = closest_pair(structure)
    out["match"] = gallery.match(structure) if gallery is not None and not big else None
    out["known"] = known.match(structure) if known is not None and not big else None
    out["novel"] = out["known"] is None if known is not None and not big else None
    return out
