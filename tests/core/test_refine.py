"""core.refine: the differentiable renderers equal the voxeliser, and fitting positions to a
density recovers the crystal that made it, in orthogonal and skewed cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from core.elements import Vocabulary
from core.refine import refine_structures, render_orthogonal, symmetrize_positions
from core.render import render_cell, render_general
from core.voxel import GAUSS_NORM, VoxelConfig, Voxeliser, density_grid

VOCAB = Vocabulary(["O", "Ti", "Sr", "Cs", "Cl"])
SKEWED_VOCAB = Vocabulary(["O", "Na", "Mg", "Cl", "Zn"])


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


def wurtzite_zno() -> Structure:
    """ZnO, hexagonal P6_3mc (186): a = 3.25 Å, c = 5.21 Å, gamma = 120°, u = 0.382."""
    return Structure.from_spacegroup(
        "P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]
    )


def monoclinic_mgo() -> Structure:
    """A made-up monoclinic Mg2O2 cell, beta = 100°, Mg-O 1.92 Å."""
    return Structure(
        Lattice.monoclinic(4.3, 3.9, 5.2, 100),
        ["Mg", "Mg", "O", "O"],
        [[0.1, 0.2, 0.15], [0.6, 0.7, 0.65], [0.55, 0.25, 0.2], [0.05, 0.75, 0.7]],
    )


def triclinic_nacl() -> Structure:
    """A made-up triclinic cell (80°, 105°, 95°) with three widths of Gaussian."""
    return Structure(
        Lattice.from_parameters(4.4, 4.8, 5.1, 80, 105, 95),
        ["Na", "Cl", "O"],
        [[0.05, 0.1, 0.02], [0.55, 0.45, 0.5], [0.5, 0.9, 0.1]],
    )


def _displaced(structures: list[Structure], distance: float, seed: int) -> list[Structure]:
    """Copies with every site moved ``distance`` Å in a random direction."""
    rng = np.random.default_rng(seed)
    moved = []
    for s in structures:
        s = s.copy()
        for i in range(len(s)):
            step = rng.normal(size=3)
            s.translate_sites([i], distance * step / np.linalg.norm(step), frac_coords=False)
        moved.append(s)
    return moved


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


def _render_arrays(vox: Voxeliser, structures: list[Structure]) -> tuple[torch.Tensor, ...]:
    """frac (B, N, 3), weight (B, N), sigma (B, N) as float64 tensors."""
    frac, z, sigma, _, _ = vox.site_arrays(structures)
    return torch.from_numpy(frac), torch.from_numpy(z * GAUSS_NORM / sigma**3), torch.from_numpy(sigma)


@pytest.mark.parametrize("method", [None, "real", "reciprocal"])
def test_general_render_matches_the_voxeliser_in_skewed_cells(method):
    skewed = [wurtzite_zno(), monoclinic_mgo(), triclinic_nacl()]
    for d in (16, 24):
        cfg = VoxelConfig(d=d)
        vox = Voxeliser(cfg, SKEWED_VOCAB)
        frac, weight, sigma = _render_arrays(vox, skewed)  # padded: the renderer skips weight-0 sites
        matrices = torch.from_numpy(np.stack([s.lattice.matrix for s in skewed]))
        rendered = render_general(frac, weight, sigma, matrices, d, method).numpy()
        for k, s in enumerate(skewed):
            expected = density_grid(s, cfg)
            # the voxeliser rounds to float32: that rounding is all that separates the two
            np.testing.assert_allclose(rendered[k], expected, rtol=0, atol=1e-6 * expected.max())
        single = render_cell(
            frac[0].float(), weight[0].float(), sigma[0].float(), matrices[0].float(), d, method
        )
        assert single.dtype == torch.float32
        np.testing.assert_allclose(single.numpy(), rendered[0], rtol=0, atol=1e-5 * rendered[0].max())


def test_general_render_equals_the_orthogonal_one_on_a_cubic_cell():
    cubic = [srtio3()]
    vox = Voxeliser(VoxelConfig(d=16), VOCAB)
    frac, weight, sigma = _render_arrays(vox, cubic)
    general = render_general(frac, weight, sigma, torch.tensor(cubic[0].lattice.matrix)[None], 16)
    abc = torch.tensor([cubic[0].lattice.abc], dtype=torch.float64)
    orthogonal = render_orthogonal(frac, weight, sigma, abc, 16)
    np.testing.assert_allclose(
        general.numpy(), orthogonal.numpy(), rtol=0, atol=1e-9 * orthogonal.max().item()
    )
    np.testing.assert_allclose(
        general[0].numpy(), vox(cubic[0]).density, rtol=0, atol=1e-6 * general.max().item()
    )


@pytest.mark.parametrize("method", ["real", "reciprocal"])
def test_general_render_has_position_gradients(method):
    """d(loss)/d(frac) of the general renderer matches a finite difference (float64)."""
    s = monoclinic_mgo()
    vox = Voxeliser(VoxelConfig(d=16), SKEWED_VOCAB)
    frac, weight, sigma = (t[0] for t in _render_arrays(vox, [s]))
    matrix = torch.tensor(s.lattice.matrix)
    target = torch.from_numpy(vox(s).density).double()
    frac = (frac + 0.01).requires_grad_(True)

    def loss(f: torch.Tensor) -> torch.Tensor:
        return ((render_cell(f, weight, sigma, matrix, 16, method) - target) ** 2).sum()

    (grad,) = torch.autograd.grad(loss(frac), frac)
    for site, axis in ((2, 1), (1, 0)):
        step = torch.zeros_like(frac)
        step[site, axis] = 1e-6
        numeric = (loss(frac.detach() + step) - loss(frac.detach() - step)) / 2e-6
        assert abs(grad[site, axis].item() - numeric.item()) < 1e-4 * abs(numeric.item())


def test_refinement_recovers_positions_in_skewed_cells():
    """Hexagonal and monoclinic crystals, sites moved 0.15 Å off their true density: refined back.
    The model is exact, so they come back to < 1e-3 Å; fitted with the orthogonal renderer's
    wrong metric they stop 0.01 Å (monoclinic) to 0.15 Å (wurtzite's O) off."""
    true = [wurtzite_zno(), monoclinic_mgo()]
    vox = Voxeliser(VoxelConfig(d=16), SKEWED_VOCAB)
    density, _, _ = vox.batch(true)
    moved = _displaced(true, 0.15, seed=2)
    fitted = refine_structures(moved, density, vox, steps=150)
    for s_true, s_moved, s_fit in zip(true, moved, fitted, strict=True):
        assert s_fit.species == s_true.species and s_fit.lattice == s_true.lattice
        assert min(_site_shifts(s_true, s_moved)) > 0.14
        after = _site_shifts(s_true, s_fit)
        assert max(after) < 0.005, after


def test_refinement_of_a_mixed_batch_keeps_the_orthogonal_result():
    """An orthogonal crystal refined beside a skewed one gets what it gets alone (the fast path)."""
    vox = Voxeliser(VoxelConfig(d=16), Vocabulary(["O", "Ti", "Sr", "Zn"]))
    true = [srtio3(), wurtzite_zno()]
    density, _, _ = vox.batch(true)
    moved = _displaced(true, 0.15, seed=3)
    alone = refine_structures(moved[:1], density[:1], vox, steps=20)[0]
    mixed = refine_structures(moved, density, vox, steps=20)
    np.testing.assert_allclose(mixed[0].frac_coords, alone.frac_coords, atol=1e-6)
    assert max(_site_shifts(true[1], mixed[1])) < max(_site_shifts(true[1], moved[1]))


def test_symmetrize_restores_wurtzite():
    ideal = wurtzite_zno()
    noisy = _displaced([ideal], 0.05, seed=4)[0]
    assert SpacegroupAnalyzer(noisy, symprec=1e-3).get_space_group_number() != 186
    snapped = symmetrize_positions(noisy, 0.2)
    assert snapped.lattice == noisy.lattice and snapped.species == noisy.species
    assert SpacegroupAnalyzer(snapped, symprec=1e-4).get_space_group_number() == 186
    assert max(_site_shifts(noisy, snapped)) < 0.1
