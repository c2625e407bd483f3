"""Same crystal, other file: perturbed copies (core/perturb.py) and the frame search (core/canonical.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from core.canonical import best_frames, free_directions, origin_candidates, settings
from core.elements import Vocabulary
from core.perturb import PERTURBATIONS, perturbed
from core.structures import to_conventional
from core.voxel import VoxelConfig, Voxeliser, normalise_density


def srtio3() -> Structure:
    return Structure(
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def polar_batio3() -> Structure:
    """P4mm: Ti and the apical O displaced along c in a cubic-metric cell (origin free along c)."""
    return Structure(
        Lattice.cubic(4.0),
        ["Ba", "Ti", "O", "O", "O"],
        [[0, 0, 0.1], [0.5, 0.5, 0.56], [0.5, 0.5, 0.08], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_a_perturbed_copy_is_the_same_crystal_in_another_file(kind: str) -> None:
    rng = np.random.default_rng(3)
    original = polar_batio3()
    copy = perturbed(original, kind, rng)
    assert StructureMatcher().fit(original, copy)
    assert np.linalg.det(copy.lattice.matrix) > 0  # still a right-handed cell
    assert not np.allclose(copy.frac_coords, original.frac_coords)  # the file really changed


def test_free_directions_are_the_polar_axes() -> None:
    def rotations(s: Structure) -> list[np.ndarray]:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        return [op.rotation_matrix for op in SpacegroupAnalyzer(s).get_symmetry_operations(cartesian=False)]

    assert free_directions(rotations(srtio3())).shape == (0, 3)  # Pm-3m: the origin is fixed
    np.testing.assert_allclose(np.abs(free_directions(rotations(polar_batio3()))), [[0, 0, 1]], atol=1e-9)


def test_settings_are_the_lattice_rotations_the_crystal_lacks() -> None:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    def own(s: Structure) -> list[np.ndarray]:
        ops = SpacegroupAnalyzer(s).get_symmetry_operations(cartesian=False)
        return [np.rint(op.rotation_matrix).astype(int) for op in ops]

    assert len(settings(srtio3(), own(srtio3()))) == 1  # cubic crystal, cubic cell: one setting
    # 4mm keeps 4 of the cube's 24 proper rotations: the polar axis along +-a, +-b, +-c
    assert len(settings(polar_batio3(), own(polar_batio3()))) == 6


def _density_misfit(reference: Structure):
    """A stand-in for the VAE's misfit with a known answer: distance to one frame's density grid."""
    voxeliser = Voxeliser(VoxelConfig(d=16), Vocabulary.from_structures([reference]))
    target = normalise_density(voxeliser.batch([reference])[0][0])

    def misfit(frames: list[Structure]) -> np.ndarray:
        grids = normalise_density(voxeliser.batch(frames)[0])
        return ((grids - target) ** 2).reshape(len(frames), -1).mean(axis=1)

    return misfit


@pytest.mark.parametrize("kind", ["shift", "permute", "all"])
def test_the_frame_search_finds_the_frame_a_model_prefers_from_any_copy(kind: str) -> None:
    reference = polar_batio3()
    reference = Structure(reference.lattice, reference.species, (reference.frac_coords - [0, 0, 0.1]) % 1)
    misfit = _density_misfit(reference)
    rng = np.random.default_rng(0)
    for _ in range(3):
        copy = to_conventional(perturbed(reference, kind, rng))
        (frame,), _ = best_frames([copy], misfit)
        # within a 1/16 slide of the preferred frame: its density is far closer than any other frame's
        assert misfit([frame])[0] < 0.1 * np.median(misfit(origin_candidates(copy)))
        assert StructureMatcher().fit(frame, reference)


def test_a_cubic_crystal_has_its_preferred_frame_among_the_candidates_exactly() -> None:
    reference = srtio3()
    copy = to_conventional(perturbed(reference, "shift", np.random.default_rng(1)))
    (frame,), _ = best_frames([copy], _density_misfit(reference))
    species = [s.symbol for s in frame.species]
    np.testing.assert_allclose(frame.frac_coords[species.index("Sr")], [0, 0, 0], atol=1e-6)


def test_the_count_term_is_the_count_heads_surprise_at_the_composition() -> None:
    from core.canonical import _count_nll

    vocab = Vocabulary.from_structures([srtio3()])
    log_probs = np.full((1, len(vocab), 4), np.log(0.1))
    for symbol, count in (("Sr", 1), ("Ti", 1), ("O", 3)):
        log_probs[0, vocab.index(symbol), count] = np.log(0.7)
    right = _count_nll(log_probs, [srtio3()], vocab)[0]
    wrong = _count_nll(
        log_probs, [Structure(Lattice.cubic(3.9), ["Sr", "Sr"], [[0, 0, 0], [0.5, 0.5, 0.5]])], vocab
    )
    n_classes = len(vocab)
    assert right == pytest.approx(-3 * np.log(0.7) - (n_classes - 3) * np.log(0.1))
    assert wrong[0] > right


def test_site_origin_puts_the_most_compact_atom_at_the_origin_whatever_the_files_origin() -> None:
    from core.canonical import compactness, site_origin

    # three atoms in a monoclinic cell, given with an arbitrary origin
    lattice = Lattice.monoclinic(3.1, 3.4, 4.0, 103.0)
    crystal = Structure(lattice, ["C", "C", "C"], [[0.13, 0.21, 0.37], [0.61, 0.74, 0.52], [0.4, 0.2, 0.9]])
    moved = site_origin(crystal)
    assert any(np.allclose(f % 1.0, 0.0, atol=1e-9) or np.allclose(f % 1.0, 1.0, atol=1e-9)
               for f in moved.frac_coords)  # fmt: skip
    assert np.argmin(compactness(crystal)) == np.argmin(compactness(moved))
    shifted = Structure(lattice, crystal.species, (crystal.frac_coords + [0.3, 0.45, 0.05]) % 1.0)
    again = site_origin(shifted)
    np.testing.assert_allclose(np.sort(again.frac_coords % 1.0, axis=0), np.sort(moved.frac_coords % 1.0, axis=0),
                               atol=1e-8)  # fmt: skip


def test_without_slides_the_search_picks_among_site_frames_in_one_pass() -> None:
    from core.canonical import site_origin

    lattice = Lattice.monoclinic(3.1, 3.4, 4.0, 103.0)
    crystal = Structure(lattice, ["C", "C", "C"], [[0.13, 0.21, 0.37], [0.61, 0.74, 0.52], [0.4, 0.2, 0.9]])
    calls = []

    def misfit(frames):  # prefers the frame training would have used: site_origin's
        calls.append(len(frames))
        target = site_origin(crystal)
        return [0.0 if np.allclose(f.frac_coords % 1.0, target.frac_coords % 1.0, atol=1e-8) else 1.0
                for f in frames]  # fmt: skip

    frames, picks = best_frames([crystal], misfit, slides=False)
    assert len(calls) == 1 and calls[0] == len(origin_candidates(crystal, slides=False))  # one pass
    assert picks[0] > 0 and np.allclose(frames[0].frac_coords % 1.0, site_origin(crystal).frac_coords % 1.0)
