"""core.segment: true density + labels -> sites -> the same crystal, for every gallery crystal and
the hard cases (touching blobs, shoulders, atoms on faces and corners, bad inputs)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from scipy import ndimage

from core import gallery
from core.elements import Vocabulary
from core.errors import SegmentationError
from core.segment import MIN_DENSITY, Site, find_sites, grid_to_structure, sites_to_structure
from core.voxel import VoxelConfig, Voxeliser

GALLERY_IDS = [item.id for item in gallery.list_gallery()]
MATCHER = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)
VOCAB = Vocabulary(["O", "Sr"])


@pytest.fixture(scope="module")
def gallery_grids() -> dict:
    """Every gallery crystal, translated off the grid by a random vector, voxelised at d = 32."""
    structures = gallery.load_all()
    rng = np.random.default_rng(7)
    shifted = {}
    for item_id, s in structures.items():
        s = s.copy()
        s.translate_sites(range(len(s)), rng.random(3), frac_coords=True, to_unit_cell=True)
        shifted[item_id] = s
    vocab = Vocabulary.from_structures(shifted.values())
    density, labels, abc = Voxeliser(VoxelConfig(d=32), vocab).batch(list(shifted.values()))
    grids = {k: (density[i], labels[i], abc[i]) for i, k in enumerate(shifted)}
    return {"structures": shifted, "grids": grids, "vocab": vocab}


def position_errors(truth: Structure, found: Structure) -> np.ndarray:
    """Per true site: periodic distance (Å) to the nearest recovered site of the same element."""
    dist = truth.lattice.get_all_distances(truth.frac_coords, found.frac_coords)
    same = np.array([[a.specie == b.specie for b in found] for a in truth])
    return np.where(same, dist, np.inf).min(axis=1)


def one_crystal(lattice: Lattice, species: list[str], frac, d: int = 32, **cfg) -> tuple:
    vocab = Vocabulary(sorted(set(species)))
    s = Structure(lattice, species, frac)
    sample = Voxeliser(VoxelConfig(d=d, **cfg), vocab)(s)
    return s, sample, vocab


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, D, D, D) probabilities that put all mass on the given labels."""
    return np.moveaxis(np.eye(n_classes, dtype=np.float32)[labels], -1, 0)


def n_density_maxima(density: np.ndarray) -> int:
    peaks = (density >= ndimage.maximum_filter(density, size=3, mode="wrap")) & (density > MIN_DENSITY)
    return int(peaks.sum())


# --- the gallery round trip -----------------------------------------------------------------
@pytest.mark.parametrize("item_id", GALLERY_IDS)
def test_gallery_round_trip_matches_with_accurate_positions(gallery_grids, item_id: str) -> None:
    truth = gallery_grids["structures"][item_id]
    density, labels, abc = gallery_grids["grids"][item_id]
    found = grid_to_structure(density, abc, gallery_grids["vocab"], labels=labels)
    assert found.composition == truth.composition
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert MATCHER.fit(truth, found), f"{item_id}: {found.composition} does not match"
    # Every atom of a textbook crystal is an isolated Gaussian: sub-voxel exact positions.
    assert position_errors(truth, found).max() < 0.02


def test_gallery_has_the_spinel_and_about_47_crystals(gallery_grids) -> None:
    sizes = {k: len(s) for k, s in gallery_grids["structures"].items()}
    assert len(sizes) >= 40
    assert max(sizes.values()) >= 56  # MgAl2O4 spinel: the crowded case


@pytest.mark.parametrize(
    "item_id", ["SrTiO3_perovskite", "MgAl2O4_spinel", "CaF2_fluorite", "Cu2MnAl_heusler"]
)
def test_class_probabilities_path_equals_labels_path(gallery_grids, item_id: str) -> None:
    density, labels, abc = gallery_grids["grids"][item_id]
    vocab = gallery_grids["vocab"]
    from_labels = find_sites(density, vocab, labels=labels)
    probs = one_hot(labels, len(vocab))
    soft = 0.6 * probs + 0.4 / len(vocab)  # same argmax, no longer one-hot
    def ordered(sites):  # the two paths find the same atoms, in a different order
        return sorted(sites, key=lambda s: (s.species, *np.round(s.frac, 4)))

    for class_probs in (probs, soft):
        from_probs = ordered(find_sites(density, vocab, class_probs=class_probs))
        assert [s.species for s in from_probs] == [s.species for s in ordered(from_labels)]
        np.testing.assert_allclose([s.frac for s in from_probs], [s.frac for s in ordered(from_labels)], atol=1e-3)


def test_sites_carry_species_fraction_and_peak_density(gallery_grids) -> None:
    density, labels, _ = gallery_grids["grids"]["SrTiO3_perovskite"]
    sites = find_sites(density, gallery_grids["vocab"], labels=labels)
    assert sorted(s.species for s in sites) == ["O", "O", "O", "Sr", "Ti"]
    for site in sites:
        assert site.frac.shape == (3,) and np.all((site.frac >= 0) & (site.frac < 1))
        assert site.weight > MIN_DENSITY and site.weight <= density.max()


# --- hard cases --------------------------------------------------------------------------------
def test_touching_label_spheres_of_one_species_are_split_at_the_density_dip() -> None:
    # Two O 1.8 Å apart with label radius 1.5 sigma = 0.95 Å: their label spheres merge into one
    # connected region, but the density keeps two maxima (1.8 Å > 2 sigma = 1.26 Å).
    a = 6.0
    truth, sample, vocab = one_crystal(
        Lattice.cubic(a), ["O", "O"], [[0.3, 0.3, 0.3], [0.6, 0.31, 0.3]], label_frac=1.5
    )
    assert ndimage.label(sample.labels == vocab.index("O"))[1] == 1
    found = grid_to_structure(sample.density, sample.abc, vocab, labels=sample.labels)
    assert len(found) == 2
    # The tails of two overlapping Gaussians pull their maxima together a little.
    assert position_errors(truth, found).max() < 0.08


def test_light_atom_on_the_shoulder_of_a_heavy_one_is_found() -> None:
    # Li 1.4 Å from Cs: the Cs Gaussian swamps Li, whose density has no maximum of its own.
    a = 6.0
    truth, sample, vocab = one_crystal(
        Lattice.cubic(a), ["Cs", "Li"], [[0.3, 0.3, 0.3], [0.3 + 1.4 / a, 0.3, 0.3]]
    )
    assert n_density_maxima(sample.density) == 1
    found = grid_to_structure(sample.density, sample.abc, vocab, labels=sample.labels)
    assert sorted(site.specie.symbol for site in found) == ["Cs", "Li"]
    assert position_errors(truth, found).max() < 0.05


def test_shoulder_atom_on_the_corner_uses_a_periodic_centroid() -> None:
    # The Li label region is split over the 8 corners of the cell; its centroid must be 0, not 0.5.
    a = 6.0
    truth, sample, vocab = one_crystal(Lattice.cubic(a), ["Cs", "Li"], [[1.4 / a, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert n_density_maxima(sample.density) == 1
    found = grid_to_structure(sample.density, sample.abc, vocab, labels=sample.labels)
    assert len(found) == 2
    assert position_errors(truth, found).max() < 0.05


@pytest.mark.parametrize(
    "frac", [[0.0, 0.0, 0.0], [0.999, 0.001, 0.0], [0.0, 0.5, 0.5], [0.5, 0.998, 0.5], [1.0, 1.0, 1.0]]
)
def test_atom_on_a_corner_or_face_is_one_site(frac) -> None:
    truth, sample, vocab = one_crystal(Lattice.cubic(4.0), ["Ba"], [frac], d=16)
    # Its label region really is cut by the faces of the cell.
    assert sample.labels[0].any() and sample.labels[-1].any() or sample.labels[:, 0].any()
    sites = find_sites(sample.density, vocab, labels=sample.labels)
    assert len(sites) == 1
    found = sites_to_structure(sites, sample.abc)
    assert position_errors(truth, found).max() < 0.02


def test_rock_salt_with_every_atom_on_faces_and_corners() -> None:
    fcc = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    frac = fcc + [[x + 0.5, y, z] for x, y, z in fcc]
    truth, sample, vocab = one_crystal(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4, frac, d=16)
    found = grid_to_structure(sample.density, sample.abc, vocab, labels=sample.labels)
    assert len(found) == 8 and found.composition == truth.composition
    assert position_errors(truth, found).max() < 0.02


def test_background_noise_below_min_density_adds_no_sites() -> None:
    truth, sample, vocab = one_crystal(Lattice.cubic(4.0), ["Sr", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]], d=16)
    noisy = sample.density + np.random.default_rng(0).uniform(0, 0.5 * MIN_DENSITY, sample.density.shape)
    found = grid_to_structure(noisy.astype(np.float32), sample.abc, vocab, labels=sample.labels)
    assert len(found) == 2
    assert position_errors(truth, found).max() < 0.05


def test_flat_topped_blob_is_one_site() -> None:
    density = np.zeros((8, 8, 8))
    density[2:6, 2:6, 2:6] = 1.0  # e.g. a saturated decoder output: 64 tied maxima, one blob
    labels = np.where(density > 0, VOCAB.index("Sr"), 0).astype(np.uint8)
    assert len(find_sites(density, VOCAB, labels=labels)) == 1


# --- errors ------------------------------------------------------------------------------------


def test_empty_density_raises() -> None:
    empty = np.zeros((16, 16, 16), np.float32)
    assert find_sites(empty, VOCAB, labels=np.zeros((16, 16, 16), np.uint8)) == []
    with pytest.raises(SegmentationError, match="no atoms"):
        grid_to_structure(empty, (4.0, 4.0, 4.0), VOCAB, labels=np.zeros((16, 16, 16), np.uint8))


@pytest.mark.parametrize("shape", [(16, 16, 8), (16, 16), (2, 16, 16, 16)])
def test_non_cubic_density_raises(shape) -> None:
    with pytest.raises(SegmentationError, match="cubic"):
        find_sites(np.ones(shape, np.float32), VOCAB, labels=np.zeros(shape, np.uint8))


def test_species_grid_of_the_wrong_size_raises() -> None:
    density = np.ones((16, 16, 16), np.float32)
    with pytest.raises(SegmentationError, match="does not match"):
        find_sites(density, VOCAB, labels=np.zeros((8, 8, 8), np.uint8))
    with pytest.raises(SegmentationError, match="does not match"):
        find_sites(density, VOCAB, class_probs=np.zeros((len(VOCAB), 8, 8, 8), np.float32))


def test_no_species_source_raises() -> None:
    with pytest.raises(SegmentationError, match="labels or class probabilities"):
        find_sites(np.ones((16, 16, 16), np.float32), VOCAB)
    with pytest.raises(SegmentationError):
        grid_to_structure(np.ones((16, 16, 16), np.float32), (4.0, 4.0, 4.0), VOCAB)


@pytest.mark.parametrize("abc", [(0.0, 4.0, 4.0), (4.0, -1.0, 4.0), (4.0, 4.0, float("nan"))])
def test_implausible_lattice_raises(abc) -> None:
    site = Site(frac=np.zeros(3), species="Sr", weight=1.0)
    with pytest.raises(SegmentationError, match="implausible lattice"):
        sites_to_structure([site], abc)


def test_sites_to_structure_builds_the_cell() -> None:
    sites = [Site(np.array([0.0, 0.0, 0.0]), "Sr", 5.0), Site(np.array([0.5, 0.5, 0.5]), "O", 2.0)]
    s = sites_to_structure(sites, (4.0, 4.5, 5.0), angles=(90.0, 90.0, 120.0))
    np.testing.assert_allclose(s.lattice.abc, (4.0, 4.5, 5.0))
    np.testing.assert_allclose(s.lattice.angles, (90.0, 90.0, 120.0))
    assert [x.specie.symbol for x in s] == ["Sr", "O"]


# --- decoded grids with a predicted composition ------------------------------------------------
def test_counts_keep_the_highest_maxima_and_type_them_jointly() -> None:
    # SrO3 toy: Sr + 3 O, plus a spurious weak blob; the species map is ambiguous (Sr and O about
    # equally likely everywhere) so only the composition can type the cell right.
    a = 4.0
    truth, sample, vocab = one_crystal(
        Lattice.cubic(a), ["Sr", "O", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]], d=16
    )
    density = sample.density.copy()
    spurious = np.zeros_like(density)
    spurious[8, 8, 8] = 0.12 * density.max()
    density = density + ndimage.gaussian_filter(spurious, 1.0, mode="wrap") * 10
    probs = np.zeros((len(vocab),) + density.shape, dtype=np.float32)
    o, sr = vocab.index("O"), vocab.index("Sr")
    probs[o] = 0.5
    probs[sr] = 0.5
    probs[sr][sample.labels == sr] = 0.55  # a faint hint on the Sr site only
    probs[o][sample.labels == sr] = 0.45
    free = find_sites(density, vocab, class_probs=probs)
    assert len(free) == 5  # the spurious blob is an atom without a composition
    counts = np.zeros(len(vocab), dtype=int)
    counts[o], counts[sr] = 3, 1
    found = sites_to_structure(find_sites(density, vocab, class_probs=probs, counts=counts), sample.abc)
    assert found.composition.reduced_formula == "SrO3"
    assert MATCHER.fit(truth, found)
    # fewer maxima than the composition asks for: every maximum still gets an element
    few = np.zeros(len(vocab), dtype=int)
    few[o], few[sr] = 10, 1
    assert len(find_sites(density, vocab, class_probs=probs, counts=few)) == 5
    # an empty composition falls back to per-site typing
    assert len(find_sites(density, vocab, class_probs=probs, counts=np.zeros(len(vocab), int))) == 5


def test_counts_place_an_atom_that_has_no_density_maximum() -> None:
    # Li on the shoulder of Cs (no maximum of its own): the composition asks for it, its
    # probability map says where it is
    a = 6.0
    truth, sample, vocab = one_crystal(Lattice.cubic(a), ["Cs", "Li"], [[0.3, 0.3, 0.3], [0.3 + 1.4 / a, 0.3, 0.3]])
    assert n_density_maxima(sample.density) == 1
    probs = one_hot(sample.labels, len(vocab))
    assert len(find_sites(sample.density, vocab, class_probs=probs)) == 1  # maxima alone miss Li
    counts = np.zeros(len(vocab), dtype=int)
    counts[vocab.index("Cs")] = counts[vocab.index("Li")] = 1
    found = sites_to_structure(find_sites(sample.density, vocab, class_probs=probs, counts=counts), sample.abc)
    assert sorted(site.specie.symbol for site in found) == ["Cs", "Li"]
    assert position_errors(truth, found).max() < 0.3


def test_a_ripple_next_to_a_decoded_peak_is_not_an_atom() -> None:
    d = 16
    grid = np.indices((d, d, d)).transpose(1, 2, 3, 0).astype(float)
    blob = lambda centre, amp, sigma: amp * np.exp(-((grid - centre) ** 2).sum(-1) / (2 * sigma**2))  # noqa: E731
    density = blob([8, 8, 8], 1.0, 1.0) + blob([8, 8, 11], 0.4, 0.5) + blob([2, 2, 2], 0.5, 1.0)
    assert n_density_maxima(density) == 3
    vocab = Vocabulary(["O", "Sr"])
    probs = np.zeros((3, d, d, d), dtype=np.float32)
    probs[vocab.index("Sr")] = 1.0
    assert len(find_sites(density, vocab, class_probs=probs)) == 3  # grid units: no length scale
    # 0.25 Å voxels: the ripple 0.75 Å from the peak goes, the atom 3.6 Å away stays
    sites = find_sites(density, vocab, class_probs=probs, voxel_size=np.full(3, 0.25))
    assert sorted(np.round(s.frac * d).astype(int).tolist() for s in sites) == [[2, 2, 2], [8, 8, 8]]


def test_a_cap_on_elements_lets_a_binarys_atoms_vote_on_its_elements():
    from core.segment import limit_elements

    # classes: 0 background, 1 Na, 2 Cl, 3 K (Na's neighbour in the typing, a near miss)
    mass = np.array([
        [0.0, 0.45, 0.05, 0.50],  # a sodium read as potassium by a hair
        [0.0, 0.80, 0.05, 0.15],
        [0.0, 0.70, 0.10, 0.20],
        [0.0, 0.05, 0.90, 0.05],
    ])  # fmt: skip
    assert mass[:, 1:].argmax(axis=1).tolist() == [2, 0, 0, 1]  # alone: NaKCl2... a ternary
    assert limit_elements(mass, 2).tolist() == [1, 1, 1, 2]  # two elements: Na3Cl
    assert limit_elements(mass, 3).tolist() == [3, 1, 1, 2]  # a cap that does not bind changes nothing
    assert limit_elements(mass, 1).tolist() == [1, 1, 1, 1]


def test_decoded_sites_keep_to_the_element_cap():
    d = 8
    density = np.zeros((d, d, d))
    probs = np.zeros((4, d, d, d))
    probs[0] = 1.0
    for (i, j, k), row in zip([(1, 1, 1), (5, 1, 1), (1, 5, 1), (5, 5, 5)],
                              [(0.45, 0.05, 0.50), (0.8, 0.05, 0.15), (0.7, 0.1, 0.2), (0.05, 0.9, 0.05)], strict=True):  # fmt: skip
        density[i, j, k] = 1.0
        probs[:, i, j, k] = (0.0, *row)
    vocab = Vocabulary.from_list(["Na", "Cl", "K"])
    free = find_sites(density, vocab, class_probs=probs)
    capped = find_sites(density, vocab, class_probs=probs, max_elements=2)
    assert sorted(s.species for s in free) == ["Cl", "K", "Na", "Na"]
    assert sorted(s.species for s in capped) == ["Cl", "Na", "Na", "Na"]
