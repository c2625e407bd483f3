"""core.voxel: density/label grids are exact, periodic, equivariant, and agree across code paths."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.elements import Vocabulary
from core.voxel import (
    GAUSS_NORM,
    VoxelConfig,
    Voxeliser,
    apply_operation,
    augment,
    check_representable,
    cubic_operation,
    denormalise_density,
    density_grid,
    normalise_density,
)

D = 16
VOCAB = Vocabulary(["H", "Li", "O", "F", "Na", "Cl", "Ti", "Zn", "Sr", "Cs", "Ba", "U"])


# --- crystals built in code -------------------------------------------------------------------
def cscl() -> Structure:
    return Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def nacl() -> Structure:
    fcc = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    return Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4, fcc + [[x + 0.5, y, z] for x, y, z in fcc])


def srtio3() -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], coords)


def tetragonal() -> Structure:
    """Off-grid, low-symmetry sites in a 90° cell with a != c (every site distinguishable)."""
    coords = [[0.03, 0.07, 0.11], [0.52, 0.41, 0.58], [0.21, 0.77, 0.36], [0.74, 0.18, 0.83]]
    return Structure(Lattice.tetragonal(4.3, 5.6), ["Ba", "Ti", "O", "F"], coords)


def hexagonal() -> Structure:
    coords = [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.5], [2 / 3, 1 / 3, 0.88]]
    return Structure(Lattice.hexagonal(3.25, 5.2), ["Zn", "O", "Zn", "O"], coords)


def monoclinic() -> Structure:
    coords = [[0.1, 0.2, 0.3], [0.6, 0.7, 0.8], [0.35, 0.05, 0.62]]
    return Structure(Lattice.monoclinic(4.1, 4.6, 5.3, 103.0), ["Sr", "O", "Ti"], coords)


CRYSTALS = {
    "CsCl": cscl,
    "NaCl": nacl,
    "SrTiO3": srtio3,
    "tetragonal": tetragonal,
    "hexagonal": hexagonal,
    "monoclinic": monoclinic,
}


def voxeliser(d: int = D, **kwargs) -> Voxeliser:
    return Voxeliser(VoxelConfig(d=d, **kwargs), VOCAB)


def with_frac(structure: Structure, frac: np.ndarray, lattice: Lattice | None = None) -> Structure:
    """Same species, new fractional coordinates (kept as given: no wrapping into [0, 1))."""
    return Structure(lattice or structure.lattice, structure.species, frac)


def brute_force_labels(structure: Structure, cfg: VoxelConfig, vocab: Vocabulary) -> np.ndarray:
    """Reference labels: among the sites whose label sphere holds a point, the nearest one wins."""
    d = cfg.d
    grid = np.stack(np.meshgrid(*(np.arange(d) / d,) * 3, indexing="ij"), -1).reshape(-1, 3)
    best = np.full(d**3, np.inf)
    labels = np.zeros(d**3, np.uint8)
    for site in structure:
        diff = grid - site.frac_coords
        diff -= np.round(diff)  # minimum image (all test cells are far larger than the radii)
        dist = np.linalg.norm(diff @ structure.lattice.matrix, axis=1)
        radius = cfg.label_frac * cfg.sigma(site.specie.symbol)
        take = (dist < radius) & (dist < best)
        best[take], labels[take] = dist[take], vocab.index(site.specie.symbol)
    return labels.reshape(d, d, d)


# --- integral and code paths ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CRYSTALS))
@pytest.mark.parametrize("d", [16, 24])
def test_density_integrates_to_total_electrons(name: str, d: int) -> None:
    s = CRYSTALS[name]()
    sample = voxeliser(d)(s)
    assert sample.density.shape == (d, d, d) and sample.density.dtype == np.float32
    assert sample.labels.shape == (d, d, d) and sample.labels.dtype == np.uint8
    np.testing.assert_allclose(sample.abc, s.lattice.abc, rtol=1e-6)
    electrons = float(sample.density.sum(dtype=np.float64)) * s.volume / d**3
    assert electrons == pytest.approx(sum(s.atomic_numbers), rel=1e-3)


@pytest.mark.parametrize("name", ["CsCl", "NaCl", "SrTiO3", "tetragonal"])
def test_orthogonal_fast_path_equals_general_path(name: str) -> None:
    s = CRYSTALS[name]()
    vox = voxeliser(label_frac=1.3)
    fast = vox(s)
    density, labels = vox._general(s)
    np.testing.assert_allclose(fast.density, density, rtol=1e-5, atol=1e-5 * density.max())
    np.testing.assert_array_equal(fast.labels, labels)


def explicit_image_sum(structure: Structure, cfg: VoxelConfig, images: int = 3) -> np.ndarray:
    """Reference density: the definition in core.voxel, summed over (2 images + 1)^3 cell copies."""
    d = cfg.d
    grid = np.stack(np.meshgrid(*(np.arange(d) / d,) * 3, indexing="ij"), -1).reshape(-1, 3)
    shifts = np.stack(np.meshgrid(*(np.arange(-images, images + 1),) * 3, indexing="ij"), -1).reshape(-1, 3)
    rho = np.zeros(d**3)
    for site in structure:
        sigma = cfg.sigma(site.specie.symbol)
        for shift in shifts:
            r2 = np.sum(((grid - site.frac_coords - shift) @ structure.lattice.matrix) ** 2, axis=1)
            rho += site.specie.Z * GAUSS_NORM / sigma**3 * np.exp(-r2 / (2 * sigma**2))
    return rho.reshape(d, d, d)


def skewed() -> Structure:
    """The primitive cell of an fcc lattice (60° angles): far from orthogonal."""
    return Structure(Lattice.from_parameters(3.0, 3.0, 3.0, 60, 60, 60), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3])


@pytest.mark.parametrize("make", [hexagonal, monoclinic, skewed, srtio3])
def test_density_equals_the_definition_summed_over_images(make) -> None:
    s = make()
    vox = voxeliser(d=12)
    expected = explicit_image_sum(s, vox.cfg)
    np.testing.assert_allclose(vox(s).density, expected, rtol=1e-4, atol=1e-6 * expected.max())


@pytest.mark.parametrize("name", ["CsCl", "NaCl", "SrTiO3", "hexagonal"])
def test_density_on_a_site_is_its_gaussian_peak(name: str) -> None:
    """On a site's grid point the density is Z (2 pi)^-3/2 sigma^-3 plus neighbour tails (< 2 %)."""
    s = CRYSTALS[name]()
    d = 24
    sample = voxeliser(d)(s)
    checked = 0
    for site in s:
        point = site.frac_coords * d
        if not np.allclose(point, np.round(point), atol=1e-9):
            continue
        idx = tuple(np.round(point).astype(int) % d)
        peak = site.specie.Z * GAUSS_NORM / VoxelConfig().sigma(site.specie.symbol) ** 3
        assert 0.99999 * peak <= sample.density[idx] <= 1.02 * peak, site
        checked += 1
    assert checked >= 1


def test_grid_points_sit_at_i_over_d() -> None:
    s = Structure(Lattice.cubic(5.0), ["Cs"], [[0.25, 0.5, 0.75]])
    sample = voxeliser()(s)
    assert np.unravel_index(sample.density.argmax(), sample.density.shape) == (4, 8, 12)
    assert sample.labels[4, 8, 12] == VOCAB.index("Cs")


def test_density_grid_matches_voxeliser() -> None:
    s = srtio3()
    cfg = VoxelConfig(d=D)
    np.testing.assert_array_equal(density_grid(s, cfg), voxeliser()(s).density)


def test_normalise_density_round_trip() -> None:
    rho = voxeliser()(srtio3()).density
    x = normalise_density(rho)
    assert x.min() >= 0 and x.max() < 10  # log1p compresses 1-40 e/Å^3 peaks
    np.testing.assert_allclose(denormalise_density(x), rho, rtol=1e-5, atol=1e-6)


# --- periodicity --------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [srtio3, hexagonal])
def test_coordinates_wrap_periodically(make) -> None:
    s = make()
    vox = voxeliser()
    base = vox(s)
    for shift in ([1, 0, 0], [-1, 0, 0], [0, 1, -1], [2, -3, 1]):  # whole-cell translations
        other = vox(with_frac(s, s.frac_coords + np.array(shift)))
        np.testing.assert_allclose(other.density, base.density, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(other.labels, base.labels)


@pytest.mark.parametrize("make", [srtio3, hexagonal])
def test_atoms_at_one_and_just_below_zero_equal_atoms_at_zero(make) -> None:
    s = make()
    vox = voxeliser()
    base = vox(s)
    frac = s.frac_coords.copy()
    for replacement in (1.0, -1e-17):  # -1e-17 % 1.0 == 1.0 in floating point
        moved = np.where(frac == 0.0, replacement, frac)
        assert (moved != frac).any()
        other = vox(with_frac(s, moved))
        np.testing.assert_allclose(other.density, base.density, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(other.labels, base.labels)


def test_atom_just_inside_and_just_outside_the_face_give_the_same_grids() -> None:
    lattice = Lattice.cubic(5.0)
    vox = voxeliser()
    inside = vox(Structure(lattice, ["Sr"], [[0.999, 0.3, 0.6]]))
    outside = vox(Structure(lattice, ["Sr"], [[-0.001, 0.3, 0.6]]))
    np.testing.assert_allclose(inside.density, outside.density, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(inside.labels, outside.labels)


@pytest.mark.parametrize("frac", [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [1.0, 0.0, 1.0]])
def test_atom_on_corner_or_face_is_symmetric_across_the_boundary(frac) -> None:
    """A site on grid point 0 along an axis: rho[i] == rho[-i mod d] along that axis."""
    vox = voxeliser()
    sample = vox(Structure(Lattice.cubic(4.5), ["Ba"], [frac]))
    for axis in range(3):
        mirrored = np.roll(np.flip(sample.density, axis), 1, axis)
        np.testing.assert_allclose(mirrored, sample.density, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.roll(np.flip(sample.labels, axis), 1, axis), sample.labels)
    # The atom's density really crosses the faces: the first and last planes both carry it.
    assert sample.density[0].max() > 0.5 * sample.density.max()
    assert sample.density[-1].max() > 0.1 * sample.density.max()


@pytest.mark.parametrize("make", [srtio3, tetragonal, hexagonal])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_translation_by_grid_steps_rolls_the_grids(make, axis: int) -> None:
    s = make()
    vox = voxeliser()
    base = vox(s)
    for k in (5, -3):
        step = np.zeros(3)
        step[axis] = k / D
        moved = vox(with_frac(s, s.frac_coords + step))
        np.testing.assert_allclose(moved.density, np.roll(base.density, k, axis), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(moved.labels, np.roll(base.labels, k, axis))


# --- cubic symmetry operations and augmentation -------------------------------------------------
def transformed(structure: Structure, perm, flips, shift=(0, 0, 0), d: int = D) -> Structure:
    """The crystal whose grids are apply_operation(grids, perm, flips, shift)."""
    frac = structure.frac_coords[:, list(perm)]
    frac = np.where(np.array(flips), -frac, frac) + np.array(shift) / d
    lattice = Lattice.orthorhombic(*np.array(structure.lattice.abc)[list(perm)])
    return with_frac(structure, frac, lattice)


def off_grid_cubic() -> Structure:
    coords = [[0.03, 0.07, 0.11], [0.52, 0.41, 0.58], [0.21, 0.77, 0.36], [0.74, 0.18, 0.83]]
    return Structure(Lattice.cubic(4.6), ["Ba", "Ti", "O", "F"], coords)


def test_cubic_operations_are_48_distinct() -> None:
    ops = {cubic_operation(i) for i in range(48)}
    assert len(ops) == 48
    assert cubic_operation(0) == ((0, 1, 2), (False, False, False))


@pytest.mark.parametrize("index", range(48))
def test_cubic_operation_on_grids_equals_operation_on_coordinates(index: int) -> None:
    s = off_grid_cubic()
    vox = voxeliser()
    base = vox(s)
    perm, flips = cubic_operation(index)
    expected = vox(transformed(s, perm, flips))
    np.testing.assert_allclose(
        apply_operation(base.density, perm, flips), expected.density, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(apply_operation(base.labels, perm, flips), expected.labels)


def test_apply_operation_acts_on_the_last_three_axes_of_a_batch() -> None:
    vox = voxeliser()
    density, labels, _ = vox.batch([off_grid_cubic(), srtio3()])
    perm, flips = cubic_operation(29)
    batched = apply_operation(density, perm, flips, (1, 2, 3))
    for b in range(2):
        np.testing.assert_array_equal(batched[b], apply_operation(density[b], perm, flips, (1, 2, 3)))
    assert apply_operation(labels, perm, flips).dtype == np.uint8


def find_operation(before: np.ndarray, after: np.ndarray) -> tuple:
    """The (perm, flips, shift) that maps ``before`` onto ``after`` (unique peak => unique answer)."""
    peak_after = np.array(np.unravel_index(after.argmax(), after.shape))
    for index in range(48):
        perm, flips = cubic_operation(index)
        turned = apply_operation(before, perm, flips)
        peak = np.array(np.unravel_index(turned.argmax(), turned.shape))
        shift = tuple(int(x) for x in (peak_after - peak) % before.shape[0])
        if np.array_equal(np.roll(turned, shift, (0, 1, 2)), after):
            return perm, flips, shift
    raise AssertionError("augment() output is no cubic operation + roll of its input")


@pytest.mark.parametrize("seed", range(8))
def test_augment_is_a_consistent_symmetry_operation_of_density_labels_and_abc(seed: int) -> None:
    s = tetragonal()  # a != c, so a wrong abc permutation cannot go unnoticed
    vox = voxeliser()
    base = vox(s)
    density, labels, abc = augment(base.density, base.labels, base.abc, np.random.default_rng(seed))
    perm, flips, shift = find_operation(base.density, density)
    np.testing.assert_array_equal(labels, apply_operation(base.labels, perm, flips, shift))
    np.testing.assert_allclose(abc, np.array(s.lattice.abc)[list(perm)], rtol=1e-6)
    # The augmented grids are the grids of the rotated and shifted crystal.
    expected = vox(transformed(s, perm, flips, shift))
    np.testing.assert_allclose(density, expected.density, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, expected.labels)
    # Labels still sit on the density peaks: the global maximum keeps its (non-background) class.
    top = base.labels[np.unravel_index(base.density.argmax(), base.density.shape)]
    assert top != 0 and labels[np.unravel_index(density.argmax(), density.shape)] == top


def test_augment_draws_different_operations() -> None:
    base = voxeliser()(off_grid_cubic())
    seen = set()
    for seed in range(30):
        density, _, _ = augment(base.density, base.labels, base.abc, np.random.default_rng(seed))
        perm, flips, shift = find_operation(base.density, density)
        seen.add((perm, flips))
    assert len(seen) > 15


# --- labels -------------------------------------------------------------------------------------
@pytest.mark.parametrize("label_frac", [0.5, 1.0, 1.6])
@pytest.mark.parametrize("name", list(CRYSTALS))
def test_labels_are_nearest_site_within_label_radius(name: str, label_frac: float) -> None:
    s = CRYSTALS[name]()
    vox = voxeliser(label_frac=label_frac)
    expected = brute_force_labels(s, vox.cfg, VOCAB)
    got = vox(s).labels
    # A point exactly on a sphere boundary may round either way: allow a handful of such points.
    assert (got != expected).sum() <= 2, f"{(got != expected).sum()} voxels differ"
    assert set(np.unique(got)) == {0} | {VOCAB.index(e.symbol) for e in s.composition.elements}


def test_overlapping_label_spheres_go_to_the_nearest_site() -> None:
    # Two sites 1.1 Å apart, label radii 0.9 x 1.5: the spheres overlap and the overlap is split.
    s = Structure(Lattice.cubic(5.0), ["Cs", "O"], [[0.3, 0.3, 0.3], [0.3 + 1.1 / 5.0, 0.3, 0.3]])
    vox = voxeliser(d=24, label_frac=1.5)
    labels = vox(s).labels
    np.testing.assert_array_equal(labels, brute_force_labels(s, vox.cfg, VOCAB))
    cs, o = VOCAB.index("Cs"), VOCAB.index("O")
    line = labels[:, round(0.3 * 24), round(0.3 * 24)]
    # Along the bond: Cs up to the midpoint (x = 0.41), then O.
    assert line[7] == cs and line[9] == cs and line[10] == o and line[12] == o


def test_label_ids_follow_the_vocabulary() -> None:
    s = srtio3()
    vocab = Vocabulary(["U", "Sr", "H", "Ti", "O"])  # sorted by Z: H O Ti Sr U
    labels = Voxeliser(VoxelConfig(d=D), vocab)(s).labels
    assert labels[0, 0, 0] == vocab.index("Sr") == 4
    assert labels[8, 8, 8] == vocab.index("Ti") == 3
    assert labels[8, 8, 0] == labels[8, 0, 8] == labels[0, 8, 8] == vocab.index("O") == 2
    assert labels[4, 4, 4] == 0  # between the atoms: background


def test_unknown_element_raises_key_error() -> None:
    with pytest.raises(KeyError, match="Cl"):
        Voxeliser(VoxelConfig(d=D), Vocabulary(["Na"]))(nacl())


# --- representability and batches ----------------------------------------------------------------
def test_check_representable_accepts_ordinary_crystals() -> None:
    cfg = VoxelConfig()
    for make in CRYSTALS.values():
        assert check_representable(make(), cfg) is None


def test_check_representable_rejects_a_cell_too_large_for_the_grid() -> None:
    cfg = VoxelConfig(d=32)
    reason = check_representable(Structure(Lattice.cubic(20.0), ["Na"], [[0, 0, 0]]), cfg)
    assert reason is not None and reason.startswith("cell too large for the grid")
    assert "0.62 Å spacing > 0.45 Å" in reason
    assert check_representable(Structure(Lattice.cubic(14.0), ["Na"], [[0, 0, 0]]), cfg) is None


def test_check_representable_rejects_atoms_too_close() -> None:
    cfg = VoxelConfig(d=32)
    s = Structure(Lattice.cubic(8.0), ["Na", "Cl"], [[0, 0, 0], [0.04, 0, 0]])  # 0.32 Å < 2 x 0.25 Å
    reason = check_representable(s, cfg)
    assert reason is not None and "closer than the grid resolves" in reason and "0.32 Å" in reason
    # The distance is periodic: 0.98 and 0.02 are 0.32 Å apart across the face.
    wrapped = Structure(Lattice.cubic(8.0), ["Na", "Cl"], [[0.98, 0, 0], [0.02, 0, 0]])
    assert "closer than the grid resolves" in check_representable(wrapped, cfg)


def test_check_representable_rejects_too_many_sites() -> None:
    s = nacl()
    s.make_supercell([2, 2, 2])  # 64 sites
    reason = check_representable(s, VoxelConfig(d=64, max_sites=40))
    assert reason is not None and "64 sites" in reason and "(40)" in reason


def test_batch_mixes_cell_types_and_site_counts() -> None:
    structures = [srtio3(), hexagonal(), cscl(), monoclinic(), nacl(), tetragonal()]
    vox = voxeliser()
    density, labels, abc = vox.batch(structures)
    assert density.shape == labels.shape == (len(structures), D, D, D)
    assert density.dtype == np.float32 and labels.dtype == np.uint8 and abc.dtype == np.float32
    for b, s in enumerate(structures):
        alone = vox(s)
        np.testing.assert_allclose(density[b], alone.density, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(labels[b], alone.labels)
        np.testing.assert_allclose(abc[b], s.lattice.abc, rtol=1e-6)
    # Padding sites (a 2-site crystal in a batch with 8-site ones) add nothing.
    electrons = density[2].sum(dtype=np.float64) * structures[2].volume / D**3
    assert electrons == pytest.approx(sum(structures[2].atomic_numbers), rel=1e-3)


def test_batch_of_only_non_orthogonal_cells() -> None:
    vox = voxeliser()
    density, labels, _ = vox.batch([hexagonal(), monoclinic()])
    general = vox._general(monoclinic())
    np.testing.assert_allclose(density[1], general[0], rtol=1e-6)
    np.testing.assert_array_equal(labels[1], general[1])


def test_empty_batch() -> None:
    density, labels, abc = voxeliser().batch([])
    assert density.shape == labels.shape == (0, D, D, D) and abc.shape == (0, 3)
    assert density.dtype == np.float32 and labels.dtype == np.uint8


def test_voxel_config_round_trip_ignores_unknown_keys() -> None:
    cfg = VoxelConfig(d=24, sigma_frac=0.4, label_frac=1.2)
    assert VoxelConfig.from_dict({**cfg.to_dict(), "future_key": 1}) == cfg
    assert VoxelConfig().sigma("H") == VoxelConfig().sigma_min  # clipped up to sigma_min
    assert VoxelConfig().sigma("Cs") == VoxelConfig().sigma_max  # clipped down to sigma_max


def test_single_crystal_numpy_path_equals_the_compiled_batch():
    """The app grids one crystal with numpy (no numba start-up); it must be the same grid."""
    from pymatgen.core import Lattice, Structure

    from core.elements import Vocabulary
    from core.voxel import VoxelConfig, Voxeliser

    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    crystals = [
        Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], frac),
        Structure(Lattice.orthorhombic(3.1, 4.7, 5.9), ["Cs", "Cl"], [[0.1, 0.2, 0.3], [0.6, 0.7, 0.85]]),
    ]
    vox = Voxeliser(VoxelConfig(d=24), Vocabulary.from_structures(crystals))
    batch_density, batch_labels, _ = vox.batch(crystals)
    for k, s in enumerate(crystals):
        sample = vox(s)
        np.testing.assert_allclose(
            sample.density, batch_density[k], rtol=1e-5, atol=1e-6 * batch_density[k].max()
        )
        np.testing.assert_array_equal(sample.labels, batch_labels[k])


def triclinic() -> Structure:
    coords = [[0.1, 0.15, 0.2], [0.55, 0.6, 0.7], [0.3, 0.8, 0.45]]
    return Structure(Lattice.from_parameters(4.2, 4.8, 5.1, 78.0, 96.0, 107.0), ["Ba", "O", "Ti"], coords)


@pytest.mark.parametrize("make", [hexagonal, monoclinic, triclinic, skewed])
def test_a_skewed_crystal_round_trips_through_its_grid(make) -> None:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from core.evaluation import roundtrip
    from core.structures import Entry

    crystal = make()
    result = roundtrip([Entry("x", crystal, "<test>")], cfg=VoxelConfig(d=32))
    assert result.metrics["match_rate"] == 1.0, result.failures
    back = result.predictions[0]
    np.testing.assert_allclose(back.lattice.angles, crystal.lattice.angles, atol=1e-6)  # not a 90° cell
    assert StructureMatcher(stol=0.1).fit(back, crystal)


def test_a_conventional_cell_too_long_for_the_grid_is_gridded_on_its_primitive_cell() -> None:
    from core.structures import Entry
    from core.voxel import representable

    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(7.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cfg = VoxelConfig(d=12, max_voxel=0.45)  # 7.0 Å / 12 = 0.58 Å: the conventional cell does not fit
    assert check_representable(fcc, cfg) is not None
    (entry,), failures = representable([Entry("fcc", fcc, "<test>")], cfg)
    assert not failures and len(entry.structure) == 2 and max(entry.structure.lattice.abc) < 5.0
    assert "primitive" in entry.note
    huge = Structure(Lattice.cubic(9.0), ["Cs"], [[0, 0, 0]])  # primitive already: still too large
    usable, failures = representable([Entry("huge", huge, "<test>")], cfg)
    assert not usable and "cell too large" in failures[0].reason


def test_a_primitive_cell_set_grids_every_centred_crystal_on_its_reduced_cell() -> None:
    from core.voxel import gridded_cell

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # primitive already
    conventional, primitive = (VoxelConfig(d=16, max_voxel=0.55, cell=c) for c in ("conventional", "primitive"))
    cell, reason = gridded_cell(nacl, conventional)  # fits: the conventional cell, 8 atoms
    assert reason is None and len(cell) == 8
    cell, reason = gridded_cell(nacl, primitive)  # the rhombohedral primitive cell, 2 atoms at 60°
    assert reason is None and len(cell) == 2
    np.testing.assert_allclose(cell.lattice.angles, [60.0, 60.0, 60.0], atol=1e-6)
    assert cell.composition.reduced_formula == "NaCl"
    cell, reason = gridded_cell(cscl, primitive)  # no fewer atoms: the 90° cell as it was
    assert reason is None and cell is cscl
    assert VoxelConfig.from_dict({"d": 16}).cell == "conventional"  # checkpoints before the option
    with pytest.raises(ValueError, match="cell must be one of"):
        VoxelConfig(cell="niggli")
