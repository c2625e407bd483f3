"""The substitution prior of a model set (core/sampling.py sample_substitutions) on a tiny set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import ICSGError
from core.known import KnownCrystals
from core.pipeline import ModelSet
from tests.tiny_models import tiny_crystals, write_tiny_model_set


def _set_with_templates(tmp_path, substitution):
    root = write_tiny_model_set(tmp_path, lattice_params=6)
    cscl, _, srtio3 = tiny_crystals()
    # CsCl is the set's own crystal (a template); SrTiO3 came from another data set (not one)
    KnownCrystals(["own-1", "other-1"], [cscl, srtio3]).save(root / "known.json.gz")
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["sampling"] = {"substitution": substitution} if substitution else {}
    meta_path.write_text(json.dumps(meta))
    return ModelSet.load(root, device="cpu")


def test_substitutions_swap_ions_of_the_own_templates_only(tmp_path):
    models = _set_with_templates(tmp_path, {"templates": ["own-"], "default": True})
    z, proposed = models.sample_substitutions(3, seed=0)
    assert z.shape == (3, models.latent_dim) and np.isfinite(z).all()
    # in the tiny vocabulary (Cs, Na, Sr, Ti, Cl, O) the neutral swaps of CsCl are NaCl and SrO
    # (Cs+ -> Sr2+ with Cl- -> O2-); both are new, so both come once before any repeats, each on
    # CsCl's cell (2 atoms); never one of SrTiO3, which is not a template
    formulas = [p.composition.reduced_formula for p in proposed]
    assert set(formulas[:2]) == {"NaCl", "SrO"} and formulas[2] in {"NaCl", "SrO"}
    assert all(len(p) == 2 for p in proposed)
    nacl = proposed[formulas.index("NaCl")]
    assert nacl.volume < tiny_crystals()[0].volume  # Na+ is smaller than Cs+
    again, _ = models.sample_substitutions(3, seed=0)
    assert np.allclose(z, again)  # seeded
    # each says which training crystal it was made of and how
    assert nacl.properties["proposal"] == "substitution of own-1 (CsCl): Cs->Na"
    srO = proposed[formulas.index("SrO")]
    assert srO.properties["proposal"] == "substitution of own-1 (CsCl): Cl->O, Cs->Sr"
    assert models.sample(3, seed=0).shape == (3, models.latent_dim)  # 'auto' is substitution here


def test_auto_means_substitution_only_when_the_set_says_so(tmp_path, monkeypatch):
    models = _set_with_templates(tmp_path, {"templates": ["own-"]})
    called = []

    def stub(self, n, seed=0):
        called.append(n)
        return np.ones((n, self.latent_dim), np.float32), []

    monkeypatch.setattr(type(models), "sample_substitutions", stub)
    assert not np.allclose(models.sample(2), 1.0)  # auto: N(0, I) here (the tiny set has no fitted prior)
    assert called == []
    models.substitution["default"] = True
    assert np.allclose(models.sample(2), 1.0) and called == [2]


def test_a_set_without_templates_says_so(tmp_path):
    models = _set_with_templates(tmp_path, None)
    with pytest.raises(ICSGError, match="no substitution prior"):
        models.sample(2, prior="substitution")
    assert models.sample(2).shape == (2, models.latent_dim)  # 'auto' falls back to N(0, I)
    bad = _set_with_templates(tmp_path / "b", {"templates": ["nothing-"]})
    with pytest.raises(ICSGError, match="no training crystal has an id starting with nothing-"):
        bad.sample(2, prior="substitution")


def test_the_shipped_mp_20_set_offers_new_substitutions_of_its_own_crystals():
    """What `icsg3d generate --models mp_20 --prior substitution` starts from: crystals of formulas no
    training crystal has, made from its mp_20 training crystals (not carbon or perovskites), inside
    its domain; the fitted prior stays the default."""
    from core.model_sets import resolve_models
    from core.sampling import auto_prior

    models = ModelSet.load(resolve_models("mp_20"), device="cpu")
    assert auto_prior(models, None) == "fitted"
    z, proposed = models.sample_substitutions(4, seed=1)
    assert z.shape == (4, models.latent_dim) and np.isfinite(z).all()
    known = models.known.formulas()
    for crystal in proposed:
        assert crystal.composition.reduced_formula not in known
        assert models.domain_problem(crystal) is None
        assert {e.symbol for e in crystal.composition.elements} != {"C"}


def test_generate_names_each_samples_parent_in_the_summary(tmp_path):
    """What a user reads back from `icsg3d generate --prior substitution`: each row's formula_in is
    the proposed crystal and its notes name the training crystal it was made of; where the model
    made another formula of it, the notes say so."""
    import csv

    from core.cli import main

    models = _set_with_templates(tmp_path, {"templates": ["own-"]})
    out = tmp_path / "gen"
    args = ["generate", "--n", "3", "--models", str(models.source), "--out", str(out), "--prior", "substitution"]
    assert main(args) == 0
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    for row in rows:
        assert row["formula_in"] in {"NaCl", "SrO"}
        assert row["error"].startswith("substitution of own-1 (CsCl): ")
        made_another = bool(row["formula_out"]) and row["formula_out"] != row["formula_in"]
        assert ("the model made" in row["error"]) == made_another
    # the fitted/normal priors propose nothing: no proposal notes
    out2 = tmp_path / "gen2"
    assert main(["generate", "--n", "2", "--models", str(models.source), "--out", str(out2), "--prior", "normal"]) == 0
    with open(out2 / "summary.csv", newline="") as handle:
        assert all(r["formula_in"] == "" and "substitution" not in r["error"] for r in csv.DictReader(handle))
