"""Conditional 3-D VAE over periodic density grids (ICSG3D's Cond-DFC-VAE, fixed and made cheap).

Encoder input: x (B, in_channels, D, D, D) = [normalised density, 3 coordinate channels], plus
- a learned species embedding of the label grid (B, species_embed, D, D, D) when labels are given
  (the original had to guess the element from the density amplitude; its 51.65 % reconstruction
  match rate on perov_5 was largely wrong species);
- a learned condition embedding broadcast over the grid (B, cond_dim, D, D, D) (the original tiled a
  10-d one-hot 4x into 40 channels); cond = property decile 0..9, 10 = unknown;
- the standardised lattice parameters (B, P), concatenated to the flattened features: P = 3
  (a, b, c: sets of 90° cells) or P = 6 (a, b, c, alpha, beta, gamma: any lattice; ``lattice_params``).

Latent: a vector (the original's: encoder -> dense -> (mu, logvar)), or with ``spatial_latent = C``
a coarse periodic grid of C channels per cell (B, C, S, S, S), S = D / 2**len(widths), flattened to
z (B, C * S^3) so that priors, sliders and interpolation see a vector either way. A vector latent
has to memorise each crystal as a whole; on mp_20's 89 elements it learned its training crystals
and reconstructed 1 in 40 held-out ones (model card). A grid latent codes each region of the cell
(about one atom per coarse cell) and generalises by convolution; the lattice parameters enter it as
broadcast input channels. ``global_latent = G`` appends G whole-crystal dims (read from the pooled
encoder features and the lattice parameters, as the vector latent reads them), which the heads and
every decoder cell read too: z = [grid (C * S^3), global (G)].

Decoder: z (B, L) + condition embedding -> dense -> small 3-D grid -> transposed-conv upsampling
with few channels at full resolution (a single decode must take <= 30 ms on a 2-core CPU) ->
heads: density (ReLU, non-negative, normalised units), species logits, lattice (standardised
a, b, c and, with ``lattice_params = 6``, the three angles) and property (standardised) from z.

Deviations from docs/ARCHITECTURE.md (additive, keyword-compatible):
- ``encode``/``forward`` take an optional ``labels`` (B, D, D, D) long argument (species embedding);
  without labels the species channels are zero.
- ``forward`` also returns ``coords`` = x[:, 1:] (used by the deep-feature loss).
- ``vae_loss`` returns ``(loss, parts)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.models.blocks import ConvBlock, PointwiseConv3d, UpSample
from core.models.config import strict_from_dict

# Settings older checkpoints still carry: label_dropout (always 0 in every shipped and recipe run).
RETIRED = ("label_dropout",)


@dataclass
class VAEConfig:
    """Hyper-parameters of :class:`CondVAE3D` and the weights of its loss terms."""

    in_channels: int = 4
    n_classes: int = 2
    latent: int = 256
    n_conditions: int = 11
    cond_dim: int = 8
    d: int = 32
    widths: tuple[int, ...] = (16, 32, 64, 128)
    dec_widths: tuple[int, ...] = (64, 32, 16, 8)
    hidden: int = 256
    species_embed: int = 8
    species_head: bool = True
    comp_head: bool = False  # per-element atom counts (0..max_count) predicted from z
    max_count: int = 32
    lattice_params: int = 3  # 3: a, b, c (90° cells); 6: a, b, c, alpha, beta, gamma (any lattice)
    spatial_latent: int = 0  # > 0: a latent grid of this many channels per coarse cell (latent derived)
    global_latent: int = 0  # with spatial_latent: this many whole-crystal dims after the grid's
    norm: str = "batch"
    beta: float = 3e-4
    dfc_weight: float = 0.5
    density_weight: float = 1.0
    species_weight: float = 1.0
    lattice_weight: float = 1.0
    prop_weight: float = 1.0
    comp_weight: float = 0.1

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        self.dec_widths = tuple(int(w) for w in self.dec_widths)
        if self.d % (2 ** len(self.widths)):
            raise ValueError(f"d={self.d} not divisible by 2**len(widths)={2 ** len(self.widths)}")
        if len(self.dec_widths) < 1 or self.d % (2 ** (len(self.dec_widths) - 1)):
            raise ValueError(f"d={self.d} not divisible by 2**(len(dec_widths)-1)")
        if self.lattice_params not in (3, 6):
            raise ValueError(f"lattice_params must be 3 (a, b, c) or 6 (with angles), got {self.lattice_params}")
        if self.spatial_latent > 0:
            side = self.latent_side
            if side != self.d // 2 ** (len(self.dec_widths) - 1):
                raise ValueError(
                    f"a latent grid needs the encoder's output side ({side}) to equal the decoder's input "
                    f"side ({self.d // 2 ** (len(self.dec_widths) - 1)}): adjust widths / dec_widths"
                )
            self.latent = self.spatial_latent * side**3 + self.global_latent
        elif self.global_latent:
            raise ValueError("global_latent needs spatial_latent (a vector latent is global already)")

    @property
    def latent_side(self) -> int:
        """Side S of the encoder's output grid (the latent grid's, with ``spatial_latent``)."""
        return self.d // 2 ** len(self.widths)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths)
        data["dec_widths"] = list(self.dec_widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        return strict_from_dict(cls, data, retired=RETIRED)


def nonneg(h: Tensor, slope: float = 0.2) -> Tensor:
    """ReLU forward (exact zeros for empty space), leaky gradient backward.

    A plain ReLU would give no gradient to a voxel predicted negative where the target density is
    positive; softplus never reaches the zero background, so empty space would carry a floor of
    density. The straight-through form keeps the ReLU values and passes a 'slope' gradient below 0.
    """
    if not (torch.is_grad_enabled() and h.requires_grad):
        return F.relu(h)
    leaky = F.leaky_relu(h, slope)
    return leaky + (F.relu(h) - leaky).detach()


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, cout))


class CondVAE3D(nn.Module):
    """Conditional VAE. encode -> (mu, logvar); decode -> dict(density, species_logits, abc, prop)."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.cond_embed = nn.Embedding(cfg.n_conditions, cfg.cond_dim)
        self.species_embed = nn.Embedding(cfg.n_classes, cfg.species_embed) if cfg.species_embed > 0 else None
        cin = cfg.in_channels + max(cfg.species_embed, 0) + cfg.cond_dim
        if cfg.spatial_latent:
            cin += cfg.lattice_params  # broadcast: a grid latent has no dense layer to read them in
        stages: list[nn.Module] = []
        for w in cfg.widths:
            stages += [ConvBlock(cin, w, cfg.norm), nn.MaxPool3d(2)]
            cin = w
        self.encoder = nn.Sequential(*stages)
        dw = cfg.dec_widths
        self._s_dec = cfg.d // 2 ** (len(dw) - 1)
        if cfg.spatial_latent:
            self.enc_fc = None
            self.mu = PointwiseConv3d(cin, cfg.spatial_latent)
            self.logvar = PointwiseConv3d(cin, cfg.spatial_latent)
            cell_in = cfg.spatial_latent + cfg.cond_dim + cfg.global_latent
            self.dec_fc = PointwiseConv3d(cell_in, dw[0])
            if cfg.global_latent:
                self.global_fc = nn.Sequential(nn.Linear(cin + cfg.lattice_params, cfg.hidden), nn.LeakyReLU(0.2))
                self.mu_global = nn.Linear(cfg.hidden, cfg.global_latent)
                self.logvar_global = nn.Linear(cfg.hidden, cfg.global_latent)
        else:
            s_enc = cfg.latent_side
            self.enc_fc = nn.Sequential(nn.Linear(cin * s_enc**3 + cfg.lattice_params, cfg.hidden), nn.LeakyReLU(0.2))
            self.mu = nn.Linear(cfg.hidden, cfg.latent)
            self.logvar = nn.Linear(cfg.hidden, cfg.latent)
            self.dec_fc = nn.Linear(cfg.latent + cfg.cond_dim, dw[0] * self._s_dec**3)
        dec: list[nn.Module] = [nn.LeakyReLU(0.2), ConvBlock(dw[0], dw[0], cfg.norm)]
        for a, b in zip(dw[:-1], dw[1:], strict=True):
            dec += [UpSample(a, b, cfg.norm), ConvBlock(b, b, cfg.norm)]
        self.decoder = nn.Sequential(*dec)
        self.density_head = PointwiseConv3d(dw[-1], 1)
        self.species_out = PointwiseConv3d(dw[-1], cfg.n_classes) if cfg.species_head else None
        # The whole-crystal heads of a latent grid read a pooled summary (DeepSets: each cell's code
        # mapped alone, then averaged): an MLP over the flattened grid had to learn every cell's
        # position and predicted held-out lattices 10x worse than the vector latent did.
        self.summary = None
        head_in = cfg.latent + cfg.cond_dim
        if cfg.spatial_latent:
            self.summary = nn.Sequential(
                PointwiseConv3d(cell_in, cfg.hidden), nn.LeakyReLU(0.2),
                PointwiseConv3d(cfg.hidden, cfg.hidden), nn.LeakyReLU(0.2),
            )  # fmt: skip
            head_in = cfg.hidden + cfg.global_latent
        self.abc_head = _mlp(head_in, 64, cfg.lattice_params)
        self.prop_head = _mlp(head_in if cfg.spatial_latent else cfg.latent, 64, 1)
        # Composition from z: the voxel species head alone gets element sets wrong early in training
        # (one mistyped voxel blob changes the formula); a per-element count is a global property z
        # holds directly (its effect: model card).
        n_counts = cfg.n_classes * (cfg.max_count + 1)
        self.count_head = _mlp(head_in, cfg.hidden, n_counts) if cfg.comp_head else None

    # -- encoder ---------------------------------------------------------------------------
    def _species_channels(self, labels: Tensor | None, x: Tensor) -> Tensor | None:
        if self.species_embed is None:
            return None
        b, _, d1, d2, d3 = x.shape
        if labels is None:
            return x.new_zeros(b, self.cfg.species_embed, d1, d2, d3)
        emb = self.species_embed(labels.long()).permute(0, 4, 1, 2, 3).to(x.dtype)
        return emb

    def encode(
        self, x: Tensor, cond: Tensor, abc: Tensor, labels: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x (B, Cin, D, D, D), cond (B,) long, abc (B, P) standardised lattice parameters
        (``cfg.lattice_params``), labels (B, D, D, D) long or None -> mu (B, L), logvar (B, L)."""
        cfg = self.cfg
        if x.ndim != 5 or x.shape[1] != cfg.in_channels or tuple(x.shape[2:]) != (cfg.d,) * 3:
            raise ValueError(f"expected x of shape (B, {cfg.in_channels}, {cfg.d}^3), got {tuple(x.shape)}")
        b = x.shape[0]
        c = self.cond_embed(cond.long()).to(x.dtype).view(b, cfg.cond_dim, 1, 1, 1)
        parts = [x, c.expand(b, cfg.cond_dim, cfg.d, cfg.d, cfg.d)]
        sp = self._species_channels(labels, x)
        if sp is not None:
            parts.insert(1, sp)
        if self.enc_fc is None:
            lat = abc.to(x.dtype).view(b, -1, 1, 1, 1).expand(b, abc.shape[1], cfg.d, cfg.d, cfg.d)
            h = self.encoder(torch.cat([*parts, lat], dim=1))
            mu, logvar = self.mu(h).flatten(1), self.logvar(h).flatten(1)
            if cfg.global_latent:
                g = self.global_fc(torch.cat([h.mean(dim=(2, 3, 4)), abc.to(h.dtype)], dim=1))
                mu = torch.cat([mu, self.mu_global(g)], dim=1)
                logvar = torch.cat([logvar, self.logvar_global(g)], dim=1)
            return mu, logvar
        h = self.encoder(torch.cat(parts, dim=1)).flatten(1)
        h = self.enc_fc(torch.cat([h, abc.to(h.dtype)], dim=1))
        return self.mu(h), self.logvar(h)

    # -- decoder ---------------------------------------------------------------------------
    def decode(self, z: Tensor, cond: Tensor) -> dict[str, Tensor]:
        """z (B, L), cond (B,) long -> density (B, 1, D, D, D) >= 0, species_logits (B, C, D, D, D)
        (if cfg.species_head), count_logits (B, C, max_count + 1) (if cfg.comp_head), abc (B, P)
        standardised lattice parameters, prop (B, 1) standardised."""
        c = self.cond_embed(cond.long()).to(z.dtype)
        zc = torch.cat([z, c], dim=1)
        s = self._s_dec
        if self.summary is not None:
            b, n_grid = z.shape[0], self.cfg.latent - self.cfg.global_latent
            grid = z[:, :n_grid].reshape(b, self.cfg.spatial_latent, s, s, s)
            whole = torch.cat([c, z[:, n_grid:]], dim=1)  # (B, cond_dim + G): read by every cell
            zc = torch.cat([grid, whole.view(b, -1, 1, 1, 1).expand(b, whole.shape[1], s, s, s)], dim=1)
            h = self.dec_fc(zc)
            head_in = prop_in = torch.cat([self.summary(zc).mean(dim=(2, 3, 4)), z[:, n_grid:]], dim=1)
        else:
            h = self.dec_fc(zc).view(z.shape[0], self.cfg.dec_widths[0], s, s, s)
            head_in, prop_in = zc, z
        h = self.decoder(h)
        out = {
            "density": nonneg(self.density_head(h)),
            "abc": self.abc_head(head_in),
            "prop": self.prop_head(prop_in),
        }
        if self.species_out is not None:
            out["species_logits"] = self.species_out(h)
        if self.count_head is not None:
            out["count_logits"] = self.count_head(head_in).view(z.shape[0], self.cfg.n_classes, self.cfg.max_count + 1)
        return out

    def forward(
        self, x: Tensor, cond: Tensor, abc: Tensor, labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Encode, sample z (training) or take z = mu (eval), decode.

        Returns dict(mu, logvar, z, coords=x[:, 1:], density, species_logits?, abc, prop)."""
        mu, logvar = self.encode(x, cond, abc, labels)
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        return {"mu": mu, "logvar": logvar, "z": z, "coords": x[:, 1:], **self.decode(z, cond)}


def freeze(module: nn.Module) -> nn.Module:
    """Put a network (the U-Net for the deep-feature loss) in eval mode with no trainable weights."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, I)) summed over the latent dims, mean over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def deep_feature_loss(unet: nn.Module, x_hat: Tensor, x: Tensor) -> Tensor:
    """Sum over the U-Net encoder layers of the mean squared feature difference.

    x_hat, x: (B, Cin_unet, D, D, D). The target features carry no gradient; gradients flow into
    x_hat through the (frozen: see :func:`freeze`) U-Net.
    """
    with torch.no_grad():
        target = unet.features(x)
    pred = unet.features(x_hat)
    return sum((F.mse_loss(p, t) for p, t in zip(pred, target, strict=True)), x_hat.new_zeros(()))


def vae_loss(
    out: dict[str, Tensor],
    target_density: Tensor,
    labels: Tensor | None,
    abc_target: Tensor,
    prop_target: Tensor | None,
    cfg: VAEConfig,
    class_weights: Tensor | None = None,
    unet: nn.Module | None = None,
    coords: Tensor | None = None,
    counts: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Total VAE loss and its parts (floats, for logging).

    out: forward() output; target_density (B, 1, D, D, D) normalised; labels (B, D, D, D) long or
    None; abc_target (B, P) standardised lattice parameters; prop_target (B,) standardised, NaN = unknown (masked).
    loss = w_d MSE(density) + w_s CE(species, class_weights) + w_l MSE(abc) + w_p MSE(prop | known)
           + beta KL + dfc_weight * deep-feature loss (only when ``unet`` is given; its input is
           [density, coords], coords defaulting to out['coords']) + comp_weight * sum over
           classes of the count CE.
    """
    # float32 losses even when the network ran under bf16 autocast
    pred = out["density"].float()
    target_density = target_density.float()
    if target_density.ndim == 4:
        target_density = target_density.unsqueeze(1)
    zero = pred.new_zeros(())
    terms: dict[str, Tensor] = {"density": F.mse_loss(pred, target_density)}
    terms["species"] = zero
    if labels is not None and "species_logits" in out:
        w = None if class_weights is None else class_weights.to(pred.device, torch.float32)
        terms["species"] = F.cross_entropy(out["species_logits"].float(), labels.long(), weight=w)
    terms["lattice"] = F.mse_loss(out["abc"].float(), abc_target.float())
    terms["prop"] = zero
    if prop_target is not None:
        known = ~torch.isnan(prop_target)
        if bool(known.any()):
            terms["prop"] = F.mse_loss(out["prop"][:, 0].float()[known], prop_target[known].float())
    terms["comp"] = zero
    if counts is not None and "count_logits" in out:
        logits = out["count_logits"].float()  # (B, C, K+1)
        target = counts.long().clamp(0, cfg.max_count)
        # summed over element classes: each crystal's whole composition counts, not an average
        # dominated by the many absent elements
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # (B, C)
        terms["comp"] = ce.sum(dim=1).mean()
    terms["kl"] = kl_divergence(out["mu"].float(), out["logvar"].float())
    terms["dfc"] = zero
    if unet is not None and cfg.dfc_weight > 0:
        cc = out.get("coords") if coords is None else coords
        cc = None if cc is None else cc.float()
        x_hat = pred if cc is None else torch.cat([pred, cc], dim=1)
        x_true = target_density if cc is None else torch.cat([target_density, cc], dim=1)
        terms["dfc"] = deep_feature_loss(unet, x_hat, x_true)
    weights = {
        "density": cfg.density_weight,
        "species": cfg.species_weight,
        "lattice": cfg.lattice_weight,
        "prop": cfg.prop_weight,
        "kl": cfg.beta,
        "dfc": cfg.dfc_weight,
        "comp": cfg.comp_weight,
    }
    loss = sum((weights[k] * v for k, v in terms.items()), zero)
    parts = {k: float(v.detach()) for k, v in terms.items()}
    parts["total"] = float(loss.detach())
    return loss, parts
