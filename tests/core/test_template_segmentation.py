"""The untrained peak-template segmentation: any cell shape, no U-Net (core.segmentation,
core.models.peaks). Checked on the true densities of tiny hexagonal, monoclinic and triclinic
crystals, where the answer is the crystal itself."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from core.elements import Vocabulary
from core.models.peaks import element_templates, peak_estimates
from core.pipeline import ModelSet
from core.segmentation import segment_with_templates
from core.voxel import VoxelConfig, Voxeliser
from tests.tiny_models import write_tiny_model_set

CFG = VoxelConfig(d=16, max_voxel=0.55)
VOCAB = Vocabulary.default()


def zno() -> Structure:
    return Structure(Lattice.hexagonal(3.25, 5.2), ["Zn", "Zn", "O", "O"],
                     [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.88]])  # fmt: skip


def triclinic() -> Structure:
    return Structure(Lattice.from_parameters(4.1, 4.6, 5.0, 75, 82, 101), ["Na", "Cl", "K", "Br"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0.2], [0.1, 0.5, 0.6]])  # fmt: skip


def monoclinic() -> Structure:
    return Structure(Lattice.monoclinic(5.0, 4.2, 6.0, 105), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip


def _frac_error(frac: np.ndarray, structure: Structure, symbol: str) -> float:
    """Distance (Å) from a blob to the nearest true site of its element."""
    sites = [s for s in structure if s.specie.symbol == symbol]
    return min(structure.lattice.get_distance_and_image(frac, s.frac_coords)[0] for s in sites)


@pytest.mark.parametrize("make", [zno, triclinic, monoclinic])
def test_peak_templates_find_and_type_every_atom_of_a_skewed_cell(make):
    crystal = make()
    rho = Voxeliser(CFG, VOCAB)(crystal).density
    seg = segment_with_templates(SimpleNamespace(vocab=VOCAB, voxel_cfg=CFG, source="t"), rho, crystal.lattice.matrix)
    assert seg.method == "peak templates"
    assert sorted(b.symbol for b in seg.blobs) == sorted(s.specie.symbol for s in crystal)
    assert max(_frac_error(b.frac, crystal, b.symbol) for b in seg.blobs) < 0.25  # Å: within half a voxel
    assert min(b.confidence for b in seg.blobs) > 0.9


def test_peak_estimates_need_the_cell_metric_on_a_skewed_grid():
    """One Zn atom off the grid points of a hexagonal cell: with the axes' cosines the fitted
    amplitude at the voxels around it is Zn's own; summing the axes' corrections as if they were
    orthogonal (the U-Net's 90° form) misses it."""
    frac = np.array([4.5, 9.5, 7.2]) / CFG.d  # half a step from the grid points along a and b
    crystal = Structure(Lattice.hexagonal(6.0, 6.0), ["Zn"], [frac])
    rho = Voxeliser(CFG, VOCAB)(crystal).density
    lattice = crystal.lattice.matrix
    units = lattice / np.linalg.norm(lattice, axis=1, keepdims=True)
    spacing = torch.tensor(np.linalg.norm(lattice, axis=1)[None] / CFG.d, dtype=torch.float32)
    grid = torch.tensor(rho[None], dtype=torch.float32)
    true_log_amp, true_sigma = element_templates(["Zn"], CFG.sigma)[1].tolist()
    near = tuple(np.floor(frac * CFG.d).astype(int))  # a corner voxel of the atom
    skewed_amp, skewed_sigma = (t[0][near].item() for t in peak_estimates(grid, spacing, torch.tensor((units @ units.T)[None])))
    flat_amp, _ = (t[0][near].item() for t in peak_estimates(grid, spacing))
    assert abs(skewed_amp - true_log_amp) < 0.01 and abs(skewed_sigma - true_sigma) < 0.01
    assert abs(flat_amp - true_log_amp) > 0.03  # three times the templates' scale


def test_a_model_set_reads_skewed_cells_with_templates_and_90_degree_cells_with_its_unet(tmp_path):
    models = ModelSet.load(write_tiny_model_set(tmp_path / "set"), device="cpu")
    crystal = Structure(Lattice.hexagonal(3.0, 4.0), ["Na", "Cl"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]])
    rho = Voxeliser(models.voxel_cfg, models.vocab)(crystal).density
    assert models.segment(rho, crystal.lattice.matrix).method == "peak templates"
    assert models.segment(rho, np.diag([4.0, 4.0, 4.0])).method == "U-Net"
