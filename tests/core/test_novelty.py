"""New vs known: the training index, novelty/uniqueness/rediscovery metrics and the
composition-first prior, on tiny crystals built in code."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.composition_prior import CompositionPrior, ideal_roles
from core.errors import CheckpointError
from core.known import KnownCrystals
from core.metrics.rediscovery import novelty_metrics, unique_flags

PEROVSKITE = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a_site: str, b_site: str, x: tuple[str, str, str] = ("O", "O", "O"), a: float = 4.0) -> Structure:
    return Structure(Lattice.cubic(a), [a_site, b_site, *x], PEROVSKITE)


def rocksalt(a: float, cation: str = "Na", anion: str = "Cl") -> Structure:
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    return Structure(Lattice.cubic(a), [cation] * 4 + [anion] * 4, np.concatenate([fcc, (fcc + 0.5) % 1]))


def test_known_index_matches_copies_and_survives_a_roundtrip(tmp_path):
    train = [perovskite("Sr", "Ti"), perovskite("Ba", "Ti"), rocksalt(5.64)]
    known = KnownCrystals(["mp-1", "mp-2", "mp-3"], train)
    shifted = perovskite("Sr", "Ti", a=3.9)
    shifted.translate_sites(list(range(5)), [0.13, 0.27, 0.41])  # another origin, another volume
    assert known.match(shifted) == "mp-1"
    assert known.match(perovskite("Ti", "Sr")) is None  # the same formula, sites swapped: new
    assert known.match(perovskite("Ca", "Ti")) is None
    path = known.save(tmp_path / "known.json.gz")
    back = KnownCrystals.load(path)
    assert back.ids == known.ids and back.match(rocksalt(5.5)) == "mp-3"
    (tmp_path / "bad.json.gz").write_bytes(gzip.compress(b'{"format": "something else"}'))
    with pytest.raises(CheckpointError, match="bad.json.gz"):
        KnownCrystals.load(tmp_path / "bad.json.gz")
    (tmp_path / "cut.json.gz").write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="cut.json.gz"):
        KnownCrystals.load(tmp_path / "cut.json.gz")


def test_metrics_copy_is_not_novel_relabelled_copy_not_unique_heldout_counts_once():
    known = KnownCrystals(["train-1"], [perovskite("Sr", "Ti")])
    reference = KnownCrystals(["held-1", "held-2"], [perovskite("Ca", "Ti"), perovskite("Ba", "Zr")])
    relabelled = perovskite("Ca", "Ti")
    relabelled = Structure(relabelled.lattice, relabelled.species[::-1], relabelled.frac_coords[::-1])
    gen = [
        perovskite("Sr", "Ti", a=4.1),  # a copy of a training crystal: valid, unique, not novel
        perovskite("Ca", "Ti"),  # held out: novel, rediscovered
        relabelled,  # the same crystal, sites listed in another order: not unique
        perovskite("K", "Nb"),  # novel, not in the reference
        None,  # a failed sample
    ]
    valid = [True, True, True, True, False]
    assert unique_flags([s if v else None for s, v in zip(gen, valid, strict=True)]) == [True, True, False, True, False]
    m = novelty_metrics(gen, valid, known, reference)
    assert m["uniqueness"] == pytest.approx(3 / 4)
    assert m["novelty"] == pytest.approx(3 / 4) and m["n_novel"] == 3 and m["n_known"] == 1
    assert m["vun_rate"] == pytest.approx(2 / 5)  # Ca-Ti (first) and K-Nb, over all five samples
    assert m["rediscovered"] == 1  # held-1 found twice, counted once
    assert m["rediscovery_precision"] == pytest.approx(2 / 3)
    assert m["rediscovered_fraction"] == pytest.approx(1 / 2)
    assert novelty_metrics(gen, valid, None)["novelty"] is None


def test_ideal_roles_of_a_shifted_and_displaced_perovskite():
    s = perovskite("Sr", "Ti")
    s.translate_sites(list(range(5)), [0.5, 0.5, 0.5])  # Ti at the origin, as conventional cells may put it
    s.translate_sites([1], [0.02, 0.0, 0.03], to_unit_cell=True)  # an off-centre displacement
    frac, cns = ideal_roles(s)
    roles = dict(zip([x.symbol for x in s.species], cns, strict=False))
    assert roles["Sr"] == 12 and roles["Ti"] == 6 and cns.count(2) == 3


def _training_set() -> list[Structure]:
    a_sites, b_sites = ["Sr", "Ba", "Ca", "K"], ["Ti", "Zr", "Nb", "Sn"]
    anions = [("O", "O", "O"), ("O", "O", "N"), ("O", "O", "F")]
    out = []
    for i, a in enumerate(a_sites):
        for j, b in enumerate(b_sites):
            for k, x in enumerate(anions):
                if (i + j + k) % 3:  # two thirds of the combinations are "trained on"
                    out.append(perovskite(a, b, x, a=3.8 + 0.05 * i + 0.03 * j))
    return out


def test_composition_prior_proposes_only_new_compositions(tmp_path):
    train = _training_set()
    prior = CompositionPrior.fit(train * 3, explore=0.0)  # *3: every element seen often enough
    assert len(prior.prototypes) == 1 and prior.prototypes[0].key == "CN12x1-CN6x1-CN2x3"
    known = KnownCrystals([f"t{i}" for i in range(len(train))], train)
    samples = prior.sample(10, seed=0)
    assert len(samples) == 10
    formulas = set()
    for s in samples:
        assert known.match(s) is None  # never a training crystal
        frac, cns = ideal_roles(s)
        assert sorted(cns) == [2, 2, 2, 6, 12]
        assert s.volume > 20
        formulas.add(s.composition.formula)
    assert len(formulas) == 10  # unique within the call
    # without the filters the sampler returns training compositions too (the ablation)
    free = prior.sample(60, seed=0, exclude_known=False, unique=False)
    assert any(known.match(s) is not None for s in free)
    # stored as JSON; reads back to the same samples
    back = CompositionPrior.load(prior.save(tmp_path / "composition_prior.json"))
    assert [s.composition for s in back.sample(5, seed=3)] == [s.composition for s in prior.sample(5, seed=3)]


def test_composition_prior_explores_new_anion_sets():
    prior = CompositionPrior.fit(_training_set() * 3, explore=1.0)
    seen = {tuple(sorted(x.symbol for x in s.species if x.symbol in "ONF")) for s in _training_set()}
    drawn = {tuple(sorted(x.symbol for x in s.species if x.symbol in "ONF")) for s in prior.sample(40, seed=1)}
    assert drawn - seen  # e.g. N2F or OF2: multisets no training crystal had


def test_a_broken_composition_prior_names_the_file(tmp_path):
    path = tmp_path / "composition_prior.json"
    path.write_text('{"format": "icsg3d-composition-prior/1", "prototypes": [')
    with pytest.raises(CheckpointError, match="composition_prior.json"):
        CompositionPrior.load(path)


def test_distorted_training_crystals_are_templates_and_repeats_change_template():
    train = _training_set()
    distorted = []
    for s in train[:6]:
        d = s.copy()
        d.translate_sites([1], [0.0, 0.0, 0.2])  # B far off-centre: not on the half grid
        distorted.append(d)
    prior = CompositionPrior.fit(train * 3 + distorted * 3)
    templates = [t for ts in prior.prototypes[0].templates.values() for t in ts]
    assert any(t["distorted"] for t in templates) and any(not t["distorted"] for t in templates)
    for t in templates:  # roles found for the distorted ones too: B (CN 6) is the cation nearest the anions
        species = dict(zip(t["roles"], t["species"], strict=False))
        assert species[6] in ("Ti", "Zr", "Nb", "Sn") and species[12] in ("Sr", "Ba", "Ca", "K")
    # more samples than new compositions: the extra ones reuse a composition on another template
    n_new = 16 * 3 - len(_training_set())
    samples = prior.sample(n_new + 8, seed=2)
    frac_sets = {}
    for s in samples:
        frac_sets.setdefault(s.composition.formula, []).append(np.round(s.frac_coords, 3).tobytes())
    repeated = [f for f, fr in frac_sets.items() if len(fr) > 1]
    assert repeated and all(len(set(frac_sets[f])) == len(frac_sets[f]) for f in repeated)


def test_a_distorted_training_crystal_is_known_in_its_own_role_order_only():
    """Distorted SrTiO3 (Ti off-centre) is known as Sr on A, Ti on B; TiSrO3, the crystal with the
    two swapped (a different one, which the prior can propose: both elements take both roles), stays new."""
    from core.composition_prior import composition_key

    ideal = [perovskite(a, b) for a in ("Sr", "Ba", "Ca", "Ti") for b in ("Ti", "Zr", "Nb", "Sr")
             if a != b and {a, b} != {"Sr", "Ti"}]  # fmt: skip
    distorted = perovskite("Sr", "Ti")
    distorted.translate_sites([1], [0.0, 0.0, 0.2])  # Ti far off-centre: not on the half grid
    prior = CompositionPrior.fit(ideal * 3 + [distorted] * 3)
    proto = prior.prototypes[0]
    assert "Ti" in proto.marginals[12] and "Sr" in proto.marginals[6]  # the swap is allowed
    as_given = composition_key(proto.key, {12: ["Sr"], 6: ["Ti"], 2: ["O"] * 3})
    swapped = composition_key(proto.key, {12: ["Ti"], 6: ["Sr"], 2: ["O"] * 3})
    assert as_given in prior.known
    assert swapped not in prior.known


def test_an_index_buckets_one_formula_by_reduced_site_count_and_old_indexes_still_match(tmp_path):
    from pymatgen.core import Lattice, Structure

    from core.known import KnownCrystals, reduced_site_count

    diamond = Structure.from_spacegroup("Fd-3m", Lattice.cubic(3.567), ["C"], [[0, 0, 0]])  # 8 sites, 2 reduced
    graphite = Structure(Lattice.hexagonal(2.464, 6.711), ["C"] * 4,
                         [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])  # fmt: skip
    assert (reduced_site_count(diamond), reduced_site_count(graphite)) == (2, 4)
    index = KnownCrystals(["dia", "gra"], [diamond, graphite])
    path = index.save(tmp_path / "known.json.gz")
    loaded = KnownCrystals.load(path)
    assert loaded.site_counts == [2, 4]
    assert loaded.match(diamond.get_primitive_structure()) == "dia" and loaded.match(graphite * (1, 1, 2)) == "gra"
    old = index.to_dict()
    del old["n_reduced"]  # an index written before the counts existed: formula buckets only
    legacy = KnownCrystals.from_dict(old)
    assert legacy.site_counts is None and legacy.match(graphite) == "gra"
