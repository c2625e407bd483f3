"""core.refine: the differentiable renderer equals the voxeliser, and fitting positions to a
density recovers the crystal that made it."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from core.elements import Vocabulary
from core.refine import refine_structures, render_orthogonal, symmetrize_positions
from core.voxel import GAUSS_NORM, VoxelConfig, Voxeliser

VOCAB = Vocabulary(["O", "Ti", "Sr", "Cs", "Cl"])


def srtio3(shift=(0.13, 0.27, 0.41)) -> Structure:
    s = Structure(
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    s.translate_sites(range(len(s)), shift, frac_coords=True, to_unit_cell=True)
    return s


def cscl_tetragonal() -> Structure:
    return Structure(Lattice.tetragonal(4.1, 4.6), ["Cs", "Cl"], [[0.02, 0.03, 0.01], [0.52, 0.49, 0.55]])


def _site_shifts(a: Structure, b: Structure) -> list[float]:
    """Periodic distance (Å) between each site of a and the same-index site of b."""
    return [a.lattice.get_distance_and_image(x, y)[0] for x, y in zip(a.frac_coords, b.frac_coords, strict=True)]


def test_render_matches_the_voxeliser():
    structures = [srtio3(), cscl_tetragonal()]
    vox = Voxeliser(VoxelConfig(d=16), VOCAB)
    density, _, _ = vox.batch(structures)
    frac, z, sigma, _, abc = vox.site_arrays(structures)
    rendered = render_orthogonal(
        torch.from_numpy(frac), torch.from_numpy(z * GAUSS_NORM / sigma**3), torch.from_numpy(sigma),
        torch.from_numpy(abc), 16,
    ).numpy()  # fmt: skip
    assert rendered.shape == density.shape
    np.testing.assert_allclose(rendered, density, atol=1e-4 * density.max())


def test_refinement_recovers_positions_moved_off_their_peaks():
    true = [srtio3(), cscl_tetragonal()]
    vox = Voxeliser(VoxelConfig(d=16), VOCAB)
    density, _, _ = vox.batch(true)
    rng = np.random.default_rng(0)
    moved = []
    for s in true:
        s = s.copy()
        for i in range(len(s)):  # 0.15 Å in a random direction: half a voxel
            step = rng.normal(size=3)
            s.translate_sites([i], 0.15 * step / np.linalg.norm(step), frac_coords=False)
        moved.append(s)
    fitted = refine_structures(moved, density, vox, steps=150)
    for s_true, s_moved, s_fit in zip(true, moved, fitted, strict=True):
        assert [sp.symbol for sp in s_fit.species] == [sp.symbol for sp in s_true.species]
        assert s_fit.lattice == s_true.lattice
        before = _site_shifts(s_true, s_moved)
        after = _site_shifts(s_true, s_fit)
        assert min(before) > 0.14
        assert max(after) < 0.03, after


def test_refinement_never_pushes_atoms_together():
    """Two O atoms 1.0 Å apart on a density of one O atom: a fit may slide them into the one
    peak; the result must then be the segmented structure, not a 0.1 Å pair."""
    lattice = Lattice.cubic(4.0)
    one = Structure(lattice, ["O"], [[0.5, 0.5, 0.5]])
    two = Structure(lattice, ["O", "O"], [[0.5, 0.5, 0.375], [0.5, 0.5, 0.625]])
    vox = Voxeliser(VoxelConfig(d=16), VOCAB)
    density, _, _ = vox.batch([one])
    density = density * 2.0  # as much charge as two atoms
    fitted = refine_structures([two], density, vox, steps=200)[0]
    distance = fitted.get_distance(0, 1)
    assert distance >= 0.9 or np.allclose(fitted.frac_coords, two.frac_coords)


def test_refine_of_nothing_is_nothing():
    assert refine_structures([], np.zeros((0, 16, 16, 16)), Voxeliser(VoxelConfig(d=16), VOCAB)) == []


def test_symmetrize_snaps_noise_but_keeps_a_real_off_centring():
    ideal = srtio3(shift=(0, 0, 0))
    rng = np.random.default_rng(1)
    noisy = ideal.copy()
    for i in range(len(noisy)):
        noisy.translate_sites([i], rng.uniform(-0.06, 0.06, 3), frac_coords=False)
    snapped = symmetrize_positions(noisy, 0.2)
    assert snapped.lattice == noisy.lattice and snapped.species == noisy.species
    shift = snapped.frac_coords[0] - ideal.frac_coords[0]  # the whole crystal may move rigidly
    drift = np.mod(snapped.frac_coords - ideal.frac_coords - shift + 0.5, 1.0) - 0.5
    assert np.abs(drift).max() < 1e-6
    assert SpacegroupAnalyzer(snapped, symprec=1e-4).get_space_group_symbol() == "Pm-3m"

    polar = ideal.copy()
    polar.translate_sites([1], [0, 0, 0.4], frac_coords=False)  # Ti 0.4 Å up c: P4mm, not noise
    kept = symmetrize_positions(polar, 0.2)
    assert SpacegroupAnalyzer(kept, symprec=1e-4).get_space_group_symbol() == "P4mm"
    ti_up = (kept.frac_coords[1, 2] - kept.frac_coords[0, 2]) * kept.lattice.c
    assert abs(ti_up - (0.5 * 3.905 + 0.4)) < 0.02


def test_symmetrize_of_a_triclinic_crystal_changes_nothing():
    s = Structure(Lattice.cubic(5.0), ["Cs", "Cl", "Cl"], [[0.01, 0.02, 0.03], [0.41, 0.13, 0.77], [0.7, 0.6, 0.2]])
    assert np.array_equal(symmetrize_positions(s, 0.2).frac_coords, s.frac_coords)


def test_refinement_works_under_inference_mode():
    """The GUI worker decodes inside torch.inference_mode; the fit must still get gradients."""
    true = [srtio3()]
    vox = Voxeliser(VoxelConfig(d=16), VOCAB)
    density, _, _ = vox.batch(true)
    moved = true[0].copy()
    moved.translate_sites([1], [0.1, 0.0, 0.0], frac_coords=False)
    with torch.inference_mode():
        fitted = refine_structures([moved], density, vox)[0]
    assert _site_shifts(true[0], fitted)[1] < 0.03
