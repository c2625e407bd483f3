"""core.relax: Tersoff carbon energies and forces as ASE computes them, and relaxations that give
real bond lengths while keeping the cell, species and order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from ase.calculators.tersoff import Tersoff, TersoffParameters
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from core.geometry import min_pair_distance
from core.pipeline import Decoded, ModelSet
from core.relax import SKIN, TERSOFF_CARBON, _neighbours, relax_structures, tersoff_energies
from tests.tiny_models import write_tiny_model_set

DIAMOND_BOND = 1.5445  # Å: Tersoff's carbon diamond, a = 3.5668 Å (Tersoff 1989, Table I)


def _diamond(a: float = 3.5668) -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), ["C"], [[0, 0, 0]])


def _rattled(structure: Structure, amount: float, seed: int) -> Structure:
    rng = np.random.default_rng(seed)
    return Structure(structure.lattice, structure.species, structure.cart_coords + rng.normal(0, amount, (len(structure), 3)),
                     coords_are_cartesian=True)  # fmt: skip


def _triclinic_carbon() -> Structure:
    lattice = Lattice.from_parameters(2.6, 3.1, 4.4, 83.0, 97.0, 112.0)
    frac = [[0.0, 0.0, 0.0], [0.31, 0.22, 0.28], [0.55, 0.61, 0.49], [0.12, 0.74, 0.71]]
    return Structure(lattice, ["C"] * 4, frac)


@pytest.mark.parametrize("structure", [_rattled(_diamond(), 0.08, 0), _triclinic_carbon()], ids=["diamond", "triclinic"])
def test_tersoff_energy_and_forces_match_ase(structure: Structure) -> None:
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = Tersoff({("C", "C", "C"): TersoffParameters(*dataclasses.astuple(TERSOFF_CARBON))})
    nb = _neighbours([structure], TERSOFF_CARBON.R + TERSOFF_CARBON.D + SKIN)
    x = torch.tensor(structure.cart_coords, dtype=torch.float64, requires_grad=True)
    energy = tersoff_energies(x, nb, torch.zeros(len(structure), dtype=torch.long), 1)
    forces = -torch.autograd.grad(energy.sum(), x)[0].numpy()
    assert energy.detach()[0].item() == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(forces, atoms.get_forces(), atol=1e-8)


@pytest.mark.parametrize("mode", ["grad", "no_grad", "inference_mode"])
def test_a_rattled_diamond_relaxes_to_tersoffs_bond_keeping_cell_and_species(mode: str) -> None:
    start = _rattled(_diamond(), 0.12, 1)
    assert abs(min_pair_distance(start) - DIAMOND_BOND) > 0.05
    context = {"grad": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}[mode]
    with context():  # the app and batch commands decode under no_grad / inference_mode
        (out,) = relax_structures([start], steps=300, fmax=0.01)
    dist = np.array(out.distance_matrix)
    np.fill_diagonal(dist, np.inf)
    assert dist.min(axis=1) == pytest.approx(np.full(len(out), DIAMOND_BOND), abs=0.005)
    assert out.lattice == start.lattice
    assert [s.symbol for s in out.species] == [s.symbol for s in start.species]


def test_crystals_of_other_elements_and_failed_decodes_pass_through_unchanged() -> None:
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    start = _rattled(_diamond(), 0.12, 2)
    out = relax_structures([nacl, None, start])
    assert out[0] is nacl and out[1] is None
    assert not np.allclose(out[2].cart_coords, start.cart_coords)  # the carbon crystal moved
    with pytest.raises(ValueError, match="unknown potential"):
        relax_structures([start], potential="lj")


def test_a_model_set_with_a_relaxation_relaxes_what_it_decodes(tmp_path) -> None:
    model_set = ModelSet.load(write_tiny_model_set(tmp_path), device="cpu")
    assert model_set.relax is None  # no "relax" in its meta's decoding: off
    start = _rattled(_diamond(), 0.12, 3)
    grid = np.zeros((2, 2, 2))
    results = [Decoded(density=grid, abc=np.ones(3), structure=start), Decoded(density=grid, abc=np.ones(3))]
    model_set.relax = {"potential": "tersoff_c", "steps": 300, "fmax": 0.01}
    model_set._relax(results)
    assert min_pair_distance(results[0].structure) == pytest.approx(DIAMOND_BOND, abs=0.005)
    assert results[1].structure is None


def test_no_relax_and_max_energy_set_a_sets_relaxation_and_ceiling_in_the_commands(tmp_path) -> None:
    import argparse
    import json

    from core.cli.common import add_model_options, add_prior_options, load_model_set
    from core.errors import ICSGError

    root = write_tiny_model_set(tmp_path)
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["decoding"] = {"relax": {"potential": "tersoff_c", "steps": 50}}
    meta_path.write_text(json.dumps(meta))
    parser = argparse.ArgumentParser()
    add_model_options(parser)
    base = ["--models", str(root), "--device", "cpu", "--out", str(tmp_path / "out")]
    assert load_model_set(parser.parse_args(base)).relax == {"potential": "tersoff_c", "steps": 50}
    assert load_model_set(parser.parse_args([*base, "--no-relax"])).relax is None
    # --max-energy: the set's own ceiling unless given; 'off' removes it; a number replaces it
    add_prior_options(parser)
    meta["sampling"] = {"max_energy": -6.5}
    meta_path.write_text(json.dumps(meta))
    assert load_model_set(parser.parse_args(base)).max_energy == -6.5
    assert load_model_set(parser.parse_args([*base, "--max-energy", "off"])).max_energy is None
    assert load_model_set(parser.parse_args([*base, "--max-energy", "-7"])).max_energy == -7.0
    with pytest.raises(ICSGError, match="--max-energy needs a set that relaxes"):
        load_model_set(parser.parse_args([*base, "--max-energy", "-7", "--no-relax"]))
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--max-energy", "low"])


def test_energies_per_atom_read_tersoffs_diamond_and_skip_other_crystals() -> None:
    from core.relax import energies_per_atom

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    energy = energies_per_atom([_diamond(), nacl, None, _rattled(_diamond(), 0.2, 4)])
    assert energy[0] == pytest.approx(-7.3705, abs=1e-3)  # Tersoff 1989: diamond cohesive energy
    assert np.isnan(energy[1]) and np.isnan(energy[2])
    assert energy[3] > energy[0] + 0.1


def test_a_set_with_an_energy_ceiling_samples_only_latents_that_decode_below_it(tmp_path, monkeypatch) -> None:
    model_set = ModelSet.load(write_tiny_model_set(tmp_path), device="cpu")
    model_set.relax, model_set.max_energy = {"potential": "tersoff_c"}, -7.0

    def decode(z, **_):  # noqa: ANN001, ANN003, ANN202 - diamond where z[0] > 0, a squeezed cell elsewhere
        return [Decoded(density=np.zeros(1), abc=np.ones(3), structure=_diamond() if v[0] > 0 else _diamond(2.9))
                for v in z]  # fmt: skip

    monkeypatch.setattr(model_set, "decode", decode)
    z = model_set.sample(10, seed=3, prior="normal")
    assert z.shape == (10, model_set.latent_dim) and (z[:, 0] > 0).all()
    np.testing.assert_array_equal(z, model_set.sample(10, seed=3, prior="normal"))  # seeded
    model_set.max_energy = -8.0  # nothing decodes that low: the lowest fill in, with a warning
    assert model_set.sample(4, seed=3, prior="normal").shape == (4, model_set.latent_dim)
