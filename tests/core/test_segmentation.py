"""core.segmentation: segmenters, site typing, the U-Net on any grid, and the evaluation's scores.

The evaluation is checked with probability grids whose answer is known (the true labels one-hot,
or the same labels with two elements swapped), not with a model's output: those tests fail when
a score is computed wrongly, whatever the weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.errors import ICSGError, SegmentationError
from core.pipeline import ModelSet
from core.segment import site_classes
from core.segmentation import (
    Blob,
    blobs_of,
    combine_probabilities,
    evaluate_segmentation,
    segment_grid,
    segment_with_unet,
    unet_disagreements,
)
from tests.tiny_models import D, tiny_crystals, write_tiny_model_set


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelSet:
    return ModelSet.load(write_tiny_model_set(tmp_path_factory.mktemp("set")), device="cpu")


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, D, D, D) class ids -> (B, C, D, D, D) probabilities."""
    probs = np.zeros((labels.shape[0], n_classes) + labels.shape[1:], dtype=np.float32)
    np.put_along_axis(probs, labels[:, None].astype(np.int64), 1.0, axis=1)
    return probs


def test_combine_probabilities_picks_or_averages():
    unet, head = np.full((1, 2, 2, 2, 2), 0.2), np.full((1, 2, 2, 2, 2), 0.6)
    assert combine_probabilities(unet, head, "unet") is unet
    assert combine_probabilities(unet, head, "head") is head
    assert np.allclose(combine_probabilities(unet, head, "ensemble"), 0.4)
    with pytest.raises(SegmentationError, match="species head"):
        combine_probabilities(unet, None, "head")
    with pytest.raises(SegmentationError, match="no U-Net"):
        combine_probabilities(None, head, "unet")
    with pytest.raises(ICSGError, match="unknown segmenter"):
        combine_probabilities(unet, head, "vote")


def test_site_classes_types_each_site_by_the_mass_around_it(models: ModelSet):
    srtio3 = tiny_crystals()[2]
    _, labels, _ = models.voxeliser.batch([srtio3])
    probs = one_hot(labels, len(models.vocab))[0]
    classes, confidence = site_classes(probs, srtio3.frac_coords)
    assert [models.vocab.symbol(int(c)) for c in classes] == ["Sr", "Ti", "O", "O", "O"]
    assert np.allclose(confidence, 1.0)
    # half the Sr voxels say Ti: Sr still wins but is no longer certain
    mixed = probs.copy()
    sr, ti = models.vocab.index("Sr"), models.vocab.index("Ti")
    mixed[ti] += 0.4 * mixed[sr]
    mixed[sr] *= 0.6
    classes, confidence = site_classes(mixed, srtio3.frac_coords[:1])
    assert models.vocab.symbol(int(classes[0])) == "Sr" and 0.55 < confidence[0] < 0.65


def test_segment_grid_rebuilds_the_crystal_from_true_labels(models: ModelSet):
    from core.metrics.matching import match_rate_rmse

    crystals = tiny_crystals()
    density, labels, abc = models.voxeliser.batch(crystals)
    probs = one_hot(labels, len(models.vocab))
    rebuilt = [segment_grid(density[k], abc[k], probs[k], models.vocab) for k in range(len(crystals))]
    assert match_rate_rmse(rebuilt, crystals, require_valid=False)["match_rate"] == 1.0
    blobs = blobs_of(density[2], probs[2], models.vocab)
    assert sorted(b.symbol for b in blobs) == ["O", "O", "O", "Sr", "Ti"]
    assert all(isinstance(b, Blob) and b.confidence == pytest.approx(1.0) for b in blobs)


def _oracle(models: ModelSet, monkeypatch: pytest.MonkeyPatch, swap: tuple[str, str] | None = None) -> None:
    """The U-Net answers the true labels of the grid it is given (optionally two elements swapped)."""
    densities, truth = models.voxeliser.batch(tiny_crystals())[:2]
    truth = truth.copy()
    if swap:
        a, b = (models.vocab.index(x) for x in swap)
        ia, ib = truth == a, truth == b
        truth[ia], truth[ib] = b, a

    def answer(density: np.ndarray, abc: np.ndarray) -> np.ndarray:
        nearest = [int(np.argmin([np.abs(g - t).max() for t in densities])) for g in np.asarray(density)]
        return one_hot(truth[nearest], len(models.vocab))

    monkeypatch.setattr(models, "unet_probabilities", answer)


def test_evaluation_scores_a_perfect_segmenter_one(models: ModelSet, monkeypatch: pytest.MonkeyPatch):
    _oracle(models, monkeypatch)
    scores = evaluate_segmentation(models, tiny_crystals(), source="true", segmenter="unet")
    assert scores["n"] == 3
    for key in ("voxel_accuracy", "foreground_accuracy", "site_typing_accuracy", "match_rate_ungated"):
        assert scores[key] == pytest.approx(1.0), key


def test_evaluation_sees_swapped_elements(models: ModelSet, monkeypatch: pytest.MonkeyPatch):
    _oracle(models, monkeypatch, swap=("Sr", "Ti"))
    scores = evaluate_segmentation(models, tiny_crystals(), source="true", segmenter="unet")
    assert scores["site_typing_accuracy"] == pytest.approx(2 / 3)  # SrTiO3 is typed as TiSrO3
    assert scores["foreground_accuracy"] < 1.0
    assert scores["match_rate_ungated"] == pytest.approx(2 / 3)


def test_evaluation_on_decoded_grids_runs_every_segmenter(models: ModelSet):
    for segmenter in ("unet", "ensemble"):
        scores = evaluate_segmentation(models, tiny_crystals(), source="decoded", segmenter=segmenter)
        assert scores["source"] == "decoded" and 0.0 <= scores["voxel_accuracy"] <= 1.0
    with pytest.raises(ICSGError, match="source"):
        evaluate_segmentation(models, tiny_crystals(), source="guessed")


def test_segment_with_unet_resamples_a_foreign_grid(models: ModelSet):
    lattice = np.diag([4.0, 4.0, 4.0])
    seg = segment_with_unet(models, np.random.default_rng(0).random((12, 12, 12)), lattice)
    assert seg.labels.shape == (D, D, D)
    with pytest.raises(SegmentationError, match="90° cells"):
        segment_with_unet(models, np.ones((D, D, D)), Lattice.hexagonal(3.2, 5.2).matrix)
    with pytest.raises(SegmentationError, match="too long"):
        segment_with_unet(models, np.ones((D, D, D)), np.diag([20.0, 4.0, 4.0]))


def test_disagreements_name_the_site_and_both_elements(models: ModelSet):
    cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    _, labels, _ = models.voxeliser.batch([cscl])
    probs = one_hot(labels, len(models.vocab))[0]
    assert unet_disagreements(cscl, probs, models.vocab) == []
    wrong = cscl.copy()
    wrong.replace(1, "Na")
    assert unet_disagreements(wrong, probs, models.vocab) == [(1, "Na", "Cl")]


def test_decode_carries_the_unets_reading(models: ModelSet):
    z = np.random.default_rng(1).normal(size=(2, models.latent_dim))
    for r in models.decode(z, predict=False):
        assert r.labels is not None and r.labels.shape == (D, D, D)
        assert isinstance(r.blobs, list) and isinstance(r.disagreements, list)
        if r.structure is not None:
            assert all(0 <= i < len(r.structure) for i, _, _ in r.disagreements)


def test_averaging_over_operations_maps_each_answer_back():
    from core.segmentation import TTA_OPS, averaged_over_operations

    rng = np.random.default_rng(0)
    density, abc = rng.random((2, 6, 6, 6)), np.array([[3.0, 4.0, 5.0], [4.0, 4.0, 4.0]])
    seen_abc = []

    def equivariant(grid: np.ndarray, lengths: np.ndarray) -> np.ndarray:  # a voxel-wise "network"
        seen_abc.append(lengths.copy())
        return np.stack([grid, 2.0 * grid], axis=1)

    out = averaged_over_operations(equivariant, density, abc, len(TTA_OPS))
    np.testing.assert_allclose(out, np.stack([density, 2.0 * density], axis=1))
    assert len(seen_abc) == len(TTA_OPS) and sorted(seen_abc[3][0]) == [3.0, 4.0, 5.0]
    assert any(not np.array_equal(a[0], abc[0]) for a in seen_abc)  # the axes really were permuted

    def position_dependent(grid: np.ndarray, lengths: np.ndarray) -> np.ndarray:  # not equivariant
        return np.broadcast_to(np.arange(6.0)[None, None, :, None, None], (2, 1, 6, 6, 6)).copy()

    assert not np.allclose(averaged_over_operations(position_dependent, density, abc, 4), np.arange(6.0)[:, None, None])


def test_the_unet_checks_decoded_crystals_only_where_asked(models: ModelSet, monkeypatch: pytest.MonkeyPatch):
    """Batch decodes skip the U-Net (it halves generation); labels (views) or check=True run it."""
    calls = []

    def all_cesium(density: np.ndarray, abc: np.ndarray) -> np.ndarray:  # reads every atom as Cs
        calls.append(len(density))
        probs = np.zeros((len(density), len(models.vocab)) + density.shape[1:], dtype=np.float32)
        probs[:, models.vocab.index("Cs")] = 1.0
        return probs

    monkeypatch.setattr(models, "unet_probabilities", all_cesium)
    z = np.random.default_rng(2).normal(size=(3, models.latent_dim))
    quiet = models.decode(z, predict=False, labels=False, refine=False)
    assert calls == [] and all(r.disagreements == [] for r in quiet)
    checked = models.decode(z, predict=False, labels=False, refine=False, check=True)
    assert calls == [3]
    for r in checked:
        if r.structure is not None:
            expected = [(i, s.specie.symbol, "Cs") for i, s in enumerate(r.structure) if s.specie.symbol != "Cs"]
            assert r.disagreements == expected
