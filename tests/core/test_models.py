"""Shape, behaviour and overfit tests of the voxel networks (tiny grids, CPU, seconds)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.models.blocks import COORD_SCALE, PeriodicConv3d, PointwiseConv3d, coord_channels, make_input
from core.models.unet import UNet3D, UNetConfig, class_weights_from_counts, unet_loss
from core.models.vae import CondVAE3D, VAEConfig, freeze, kl_divergence, vae_loss


def _toy_grids(d: int, n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n periodic 'crystals': Gaussian blobs of 2 species on a d^3 grid.

    Returns density (n, d, d, d) (normalised-like, >= 0), labels (n, d, d, d) in {0,1,2},
    abc (n, 3) in Å.
    """
    g = torch.Generator().manual_seed(seed)
    frac = torch.arange(d) / d
    dens = torch.zeros(n, d, d, d)
    labels = torch.zeros(n, d, d, d, dtype=torch.long)
    best = torch.full((n, d, d, d), math.inf)
    for b in range(n):
        sites = [(torch.rand(3, generator=g), 1 + (k % 2)) for k in range(2)]
        for pos, cls in sites:
            diff = [((frac - pos[i] + 0.5) % 1.0) - 0.5 for i in range(3)]
            r2 = diff[0].view(d, 1, 1) ** 2 + diff[1].view(1, d, 1) ** 2 + diff[2].view(1, 1, d) ** 2
            dens[b] += cls * torch.exp(-r2 / (2 * 0.12**2))
            mask = (r2 < 0.15**2) & (r2 < best[b])
            labels[b][mask] = cls
            best[b] = torch.minimum(best[b], torch.where(mask, r2, best[b]))
    abc = 3.5 + 2 * torch.rand(n, 3, generator=g)
    return dens, labels, abc


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is faster and immune to a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- blocks --------------------------------------------------------------------------------
def test_coord_channels_carry_the_lattice() -> None:
    abc = torch.tensor([[4.0, 5.0, 6.0], [8.0, 5.0, 6.0]])
    c = coord_channels(abc, 8)
    assert c.shape == (2, 3, 8, 8, 8)
    assert torch.isclose(c[0, 0, 0, 3, 5], torch.tensor(-0.5 * 4.0 / COORD_SCALE))
    assert torch.isclose(c[0, 0, 4, 0, 0], torch.tensor(0.0))
    # channel 0 varies only along axis 0; steps are (1/d) * a / scale
    assert torch.allclose(c[0, 0, 1] - c[0, 0, 0], torch.full((8, 8), 4.0 / 8 / COORD_SCALE))
    assert torch.allclose(c[0, 2, :, :, 1] - c[0, 2, :, :, 0], torch.full((8, 8), 6.0 / 8 / COORD_SCALE))
    assert torch.allclose(c[1, 0], 2 * c[0, 0]) and torch.allclose(c[1, 1:], c[0, 1:])
    assert c.abs().max() <= 1.0
    x = make_input(torch.rand(2, 8, 8, 8), abc)
    assert x.shape == (2, 4, 8, 8, 8) and torch.equal(x[:, 1:], c)
    with pytest.raises(ValueError):
        coord_channels(torch.ones(2, 2), 8)


@pytest.mark.parametrize("batch", [1, 3])
def test_periodic_conv_matches_torch_circular(batch: int) -> None:
    torch.manual_seed(0)
    ours = PeriodicConv3d(3, 5, 3)
    ref = nn.Conv3d(3, 5, 3, padding=1, padding_mode="circular")
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(batch, 3, 8, 8, 8, requires_grad=True)
    y = ours(x)
    assert torch.allclose(y, ref(x), atol=1e-5)
    y.sum().backward()
    assert x.grad is not None and ours.weight.grad is not None
    # periodic: rolling the input rolls the output
    xr = torch.roll(x.detach(), shifts=(3, -2, 5), dims=(2, 3, 4))
    assert torch.allclose(ours(xr), torch.roll(y.detach(), shifts=(3, -2, 5), dims=(2, 3, 4)), atol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_conv_matches_conv3d(bias: bool) -> None:
    torch.manual_seed(0)
    ours = PointwiseConv3d(3, 7, bias=bias)
    ref = nn.Conv3d(3, 7, 1, bias=bias)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 4, 6, 8, requires_grad=True)
    y = ours(x)
    assert y.shape == (2, 7, 4, 6, 8) and torch.allclose(y, ref(x), atol=1e-5)
    y.square().sum().backward()
    gx, gw = x.grad.clone(), ours.weight.grad.clone()
    x.grad = None
    ref(x).square().sum().backward()
    assert torch.allclose(gx, x.grad, atol=1e-4) and torch.allclose(gw, ref.weight.grad, atol=1e-3)


# -- U-Net ---------------------------------------------------------------------------------
def _tiny_unet(n_classes: int = 3, **kw) -> UNet3D:
    return UNet3D(UNetConfig(n_classes=n_classes, base=4, levels=2, **kw))


def test_unet_shapes_and_features() -> None:
    net = _tiny_unet(5).eval()
    x = torch.randn(2, 4, 16, 16, 16)
    out = net(x)
    assert out["logits"].shape == (2, 5, 16, 16, 16)
    assert out["occupancy"].shape == (2, 1, 16, 16, 16)
    feats = net.features(x)
    assert [tuple(f.shape) for f in feats] == [(2, 4, 16, 16, 16), (2, 8, 8, 8, 8), (2, 16, 4, 4, 4)]
    with pytest.raises(ValueError):
        net(torch.randn(1, 4, 10, 10, 10))  # not divisible by 2**levels
    with pytest.raises(ValueError):
        net(torch.randn(1, 3, 16, 16, 16))


def test_unet_is_translation_equivariant_on_the_periodic_grid() -> None:
    torch.manual_seed(1)
    net = _tiny_unet().eval()
    x = torch.randn(1, 4, 16, 16, 16)
    with torch.no_grad():
        y = net(x)["logits"]
        y_shift = net(torch.roll(x, shifts=(4, 8, -4), dims=(2, 3, 4)))["logits"]
    assert torch.allclose(y_shift, torch.roll(y, shifts=(4, 8, -4), dims=(2, 3, 4)), atol=1e-4)


def test_unet_config_round_trip() -> None:
    cfg = UNetConfig(n_classes=7, base=8)
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        UNetConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_unet_loss_really_applies_class_weights() -> None:
    torch.manual_seed(0)
    out = {"logits": torch.randn(2, 3, 4, 4, 4), "occupancy": torch.randn(2, 1, 4, 4, 4)}
    labels = torch.randint(0, 3, (2, 4, 4, 4))
    base, parts = unet_loss(out, labels, torch.ones(3))
    unweighted, _ = unet_loss(out, labels, None)
    assert torch.isclose(base, unweighted)
    reweighted, _ = unet_loss(out, labels, torch.tensor([0.1, 1.0, 10.0]))
    assert not torch.isclose(base, reweighted)
    # the CE part equals the hand-computed weighted mean
    w = torch.tensor([0.1, 1.0, 10.0])
    ce = F.cross_entropy(out["logits"], labels, reduction="none")
    expect = (w[labels] * ce).sum() / w[labels].sum()
    bce = F.binary_cross_entropy_with_logits(out["occupancy"], (labels != 0).float().unsqueeze(1))
    assert torch.isclose(reweighted, expect + bce, atol=1e-6)
    assert set(parts) == {"ce", "bce"}


def test_class_weights_from_counts() -> None:
    w = class_weights_from_counts([9000, 900, 100, 0])
    assert w.dtype == torch.float32 and w.shape == (4,)
    assert 0 < w[0] < w[1] < w[2]
    assert w[3] == 1.0  # absent class: never a target
    f = torch.tensor([0.9, 0.09, 0.01])
    assert torch.isclose((f * w[:3]).sum(), torch.tensor(1.0), atol=1e-4)  # mean weight per voxel
    clipped = class_weights_from_counts([1_000_000, 1], clip=(0.05, 5.0))
    assert clipped[0] >= 0.05 and clipped[1] <= 5.0
    with pytest.raises(ValueError):
        class_weights_from_counts([-1, 2])


def test_unet_overfits_two_crystals() -> None:
    torch.manual_seed(0)
    dens, labels, abc = _toy_grids(8, n=2)
    x = make_input(dens, abc)
    net = UNet3D(UNetConfig(n_classes=3, base=8, levels=2))
    weights = class_weights_from_counts(torch.bincount(labels.flatten(), minlength=3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss, _ = unet_loss(net(x), labels, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    net.eval()
    with torch.no_grad():
        out = net(x)
    assert float(loss.detach()) < 0.05 * first
    assert torch.equal(out["logits"].argmax(1), labels)
    assert torch.equal(out["occupancy"][:, 0] > 0, labels != 0)


# -- VAE -----------------------------------------------------------------------------------
def _tiny_vae_cfg(**kw) -> VAEConfig:
    base = dict(n_classes=3, latent=8, d=8, widths=(8, 16), dec_widths=(16, 8), hidden=32, cond_dim=4)
    base.update(kw)
    return VAEConfig(**base)


def test_vae_shapes_and_modes() -> None:
    torch.manual_seed(0)
    cfg = _tiny_vae_cfg()
    vae = CondVAE3D(cfg)
    x = torch.randn(2, 4, 8, 8, 8)
    cond = torch.tensor([3, 10])
    abc = torch.randn(2, 3)
    labels = torch.randint(0, 3, (2, 8, 8, 8))
    mu, logvar = vae.encode(x, cond, abc, labels)
    assert mu.shape == logvar.shape == (2, 8)
    dec = vae.decode(mu, cond)
    assert dec["density"].shape == (2, 1, 8, 8, 8) and bool((dec["density"] >= 0).all())
    assert dec["species_logits"].shape == (2, 3, 8, 8, 8)
    assert dec["abc"].shape == (2, 3) and dec["prop"].shape == (2, 1)
    out = vae(x, cond, abc, labels)
    assert not torch.equal(out["z"], out["mu"])  # training: reparameterised sample
    vae.eval()
    out = vae(x, cond, abc, labels)
    assert torch.equal(out["z"], out["mu"]) and torch.equal(out["coords"], x[:, 1:])
    # the species embedding and the condition both reach the network
    mu2, _ = vae.encode(x, cond, abc, (labels + 1) % 3)
    assert not torch.allclose(mu, mu2)
    assert not torch.allclose(
        vae.decode(mu, cond)["species_logits"], vae.decode(mu, torch.tensor([0, 0]))["species_logits"]
    )
    no_head = CondVAE3D(_tiny_vae_cfg(species_head=False, species_embed=0)).eval()
    assert "species_logits" not in no_head.decode(torch.zeros(1, 8), torch.tensor([10]))
    assert no_head.encode(x, cond, abc)[0].shape == (2, 8)
    with pytest.raises(ValueError):
        VAEConfig(d=8, widths=(4, 8, 16, 32))


def test_vae_config_round_trip() -> None:
    cfg = _tiny_vae_cfg(beta=1e-3)
    again = VAEConfig.from_dict(cfg.to_dict())
    assert again == cfg and isinstance(again.widths, tuple)


def test_vae_loss_parts() -> None:
    torch.manual_seed(0)
    cfg = _tiny_vae_cfg(dfc_weight=0.5)
    vae = CondVAE3D(cfg)
    dens, labels, abc = _toy_grids(8, n=2)
    x = make_input(dens, abc)
    cond = torch.tensor([10, 2])
    out = vae(x, cond, torch.zeros(2, 3), labels)
    prop = torch.tensor([float("nan"), 0.5])
    unet = freeze(UNet3D(UNetConfig(n_classes=3, base=4, levels=1)))
    loss, parts = vae_loss(out, dens.unsqueeze(1), labels, torch.zeros(2, 3), prop, cfg, unet=unet)
    assert math.isfinite(parts["total"]) and parts["dfc"] > 0 and parts["prop"] > 0
    assert math.isclose(parts["kl"], float(kl_divergence(out["mu"], out["logvar"]).detach()), rel_tol=1e-6)
    loss.backward()
    assert all(p.grad is None for p in unet.parameters())  # frozen
    assert vae.decoder[1][0].weight.grad is not None
    # all-unknown property: masked to zero, still finite
    out = vae(x, cond, torch.zeros(2, 3), labels)
    _, parts = vae_loss(out, dens, labels, torch.zeros(2, 3), torch.full((2,), float("nan")), cfg)
    assert parts["prop"] == 0.0 and parts["dfc"] == 0.0 and math.isfinite(parts["total"])
    # KL is zero for the prior itself
    assert float(kl_divergence(torch.zeros(3, 8), torch.zeros(3, 8))) == 0.0


def _overfit_two_crystals(cfg: VAEConfig, steps: int, prop: torch.Tensor | None):
    """Train a VAE of ``cfg`` on two toy crystals for ``steps``; (its eval outputs, density, labels, abc_std)."""
    torch.manual_seed(0)
    vae = CondVAE3D(cfg)
    dens, labels, abc = _toy_grids(8, n=2)
    x = make_input(dens, abc)
    abc_std = (abc - abc.mean(0)) / 1.0
    cond = torch.tensor([1, 10])
    opt = torch.optim.Adam(vae.parameters(), lr=5e-3)
    for _ in range(steps):
        out = vae(x, cond, abc_std, labels)
        loss, _ = vae_loss(out, dens, labels, abc_std, prop, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    vae.eval()
    with torch.no_grad():
        return vae(x, cond, abc_std, labels), dens, labels, abc_std


def test_vae_overfits_two_crystals() -> None:
    cfg = _tiny_vae_cfg(beta=1e-4)
    out, dens, labels, abc_std = _overfit_two_crystals(cfg, 300, torch.tensor([0.3, float("nan")]))
    assert F.mse_loss(out["density"][:, 0], dens) < 0.01 * dens.var()
    assert torch.equal(out["species_logits"].argmax(1), labels)
    assert torch.allclose(out["abc"], abc_std, atol=0.1)
    assert abs(float(out["prop"][0, 0]) - 0.3) < 0.1


# -- CGCNN ---------------------------------------------------------------------------------
def _crystals() -> list:
    from pymatgen.core import Lattice, Structure

    rock = [[0, 0, 0], [0.5, 0.5, 0.5]]
    return [
        Structure(Lattice.cubic(4.12), ["Cs", "Cl"], rock),
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], rock),
        Structure(
            Lattice.cubic(3.905),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.29), ["K", "Cl"], rock),
    ]


def test_atom_features() -> None:
    from core.models.cgcnn import N_ATOM_FEATURES, atom_features

    na, cl, k = atom_features("Na"), atom_features("Cl"), atom_features("K")
    assert na.shape == (N_ATOM_FEATURES,) and na.dtype == "float32"
    assert not (na == cl).all() and not (na == k).all()
    assert na[:18].argmax() == k[:18].argmax() == 0  # both group 1
    assert atom_features("Ne").sum() > 0  # missing electronegativity leaves zeros, not a crash
    with pytest.raises(ValueError):
        atom_features("Xx")


def test_build_graph_and_collate() -> None:
    from core.models.cgcnn import CGCNNConfig, build_graph, collate

    cfg = CGCNNConfig()
    cscl, nacl = _crystals()[:2]
    g = build_graph(cscl, cfg)
    assert g.n_atoms == 2 and g.center.shape == g.nbr.shape == g.dist.shape == (24,)
    assert torch.equal(torch.bincount(g.center), torch.tensor([12, 12]))
    # nearest Cs-Cl distance in CsCl = a*sqrt(3)/2, and 8 of them come first
    first = g.dist[g.center == 0]
    assert torch.allclose(first[:8], torch.tensor(4.12 * math.sqrt(3) / 2))
    assert bool((first[:8] < first[8]).all()) and bool((g.dist <= cfg.radius).all())
    assert bool((g.nbr[g.center == 0][:8] == 1).all())
    g2 = build_graph(nacl, CGCNNConfig(max_neighbors=6, radius=3.0))
    assert g2.n_atoms == 8 and torch.allclose(g2.dist, torch.tensor(2.82))
    b = collate([g, g2])
    assert b.n_crystals == 2 and b.atom_fea.shape[0] == 10
    assert int(b.center[24:].min()) == 2 and torch.equal(b.crystal, torch.tensor([0, 0] + [1] * 8))


def _train_cgcnn(model, batch, y, steps: int, lr: float = 3e-3) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = F.mse_loss(model(batch), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def test_cgcnn_eval_does_not_depend_on_batch_composition() -> None:
    from core.models.cgcnn import CGCNN, CGCNNConfig, build_graph, collate

    torch.manual_seed(0)
    cfg = CGCNNConfig(atom_fea_len=16, h_fea_len=16, n_conv=2, targets=["a", "b"])
    graphs = [build_graph(s, cfg) for s in _crystals()]
    model = CGCNN(cfg)
    _train_cgcnn(model, collate(graphs), torch.randn(4, 2), steps=5)
    with torch.no_grad():
        alone = model(collate([graphs[2]]))
        together = model(collate(graphs))
        shuffled = model(collate([graphs[3], graphs[2], graphs[0]]))
    assert alone.shape == (1, 2) and together.shape == (4, 2)
    assert torch.allclose(alone[0], together[2], atol=1e-5)
    assert torch.allclose(alone[0], shuffled[1], atol=1e-5)


def test_cgcnn_overfits_four_crystals() -> None:
    from core.models.cgcnn import CGCNN, CGCNNConfig, build_graph, collate

    torch.manual_seed(0)
    cfg = CGCNNConfig(atom_fea_len=32, h_fea_len=32, targets=["e"])
    batch = collate([build_graph(s, cfg) for s in _crystals()])
    y = torch.tensor([[-1.0], [0.5], [2.0], [-0.3]])
    model = CGCNN(cfg)
    _train_cgcnn(model, batch, y, steps=300)
    with torch.no_grad():
        assert F.mse_loss(model(batch), y) < 0.01 * y.var()


def test_bf16_autocast_and_channels_last() -> None:
    """The trainer's --bf16 / --channels-last options: same results (to precision), finite losses."""
    torch.manual_seed(0)
    dens, labels, abc = _toy_grids(8, n=2)
    x = make_input(dens, abc)
    unet = UNet3D(UNetConfig(n_classes=3, base=4, levels=2)).eval()
    ref = unet(x)["logits"]
    cl = unet.to(memory_format=torch.channels_last_3d)
    got = cl(x.contiguous(memory_format=torch.channels_last_3d))["logits"]
    assert torch.allclose(ref, got, atol=1e-4)
    cfg = _tiny_vae_cfg()
    vae = CondVAE3D(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vae(x, torch.tensor([0, 10]), torch.zeros(2, 3), labels)
        loss, parts = vae_loss(out, dens, labels, torch.zeros(2, 3), None, cfg, unet=freeze(unet))
        uloss, _ = unet_loss(UNet3D(UNetConfig(n_classes=3, base=4, levels=2))(x), labels, torch.ones(3))
    assert out["density"].dtype == torch.bfloat16
    assert loss.dtype == torch.float32 and uloss.dtype == torch.float32
    assert math.isfinite(parts["total"])
    (loss + uloss).backward()
    assert vae.decoder[1][0].weight.grad is not None


def test_nonneg_density_activation() -> None:
    from core.models.vae import nonneg

    h = torch.tensor([-2.0, 0.5], requires_grad=True)
    y = nonneg(h)
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.5]))
    y.sum().backward()
    assert torch.allclose(h.grad, torch.tensor([0.2, 1.0]))  # negative voxels can still recover
    with torch.no_grad():
        assert torch.equal(nonneg(h), torch.tensor([0.0, 0.5]))


def test_vae_count_head_learns_a_composition() -> None:
    torch.manual_seed(0)
    cfg = _tiny_vae_cfg(comp_head=True, max_count=4, comp_weight=1.0)
    vae = CondVAE3D(cfg)
    dens, labels, abc = _toy_grids(8, n=2)
    x = make_input(dens, abc)
    cond = torch.tensor([10, 10])
    counts = torch.tensor([[0, 1, 3], [0, 2, 9]])  # 9 is clipped to max_count
    out = vae(x, cond, torch.zeros(2, 3), labels)
    assert out["count_logits"].shape == (2, 3, 5)
    _, parts = vae_loss(out, dens, labels, torch.zeros(2, 3), None, cfg, counts=counts)
    # untrained: about log(5) per class, summed over the 3 classes
    assert 2.0 < parts["comp"] < 8.0
    _, no_counts = vae_loss(out, dens, labels, torch.zeros(2, 3), None, cfg)
    assert no_counts["comp"] == 0.0
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    for _ in range(150):
        out = vae(x, cond, torch.zeros(2, 3), labels)
        loss, parts = vae_loss(out, dens, labels, torch.zeros(2, 3), None, cfg, counts=counts)
        opt.zero_grad()
        loss.backward()
        opt.step()
    vae.eval()
    pred = vae(x, cond, torch.zeros(2, 3), labels)["count_logits"].argmax(-1)
    assert pred.tolist() == [[0, 1, 3], [0, 2, 4]]
    assert "count_logits" not in CondVAE3D(_tiny_vae_cfg()).decode(torch.zeros(1, 8), torch.tensor([10]))


def test_vae_config_reads_older_meta_json_with_a_retired_setting():
    """Shipped checkpoints carry label_dropout (retired): they load; an unknown key is refused."""
    cfg = VAEConfig.from_dict({"latent": 8, "label_dropout": 0.0})
    assert cfg.latent == 8 and "label_dropout" not in cfg.to_dict()
    with pytest.raises(ValueError, match="unknown VAEConfig keys"):
        VAEConfig.from_dict({"no_such_field": 1})


# -- the latent grid (spatial_latent) ------------------------------------------------------
def test_a_grid_latent_is_a_flat_vector_of_channels_times_cells() -> None:
    torch.manual_seed(0)
    cfg = _tiny_vae_cfg(widths=(8,), dec_widths=(16, 8), spatial_latent=3, lattice_params=6, latent=999)
    assert cfg.latent == 3 * 4**3 and cfg.latent_side == 4  # derived, whatever was passed
    assert VAEConfig.from_dict(cfg.to_dict()) == cfg
    vae = CondVAE3D(cfg).eval()
    x = torch.randn(2, 4, 8, 8, 8)
    cond, labels = torch.tensor([3, 10]), torch.randint(0, 3, (2, 8, 8, 8))
    mu, logvar = vae.encode(x, cond, torch.zeros(2, 6), labels)
    assert mu.shape == logvar.shape == (2, 192)
    # the lattice parameters reach a grid latent (no dense layer reads them)
    assert not torch.allclose(mu, vae.encode(x, cond, torch.ones(2, 6), labels)[0])
    dec = vae.decode(mu, cond)
    assert dec["density"].shape == (2, 1, 8, 8, 8) and dec["abc"].shape == (2, 6)
    with pytest.raises(ValueError, match="side"):  # encoder output 2, decoder input 4
        _tiny_vae_cfg(widths=(8, 16), dec_widths=(16, 8), spatial_latent=3)
    # whole-crystal dims after the grid: they carry the lattice even where the grid's cells do not
    cfg = _tiny_vae_cfg(widths=(8,), dec_widths=(16, 8), spatial_latent=3, global_latent=5, lattice_params=6)
    vae = CondVAE3D(cfg).eval()
    mu, _ = vae.encode(x, cond, torch.zeros(2, 6), labels)
    assert cfg.latent == mu.shape[1] == 192 + 5
    moved = vae.encode(x, cond, torch.ones(2, 6), labels)[0]
    assert not torch.allclose(mu[:, 192:], moved[:, 192:])
    z = mu.clone()
    z[:, 192:] += 1.0  # the global dims reach the density and the lattice
    assert not torch.allclose(vae.decode(z, cond)["species_logits"], vae.decode(mu, cond)["species_logits"])
    assert not torch.allclose(vae.decode(z, cond)["abc"], vae.decode(mu, cond)["abc"])
    with pytest.raises(ValueError, match="global_latent"):
        _tiny_vae_cfg(global_latent=4)


def test_a_grid_latent_is_local_shifting_it_by_a_cell_shifts_the_decoded_density() -> None:
    """The decoder is convolutional from the latent grid on: rolling the latent grid by one coarse
    cell rolls the decoded density by the same fraction of the unit cell."""
    torch.manual_seed(0)
    cfg = _tiny_vae_cfg(widths=(8,), dec_widths=(16, 8), spatial_latent=3, norm="group")
    vae = CondVAE3D(cfg).eval()
    z = torch.randn(1, cfg.latent)
    cond = torch.tensor([10])
    rolled = z.view(1, 3, 4, 4, 4).roll(1, dims=2).reshape(1, -1)
    with torch.no_grad():
        a, b = vae.decode(z, cond)["density"], vae.decode(rolled, cond)["density"]
    torch.testing.assert_close(b, a.roll(2, dims=2), atol=1e-5, rtol=1e-4)


def test_a_grid_latent_vae_overfits_two_crystals() -> None:
    cfg = _tiny_vae_cfg(beta=1e-4, widths=(8,), dec_widths=(16, 8), spatial_latent=4, norm="group")
    out, dens, labels, abc_std = _overfit_two_crystals(cfg, 400, None)
    assert F.mse_loss(out["density"][:, 0], dens) < 0.02 * dens.var()
    assert torch.equal(out["species_logits"].argmax(1), labels)
    assert torch.allclose(out["abc"], abc_std, atol=0.2)
