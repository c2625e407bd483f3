"""The U-Net's peak features (core.models.peaks): exact for an isolated Gaussian, any offset."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from core.checkpoint import init_from_checkpoint, save_checkpoint
from core.models.blocks import make_input
from core.models.peaks import element_templates, peak_estimates, voxel_spacing
from core.models.unet import UNet3D, UNetConfig
from core.voxel import VoxelConfig, Voxeliser, denormalise_density, normalise_density


def _lone_atom_input(symbol: str, frac: tuple[float, float, float], abc=(6.0, 6.4, 5.6), d: int = 16):
    """U-Net input (1, 4, d, d, d) of one atom in an orthorhombic cell, and the cell's VoxelConfig."""
    cfg = VoxelConfig(d=d)
    structure = Structure(Lattice.orthorhombic(*abc), [symbol], [frac])
    density, _, lengths = Voxeliser(cfg).batch([structure])
    return make_input(normalise_density(torch.from_numpy(density)), torch.from_numpy(lengths)), cfg


@pytest.mark.parametrize(("symbol", "frac"), [("Cs", (0.37, 0.52, 0.41)), ("Ti", (0.5, 0.5, 0.5)),
                                              ("Bi", (0.03, 0.97, 0.5))])  # fmt: skip
def test_every_voxel_of_a_lone_atom_reads_its_amplitude_and_sigma(symbol: str, frac) -> None:
    x, cfg = _lone_atom_input(symbol, frac)
    spacing = voxel_spacing(x)
    assert torch.allclose(spacing, torch.tensor([[6.0, 6.4, 5.6]]) / 16, atol=1e-6)
    log_amp, sigma = peak_estimates(denormalise_density(x[:, 0]), spacing)
    s = cfg.sigma(symbol)
    z = {"Cs": 55, "Ti": 22, "Bi": 83}[symbol]
    expected = math.log(z * (2 * math.pi) ** -1.5 / s**3)
    # the voxels within one sigma of the atom, wherever it sits between grid points
    grid = np.stack(np.meshgrid(*[np.arange(16) / 16] * 3, indexing="ij"), axis=-1)
    delta = (grid - np.array(frac) + 0.5) % 1.0 - 0.5
    near = torch.from_numpy(np.linalg.norm(delta * np.array([6.0, 6.4, 5.6]), axis=-1) < s)
    assert near.sum() >= 4
    # float32 density: log differences of nearby points carry ~1e-5 relative error
    assert torch.allclose(log_amp[0][near], torch.tensor(expected), atol=5e-3)
    assert torch.allclose(sigma[0][near], torch.tensor(s, dtype=torch.float32), atol=5e-3)


def test_neighbouring_elements_read_apart_where_sampled_heights_do_not() -> None:
    """Pb and Bi: their sampled maxima differ by little, their (amplitude, sigma) by much more."""
    readings = {}
    for symbol in ("Pb", "Bi"):
        x, _ = _lone_atom_input(symbol, (0.41, 0.45, 0.53))
        log_amp, sigma = peak_estimates(denormalise_density(x[:, 0]), voxel_spacing(x))
        peak = int(x[0, 0].argmax())
        readings[symbol] = (float(log_amp.flatten()[peak]), float(sigma.flatten()[peak]))
    assert abs(readings["Pb"][0] - readings["Bi"][0]) > 0.1


def test_a_unet_warm_started_with_peak_features_starts_as_the_old_function(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = UNetConfig(n_classes=3, base=4, levels=1, density_features=3)
    old = UNet3D(cfg).eval()
    save_checkpoint(tmp_path / "unet", old, "unet", cfg)
    grown = UNet3D(UNetConfig(**{**cfg.to_dict(), "peak_features": 2})).eval()
    assert init_from_checkpoint(grown, tmp_path / "unet", "unet") == ["inc.0.0.weight"]
    x, _ = _lone_atom_input("Sr", (0.3, 0.6, 0.2), d=8)
    with torch.no_grad():
        before, after = old(x), grown(x)
        assert torch.allclose(before["logits"], after["logits"], atol=1e-6)
        grown.inc[0][0].weight[:, 4 + 6 :] += 0.1  # the peak channels are live
        assert not torch.allclose(grown(x)["logits"], before["logits"], atol=1e-4)
    with pytest.raises(ValueError, match="coordinate channels"):
        UNet3D(UNetConfig(in_channels=1, peak_features=2))


def test_the_template_evidence_alone_types_a_lone_atom_among_its_neighbours() -> None:
    """With the network's own logits flat and the gate open, each atom voxel reads its element."""
    symbols = ["Sn", "Sb", "Pb", "Bi", "Ga", "Ge"]
    unet = UNet3D(UNetConfig(n_classes=len(symbols) + 1, base=4, levels=1, peak_templates=True)).eval()
    unet.set_templates(element_templates(symbols, VoxelConfig(d=16).sigma))
    with torch.no_grad():
        unet.head.weight.zero_()
        unet.head.bias.zero_()
        unet.template_gate.bias.fill_(5.0)
    for k, symbol in enumerate(symbols, start=1):
        x, cfg = _lone_atom_input(symbol, (0.37, 0.52, 0.41))
        with torch.no_grad():
            logits = unet(x)["logits"][0]
        peak = np.unravel_index(int(x[0, 0].argmax()), x.shape[2:])
        # background gets no evidence (the network's own logits tell atom from background)
        assert int(logits[(slice(1, None), *peak)].argmax()) + 1 == k, symbol
    with pytest.raises(ValueError, match="templates must be"):
        unet.set_templates(torch.zeros(3, 2))


def test_the_expanded_template_distance_equals_the_direct_one() -> None:
    from core.models.peaks import MAX_TEMPLATE_D2, TEMPLATE_SCALE, template_log_likelihood

    torch.manual_seed(0)
    templates = element_templates(["O", "Ti", "Sr", "Ge", "Ga", "Bi"], VoxelConfig(d=16).sigma)
    # estimates near the templates (where precision matters) and far from them
    near = templates[1:][torch.randint(0, 6, (2, 8, 8, 8))] + 0.01 * torch.randn(2, 8, 8, 8, 2)
    log_amp, sigma = near[..., 0], near[..., 1]
    log_amp[:, :4] = torch.empty(2, 4, 8, 8).uniform_(-4, 6)
    direct = ((log_amp[:, None] - templates[:, 0, None, None, None]) / TEMPLATE_SCALE[0]) ** 2
    direct = direct + ((sigma[:, None] - templates[:, 1, None, None, None]) / TEMPLATE_SCALE[1]) ** 2
    direct = -0.5 * direct.clamp_max(MAX_TEMPLATE_D2)
    direct[:, 0] = 0.0  # background: no template
    got = template_log_likelihood(log_amp, sigma, templates)
    assert got.shape == (2, 7, 8, 8, 8)
    assert torch.allclose(got, direct, atol=0.01)
