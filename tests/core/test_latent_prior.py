"""The fitted latent prior: fit, sample, files, and how ModelSet and the CLI use it."""

from __future__ import annotations

import numpy as np
import pytest

from core.cli import main
from core.errors import CheckpointError, ICSGError
from core.latent_prior import FILENAME, LatentPrior
from core.pipeline import ModelSet
from core.structures import write_cif
from tests.tiny_models import tiny_crystals, write_tiny_model_set


def _two_clusters(n: int = 400, dim: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 0.1, (n * 3 // 4, dim)) + 5.0
    b = rng.normal(0.0, 0.1, (n // 4, dim)) - 5.0
    return np.concatenate([a, b])


def test_fit_finds_the_clusters_and_samples_near_them() -> None:
    prior = LatentPrior.fit(_two_clusters(), components=2, seed=0)
    assert sorted(np.round(prior.weights, 2).tolist()) == [0.25, 0.75]
    z = prior.sample(2000, seed=1)
    assert z.shape == (2000, 4) and z.dtype == np.float32
    near = np.minimum(np.abs(z - 5.0).max(1), np.abs(z + 5.0).max(1))
    assert np.quantile(near, 0.99) < 0.6  # every sample sits on one of the clusters
    assert abs(float((z[:, 0] > 0).mean()) - 0.75) < 0.04
    np.testing.assert_array_equal(prior.sample(5, seed=3), prior.sample(5, seed=3))
    # temperature shrinks the spread around the component means
    assert prior.sample(2000, temperature=0.1, seed=1).std(0).max() < z.std(0).max()


def test_diagonal_mixture_round_trip(tmp_path) -> None:
    prior = LatentPrior.fit(_two_clusters(), components=2, seed=0, covariance="diag")
    assert prior.chol.shape == (2, 4)
    z = LatentPrior.load(prior.save(tmp_path / FILENAME), latent_dim=4).sample(1000, seed=2)
    assert np.quantile(np.minimum(np.abs(z - 5.0).max(1), np.abs(z + 5.0).max(1)), 0.99) < 0.6
    with pytest.raises(ICSGError, match="covariance"):
        LatentPrior.fit(_two_clusters(), covariance="spherical")


def test_aggregate_posterior_samples_each_crystal_gaussian(tmp_path) -> None:
    mu = np.array([[5.0, 5.0], [-5.0, -5.0], [5.0, -5.0]])
    sigma = np.array([[0.1, 0.1], [0.2, 0.2], [0.05, 0.05]])
    prior = LatentPrior.aggregate(mu, sigma)
    again = LatentPrior.load(prior.save(tmp_path / FILENAME), latent_dim=2)
    assert again.info["kind"] == "aggregate" and again.means.shape == (3, 2)
    np.testing.assert_allclose(again.means, mu, rtol=1e-3)  # stored as float16
    z = again.sample(3000, seed=0)
    nearest = np.argmin(((z[:, None] - mu[None]) ** 2).sum(-1), axis=1)
    assert np.allclose(np.bincount(nearest) / 3000, 1 / 3, atol=0.04)  # equal weights
    for k in range(3):
        np.testing.assert_allclose(z[nearest == k].std(0), sigma[k], rtol=0.15)
    half = again.sample(3000, temperature=0.5, seed=0)
    np.testing.assert_allclose(half[np.argmin(((half[:, None] - mu[None]) ** 2).sum(-1), 1) == 1].std(0), 0.1, rtol=0.15)
    with pytest.raises(ICSGError, match="one shape"):
        LatentPrior.aggregate(mu, sigma[:2])


def test_fit_needs_enough_points() -> None:
    with pytest.raises(ICSGError, match="at least 32"):
        LatentPrior.fit(np.zeros((10, 4)), components=16)


def test_save_load_round_trip_and_bad_files(tmp_path) -> None:
    prior = LatentPrior.fit(_two_clusters(), components=2, seed=0)
    path = prior.save(tmp_path / FILENAME)
    again = LatentPrior.load(path, latent_dim=4)
    np.testing.assert_array_equal(again.chol, prior.chol)
    assert again.info["components"] == 2 and again.info["n"] == 400
    with pytest.raises(CheckpointError, match="does not match the VAE's 16"):
        LatentPrior.load(path, latent_dim=16)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="junk.safetensors: unreadable latent prior"):
        LatentPrior.load(junk)


def test_model_set_samples_its_fitted_prior(tmp_path) -> None:
    root = write_tiny_model_set(tmp_path / "models")
    ms = ModelSet.load(root, device="cpu")
    assert ms.prior is None
    with pytest.raises(ICSGError, match="no fitted prior"):
        ms.sample(2, prior="fitted")
    with pytest.raises(ICSGError, match="unknown prior"):
        ms.sample(2, prior="uniform")
    LatentPrior.fit(_two_clusters(dim=16), components=2).save(root / "vae" / FILENAME)
    ms = ModelSet.load(root, device="cpu")
    assert np.abs(ms.sample(50, seed=0)).min() > 3.0  # auto: on the clusters at +-5
    assert np.abs(ms.sample(50, seed=0, prior="normal")).mean() < 1.5


def test_fit_prior_command_then_generate(tmp_path) -> None:
    root = write_tiny_model_set(tmp_path / "models", comp_head=True)
    data = tmp_path / "cifs"
    data.mkdir()
    for i, s in enumerate(tiny_crystals() * 4):
        write_cif(s, data / f"c{i}.cif")
    assert main(["fit-prior", str(data), "--models", str(root), "--kind", "gmm", "--components", "2"]) == 0
    prior = LatentPrior.load(root / "vae" / FILENAME, latent_dim=16)
    assert prior.info["n"] == 12 and prior.info["kind"] == "gmm"
    assert main(["fit-prior", str(data), "--models", str(root)]) == 0  # default: the aggregate posterior
    prior = LatentPrior.load(root / "vae" / FILENAME, latent_dim=16)
    assert prior.info["kind"] == "aggregate" and prior.means.shape == (12, 16)
    out = tmp_path / "gen"
    assert main(["generate", "--n", "6", "--models", str(root), "--out", str(out), "--prior", "fitted"]) == 0
    assert len((out / "summary.csv").read_text().splitlines()) == 7  # header + one row per sample


def test_groups_restrict_sampling_to_one_family(tmp_path) -> None:
    mu = np.array([[5.0, 5.0], [-5.0, -5.0], [5.0, -5.0]])
    prior = LatentPrior.aggregate(mu, np.full((3, 2), 0.1), groups=["perov", "mp", "perov"])
    again = LatentPrior.load(prior.save(tmp_path / FILENAME), latent_dim=2)
    assert again.group_names == ["perov", "mp"] and again.info["group_sizes"] == [2, 1]
    z = again.sample(400, seed=0, group="perov")
    assert (z[:, 0] > 4).all()  # never the mp crystal at (-5, -5)
    assert np.abs(again.sample(400, seed=0, group="mp") + 5).max() < 1.0
    assert (again.sample(400, seed=0)[:, 0] < -4).any()  # no group: every crystal
    with pytest.raises(ICSGError, match="no group 'carbon' \\(groups: perov, mp\\)"):
        again.sample(2, group="carbon")
    with pytest.raises(ICSGError, match="2 group names for 3 crystals"):
        LatentPrior.aggregate(mu, np.ones((3, 2)), groups=["a", "b"])
    with pytest.raises(ICSGError, match="fit-prior was run without --groups"):
        LatentPrior.aggregate(mu, np.ones((3, 2))).sample(2, group="perov")


def test_fit_prior_groups_then_generate_one_family(tmp_path) -> None:
    root = write_tiny_model_set(tmp_path / "models", comp_head=True)
    sources = []
    for name, crystals in (("a", tiny_crystals()[:2]), ("b", tiny_crystals()[2:] * 2)):
        folder = tmp_path / name
        folder.mkdir()
        for i, s in enumerate(crystals):
            write_cif(s, folder / f"{name}{i}.cif")
        sources.append(str(folder))
    assert main(["fit-prior", *sources, "--models", str(root), "--groups", "fam_a", "fam_b"]) == 0
    prior = LatentPrior.load(root / "vae" / FILENAME, latent_dim=16)
    assert prior.group_names == ["fam_a", "fam_b"] and prior.info["group_sizes"] == [2, len(tiny_crystals()[2:]) * 2]
    assert main(["fit-prior", *sources, "--models", str(root), "--groups", "only_one"]) != 0  # one name per input
    out = tmp_path / "gen"
    assert main(["generate", "--n", "4", "--models", str(root), "--out", str(out), "--prior-group", "fam_b"]) == 0
    assert len((out / "summary.csv").read_text().splitlines()) == 5
    assert main(["generate", "--n", "4", "--models", str(root), "--out", str(out), "--force",
                 "--prior-group", "nope"]) != 0  # fmt: skip
