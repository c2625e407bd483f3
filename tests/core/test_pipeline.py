"""ModelSet mechanics on a tiny random model set (quality is measured by `icsg3d evaluate`)."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import CheckpointError, ICSGError
from core.pipeline import ModelSet
from tests.tiny_models import D, tiny_crystals, write_tiny_model_set


@pytest.fixture(scope="module")
def model_set(tmp_path_factory) -> ModelSet:
    root = write_tiny_model_set(tmp_path_factory.mktemp("models"))
    return ModelSet.load(root, device="cpu")


def test_load_reports_missing_vae(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no trained VAE"):
        ModelSet.load(tmp_path)


def test_encode_decode_shapes(model_set: ModelSet) -> None:
    z = model_set.encode(tiny_crystals())
    assert z.shape == (3, model_set.latent_dim)
    density, abc = model_set.decode_density(z)
    assert density.shape == (3, D, D, D) and (density >= 0).all()
    assert abc.shape == (3, 3)


def test_encode_is_deterministic(model_set: ModelSet) -> None:
    crystals = tiny_crystals()
    np.testing.assert_array_equal(model_set.encode(crystals), model_set.encode(crystals))


def test_decode_returns_one_result_per_vector(model_set: ModelSet) -> None:
    results = model_set.decode(model_set.sample(4, seed=1))
    assert len(results) == 4
    for r in results:
        assert r.density.shape == (D, D, D)
        assert (r.structure is None) != (r.error is None)  # exactly one of them


def test_sample_is_seeded(model_set: ModelSet) -> None:
    np.testing.assert_array_equal(model_set.sample(3, seed=5), model_set.sample(3, seed=5))
    assert not np.array_equal(model_set.sample(3, seed=5), model_set.sample(3, seed=6))
    np.testing.assert_allclose(model_set.sample(2000, temperature=0.5).std(), 0.5, rtol=0.05)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolate_endpoints(model_set: ModelSet, method: str) -> None:
    za, zb = model_set.sample(2, seed=3)
    path = model_set.interpolate(za, zb, 5, method)
    assert path.shape == (5, model_set.latent_dim)
    np.testing.assert_allclose(path[0], za, atol=1e-5)
    np.testing.assert_allclose(path[-1], zb, atol=1e-5)


def test_slerp_keeps_norm_between_equal_norm_vectors(model_set: ModelSet) -> None:
    za, zb = model_set.sample(2, seed=4)
    zb = zb / np.linalg.norm(zb) * np.linalg.norm(za)
    norms = np.linalg.norm(model_set.interpolate(za, zb, 7, "slerp"), axis=1)
    np.testing.assert_allclose(norms, np.linalg.norm(za), rtol=1e-4)


def test_bad_interpolation_arguments(model_set: ModelSet) -> None:
    za, zb = model_set.sample(2)
    with pytest.raises(ICSGError, match="at least 2 steps"):
        model_set.interpolate(za, zb, 1)
    with pytest.raises(ICSGError, match="unknown interpolation method"):
        model_set.interpolate(za, zb, 3, "cubic")


def test_bad_condition_bin(model_set: ModelSet) -> None:
    with pytest.raises(ICSGError, match="condition bins"):
        model_set.decode_density(model_set.sample(1), cond=99)


def test_latent_property_head_reads_one_value_per_point(model_set: ModelSet) -> None:
    z = model_set.sample(3, seed=2)
    prop = model_set.predicted_property(z)
    assert prop.shape == (3,) and np.isfinite(prop).all()


def test_condition_of_bins_like_training(model_set: ModelSet) -> None:
    from core.conditions import UNKNOWN_BIN, to_bin

    assert model_set.condition_of(None) == UNKNOWN_BIN == model_set.n_conditions - 1
    assert model_set.condition_of(float("nan")) == UNKNOWN_BIN
    assert model_set.condition_of(5.5) == to_bin(5.5, model_set.prop_edges)


def test_predict_gives_named_properties(model_set: ModelSet) -> None:
    preds = model_set.predict(tiny_crystals())
    assert [set(p) for p in preds] == [{"heat_ref"}] * 3
    assert all(np.isfinite(p["heat_ref"]) for p in preds)


def test_model_set_satisfies_the_protocol_the_app_uses(model_set: ModelSet) -> None:
    from core.protocols import DecodedLike, ModelSetLike

    assert isinstance(model_set, ModelSetLike)
    assert all(isinstance(d, DecodedLike) for d in model_set.decode(model_set.sample(2)))


def test_a_crystal_encodes_the_same_whatever_origin_its_file_chose(model_set: ModelSet) -> None:
    from core.perturb import shifted
    from core.structures import to_conventional

    originals = tiny_crystals()
    rng = np.random.default_rng(0)
    copies = [to_conventional(shifted(s, rng)) for s in originals]
    assert not all(np.allclose(c.frac_coords, s.frac_coords) for c, s in zip(copies, originals, strict=True))
    np.testing.assert_allclose(model_set.encode(copies), model_set.encode(originals), atol=1e-5)
    model_set.frame_search = False  # without the search the file's origin changes the answer
    try:
        assert not np.allclose(model_set.encode(copies), model_set.encode(originals), atol=1e-5)
    finally:
        model_set.frame_search = True
