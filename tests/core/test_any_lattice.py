"""Model sets for any lattice: the VAE's six lattice parameters, decoded cells with their angles,
and shipped sets by name (core.model_sets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from core.elements import Vocabulary
from core.errors import ICSGError
from core.model_sets import SHIPPED_NAME, domain_advice, resolve_models, shipped_model_sets
from core.models.vae import CondVAE3D, VAEConfig
from core.pipeline import ModelSet
from core.structures import Entry
from core.train.data import VoxelDataset, voxel_normalisers
from core.voxel import (
    VoxelConfig,
    Voxeliser,
    cell_matrix,
    density_grid,
    lattice_parameters,
    normalise_density,
    with_angles,
)
from resources import default_models_dir
from tests.tiny_models import write_tiny_model_set


def monoclinic_nacl() -> Structure:
    """A rock-salt-like pair of atoms in a monoclinic cell (beta = 104°)."""
    return Structure(Lattice.monoclinic(4.2, 4.4, 4.6, 104.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def hexagonal_zno() -> Structure:
    return Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                     [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]])  # fmt: skip


def test_lattice_parameters_append_the_angles_and_rebuild_the_cell():
    s = monoclinic_nacl()
    params = lattice_parameters([s], 6)[0]
    assert params.shape == (6,)
    np.testing.assert_allclose(params[3:], s.lattice.angles, atol=1e-4)
    np.testing.assert_allclose(cell_matrix(params), s.lattice.matrix, atol=1e-4)
    np.testing.assert_allclose(lattice_parameters([s], 3)[0], s.lattice.abc, atol=1e-5)
    # lengths permuted by augmentation keep the structure's angles
    extended = with_angles(np.array([[4.6, 4.2, 4.4]]), [s], 6)
    np.testing.assert_allclose(extended[0], [4.6, 4.2, 4.4, *s.lattice.angles], atol=1e-4)
    with pytest.raises(ValueError):
        lattice_parameters([s], 4)


def test_a_six_parameter_vae_reads_and_predicts_the_angles():
    cfg = VAEConfig(n_classes=3, latent=8, d=8, widths=(4, 8), dec_widths=(8, 4), hidden=16, lattice_params=6)
    model = CondVAE3D(cfg).eval()
    x = torch.randn(2, 4, 8, 8, 8)
    mu, _ = model.encode(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, 6))
    assert model.decode(mu, torch.zeros(2, dtype=torch.long))["abc"].shape == (2, 6)
    with pytest.raises(RuntimeError):  # three parameters no longer fit its encoder
        model.encode(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="lattice_params"):
        VAEConfig(lattice_params=4)


def test_training_batches_carry_the_standardised_angles():
    crystals = [monoclinic_nacl(), hexagonal_zno()]
    entries = [Entry(f"x{i}", s, {}, f"x{i}") for i, s in enumerate(crystals)]
    norms = voxel_normalisers(entries, None, [1.0, 1.0, 1.0], lattice_params=6)
    assert len(norms["abc_mean"]) == 6
    vocab = Vocabulary.from_structures(crystals)
    data = VoxelDataset(entries, Voxeliser(VoxelConfig(d=8, max_voxel=1.0), vocab), norms)
    batch = data.collate([(0, None), (1, None)])
    assert batch["abc"].shape == (2, 3)  # lengths: the coordinate channels
    params = batch["abc_std"].numpy() * np.array(norms["abc_std"]) + np.array(norms["abc_mean"])
    np.testing.assert_allclose(params[:, 3:], [c.lattice.angles for c in crystals], atol=1e-3)


def test_site_frame_augmentation_grids_a_random_atom_at_the_origin():
    """--site-frames: a seeded share of training samples has another atom at the origin voxel."""
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    entries = [Entry("cscl", cscl, {}, "cscl")]
    vocab = Vocabulary.from_structures([cscl])
    norms = voxel_normalisers(entries, None, [1.0, 1.0, 1.0])
    data = VoxelDataset(entries, Voxeliser(VoxelConfig(d=8, max_voxel=1.0), vocab), norms)

    def origin_labels(share: float, seeds) -> set[str]:
        data.site_frames = share
        labels = data.collate([(0, s) for s in seeds])["labels"][:, 0, 0, 0]
        return {vocab.symbols[int(k) - 1] for k in labels}  # class 0 is background

    assert origin_labels(0.0, range(20)) == {"Cs"}  # off: the entry's own frame
    assert origin_labels(1.0, range(20)) == {"Cs", "Cl"}  # on: either atom, by seed
    assert origin_labels(1.0, [None] * 4) == {"Cs"}  # unseeded (validation) samples never move
    first = data.collate([(0, 3)])["density"]
    np.testing.assert_array_equal(first, data.collate([(0, 3)])["density"])  # same seed, same frame


def test_a_six_parameter_model_set_decodes_cells_with_their_angles(tmp_path):
    models = ModelSet.load(write_tiny_model_set(tmp_path, lattice_params=6), device="cpu")
    assert models.n_lattice == 6
    z = models.encode([monoclinic_nacl()], frame_search=False)
    grids = models.decode_grids(z)
    assert grids["abc"].shape == (1, 6)
    # untrained weights draw no atoms: the decoder's density is replaced by a real crystal's, its
    # lattice head (random, hence not 90°) is left as it is
    peaks = torch.from_numpy(normalise_density(density_grid(monoclinic_nacl(), models.voxel_cfg)))
    decode = models.vae.decode

    def decode_with_atoms(z, cond):
        out = decode(z, cond)
        out["density"] = peaks.expand(len(z), 1, *peaks.shape).clone()
        return out

    models.vae.decode = decode_with_atoms
    rng = np.random.default_rng(0)
    result = models.decode(rng.standard_normal((3, models.latent_dim)).astype(np.float32), predict=False)
    assert all(r.structure is not None for r in result), [r.error for r in result]
    for r in result:  # the cell a user gets has the head's angles, not 90°
        assert len(r.structure) == 2
        np.testing.assert_allclose(r.structure.lattice.angles, r.abc[3:], atol=1e-3)
        np.testing.assert_allclose(r.structure.lattice.abc, r.abc[:3], atol=1e-3)
    assert any(abs(a - 90.0) > 0.1 for r in result for a in r.structure.lattice.angles)


def test_a_primitive_cell_set_encodes_a_centred_crystal_on_its_reduced_cell(tmp_path):
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    conventional = ModelSet.load(write_tiny_model_set(tmp_path / "c", lattice_params=6), device="cpu")
    primitive = ModelSet.load(write_tiny_model_set(tmp_path / "p", lattice_params=6, cell="primitive"), device="cpu")
    assert primitive.voxel_cfg.cell == "primitive"  # read back from the checkpoint
    assert len(conventional.gridded_cells([nacl])[0]) == 8
    (cell,) = primitive.training_frames([nacl])
    assert len(cell) == 2 and cell.composition.reduced_formula == "NaCl"
    np.testing.assert_allclose(cell.lattice.angles, [60.0, 60.0, 60.0], atol=1e-6)
    # encoding reads the reduced cell: the 8-atom file and its 2-atom cell are one crystal to it
    z_file, z_cell = (primitive.encode([s], frame_search=False) for s in (nacl, cell))
    np.testing.assert_allclose(z_file, z_cell, atol=1e-5)
    assert not np.allclose(z_file, conventional.encode([nacl], frame_search=False), atol=1e-3)


def test_shipped_sets_resolve_by_name_and_unknown_names_are_refused(tmp_path):
    names = dict(shipped_model_sets())
    assert names[SHIPPED_NAME] == default_models_dir()
    assert resolve_models(None) == default_models_dir()
    assert resolve_models(SHIPPED_NAME) == default_models_dir()
    assert resolve_models(str(tmp_path)) == tmp_path
    with pytest.raises(ICSGError, match="perov_5"):
        resolve_models("no_such_set")


def test_out_of_domain_advice_names_a_covering_set_or_says_none_does():
    # perov_5 covers a cubic perovskite, so advice for it (loaded elsewhere) names perov_5
    srtio3 = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                       [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    assert domain_advice(srtio3, loaded="/elsewhere") == (
        f"use the shipped model set {SHIPPED_NAME} (also covering it: mp_20)")  # fmt: skip
    uranium = Structure(Lattice.monoclinic(4.0, 5.0, 6.0, 100.0), ["Og"], [[0, 0, 0]])
    assert domain_advice(uranium) == "no shipped model set covers it yet"


def test_decoded_peaks_are_kept_apart_with_the_cell_metric():
    """On a hexagonal grid, 3 steps along a and 3 along b are 3 |a + b| / d = 3 a / d apart (gamma =
    120°), not 3 sqrt(2) a / d: the (3, 3) step vectors give pymatgen's distance."""
    from core.segment import _periodic_distances

    lattice = Lattice.hexagonal(2.46, 6.7)
    d = 16
    a, b = np.array([[3.0, 3.0, 0.0]]), np.array([[0.0, 0.0, 15.0]])
    expected = lattice.get_distance_and_image(a[0] / d, b[0] / d)[0]
    got = _periodic_distances(a, b, d, lattice.matrix / d)[0, 0]
    assert got == pytest.approx(expected, rel=1e-6)
    # the orthogonal form (lengths only) would be wrong here
    assert abs(_periodic_distances(a, b, d, np.array(lattice.abc) / d)[0, 0] - expected) > 0.05


def test_a_model_set_decodes_with_the_settings_its_meta_names(tmp_path):
    import json

    root = write_tiny_model_set(tmp_path, lattice_params=6)
    assert ModelSet.load(root, device="cpu").symprec == 0.3  # the perov_5 choices by default
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["decoding"] = {"frame_search": False, "refine_steps": 0, "symprec": None}
    meta_path.write_text(json.dumps(meta))
    models = ModelSet.load(root, device="cpu")
    assert (models.frame_search, models.refine_steps, models.symprec) == (False, 0, None)
    calls = []
    models._refine = lambda results, steps: calls.append(steps)
    models.decode(np.zeros((1, models.latent_dim), np.float32), predict=False)
    assert calls == []  # refine_steps 0: no refinement
    models.decode(np.zeros((1, models.latent_dim), np.float32), predict=False, refine_steps=5)
    assert calls == [5]


def test_a_model_set_can_type_atoms_without_its_count_head(tmp_path, monkeypatch):
    import json

    import core.decoding

    root = write_tiny_model_set(tmp_path, lattice_params=6, comp_head=True)
    seen = []
    real = core.decoding.find_sites
    monkeypatch.setattr(core.decoding, "find_sites", lambda *a, **kw: seen.append(kw["counts"]) or real(*a, **kw))
    z = np.zeros((1, ModelSet.load(root, device="cpu").latent_dim), np.float32)
    ModelSet.load(root, device="cpu").decode(z, predict=False)
    assert seen[-1] is not None  # the count head's composition by default
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["decoding"] = {"counts": False}
    meta_path.write_text(json.dumps(meta))
    models = ModelSet.load(root, device="cpu")
    assert not models.use_counts
    models.decode(z, predict=False)
    assert seen[-1] is None


def test_a_model_set_samples_at_the_spread_its_meta_names(tmp_path):
    import json

    root = write_tiny_model_set(tmp_path)
    assert ModelSet.load(root, device="cpu").temperature == 1.0  # q(z) as fitted by default
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["sampling"] = {"temperature": 0.5}
    meta_path.write_text(json.dumps(meta))
    models = ModelSet.load(root, device="cpu")
    z = models.sample(2000, seed=1, prior="normal")
    assert models.temperature == 0.5 and abs(float(z.std()) - 0.5) < 0.01
    assert abs(float(models.sample(2000, temperature=1.0, seed=1, prior="normal").std()) - 1.0) < 0.02


def graphite() -> Structure:
    return Structure(Lattice.hexagonal(2.464, 6.711), ["C"] * 4,
                     [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])  # fmt: skip


def test_a_carbon_crystal_outside_perov_5_is_sent_to_carbon_24():
    assert domain_advice(graphite(), loaded=default_models_dir()) == (
        "use the shipped model set carbon_24 (also covering it: mp_20); it reconstructs 93% of its held-out crystals")  # fmt: skip
    assert domain_advice(hexagonal_zno()) == "use the shipped model set mp_20; it reconstructs 34% of its held-out crystals"


def test_the_shipped_carbon_set_reads_a_hexagonal_crystal_whatever_its_origin():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    models = ModelSet.load(resolve_models("carbon_24"), device="cpu")
    assert models.n_lattice == 6 and models.origin == "site" and models.domain_problem(graphite()) is None
    shifted = Structure(graphite().lattice, graphite().species, (graphite().frac_coords + [0.31, 0.17, 0.43]) % 1.0)
    out = models.reconstruct([graphite(), shifted], labels=False)
    assert all(r.structure is not None for r in out), [r.error for r in out]
    assert {el.symbol for r in out for el in r.structure.composition.elements} == {"C"}
    assert StructureMatcher().fit(out[0].structure, out[1].structure)  # the same answer for both files


def test_generation_of_an_mp_20_set_is_scored_with_cdvaes_mp_20_cutoffs(tmp_path):
    """CDVAE scores COV on MP-20 at structure 0.4 / composition 10 (0.2 / 4 on perov_5 and carbon)."""
    import json

    from core.evaluation import evaluate_generation_run
    from core.structures import Entry

    root = write_tiny_model_set(tmp_path, lattice_params=6)
    ref = [Entry("zno", hexagonal_zno(), {}, "zno")]
    quick = {"n": 2, "novelty": False}
    assert evaluate_generation_run(ModelSet.load(root, device="cpu"), ref, **quick)[0]["cov_cutoffs"] == {
        "struct": 0.2, "comp": 4.0}  # fmt: skip
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["domain"] = {"lattice": "any", "dataset": "mp_20"}
    meta_path.write_text(json.dumps(meta))
    metrics, _ = evaluate_generation_run(ModelSet.load(root, device="cpu"), ref, **quick)
    assert metrics["cov_cutoffs"] == {"struct": 0.4, "comp": 10.0}


def test_advice_to_use_a_weak_set_gives_its_measured_match_rate(tmp_path, monkeypatch):
    import json

    import core.model_sets

    root = write_tiny_model_set(tmp_path / "weak", lattice_params=6)
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["domain"] = {"lattice": "any", "dataset": "weak", "reconstruction_match": 0.071}
    meta_path.write_text(json.dumps(meta))
    monkeypatch.setattr(core.model_sets, "shipped_model_sets", lambda: [("weak", root)])
    cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert domain_advice(cscl) == "use the shipped model set weak; it reconstructs 7% of its held-out crystals"


def test_the_shipped_carbon_set_samples_only_crystals_below_its_energy_ceiling():
    """What `icsg3d generate --models carbon_24` writes: relaxed decodes at or below the set's
    ceiling (-6.5 eV/atom in Tersoff's potential; real carbon_24 lies at -7.4 to -5.8); with
    --max-energy off (max_energy None) the draws are the fitted prior's own."""
    from core.relax import energies_per_atom

    models = ModelSet.load(resolve_models("carbon_24"), device="cpu")
    assert models.max_energy == -6.5 and models.relax
    z = models.sample(4, seed=0)
    energy = energies_per_atom([r.structure for r in models.decode(z, predict=False, labels=False)])
    assert (energy <= -6.5 + 1e-6).all(), energy
    models.max_energy = None
    assert np.allclose(models.sample(4, seed=0), models.prior.sample(4, models.temperature, 0))
