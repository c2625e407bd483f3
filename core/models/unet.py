"""3-D U-Net that segments a periodic density grid into atoms.

Input (B, in_channels, D, D, D) = [normalised density, 3 coordinate channels] (see
``core.models.blocks.make_input``). With ``density_features = K`` the network adds 2K channels
sin/cos(pi 2^k v), k < K, of the normalised density v itself: neighbouring elements differ in
peak height by 1-2 % (0.02 in v), and these Fourier features let the first layers read such a
difference as a pattern rather than as a fine threshold on one scalar. With ``peak_features = K``
it also adds the log-amplitude and sigma of the Gaussian through each voxel (exact for an isolated
atom wherever it sits between grid points) and K Fourier pairs of that log-amplitude: 2 + 2K
channels (``core.models.peaks``). Two heads at full resolution:
- ``logits`` (B, n_classes, D, D, D): species class per voxel (0 = background);
- ``occupancy`` (B, 1, D, D, D): logit of "this voxel belongs to some atom".

Differences from the original (Court et al. 2020), on purpose:
- circular padding (periodic grid), LeakyReLU + BatchNorm with running statistics;
- much narrower (base 16 instead of 32..512 channels) so it trains on a 2-core CPU;
- the class weights are really applied (the original passed ``num_classes`` as the weights).

Deviation from docs/ARCHITECTURE.md: ``unet_loss`` returns ``(loss, parts)`` rather than only the
loss; ``parts`` holds detached floats ``ce`` and ``bce`` for logging.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.models.blocks import ConvStack, Down, PointwiseConv3d, Up
from core.models.config import strict_from_dict
from core.models.peaks import peak_channels, peak_estimates, template_log_likelihood, voxel_spacing
from core.voxel import denormalise_density

TEMPLATE_GATE_BIAS = -2.0  # softplus(-2) = 0.13: the peak evidence starts weak and is learnt


@dataclass
class UNetConfig:
    """Hyper-parameters of :class:`UNet3D`.

    levels: number of 2x down-samplings (d must be divisible by 2**levels);
    convs: 3x3x3 convolutions per level; norm: 'batch' | 'group' | 'instance' | 'none'.
    """

    in_channels: int = 4
    n_classes: int = 2
    base: int = 16
    levels: int = 3
    convs: int = 2
    norm: str = "batch"
    occ_weight: float = 1.0
    density_features: int = 0  # K Fourier frequency pairs of the density channel (0 = none)
    peak_features: int = 0  # 0 = none; K > 0: peak amplitude and sigma + K Fourier pairs (core.models.peaks)
    peak_templates: bool = False  # add a gated log-likelihood of each element's peak to the logits

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        return strict_from_dict(cls, data)

    def widths(self) -> list[int]:
        """Channels per level, full resolution first; capped at 8x base to stay small."""
        return [self.base * min(2**i, 8) for i in range(self.levels + 1)]


class UNet3D(nn.Module):
    """Periodic 3-D U-Net. forward: (B, Cin, D, D, D) -> dict(logits, occupancy)."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths()
        if cfg.density_features < 0 or cfg.peak_features < 0:
            raise ValueError("density_features and peak_features must be >= 0")
        if (cfg.peak_features or cfg.peak_templates) and cfg.in_channels < 4:
            raise ValueError("peak_features needs the coordinate channels (in_channels = 4)")
        self.inc = ConvStack(cfg.in_channels + self.extra_channels(), w[0], cfg.convs, cfg.norm)
        self.downs = nn.ModuleList(Down(w[i], w[i + 1], cfg.convs, cfg.norm) for i in range(cfg.levels))
        self.ups = nn.ModuleList(
            Up(w[i + 1], w[i], w[i], cfg.convs, cfg.norm) for i in reversed(range(cfg.levels))
        )
        self.head = PointwiseConv3d(w[0], cfg.n_classes)
        self.occ_head = PointwiseConv3d(w[0], 1)
        if cfg.peak_templates:
            # (C, 2) each class's (log-amplitude, sigma): set by set_templates, saved with the weights
            self.register_buffer("templates", torch.full((cfg.n_classes, 2), math.nan))
            self.template_gate = PointwiseConv3d(w[0], 1)
            nn.init.zeros_(self.template_gate.weight)
            nn.init.constant_(self.template_gate.bias, TEMPLATE_GATE_BIAS)

    def set_templates(self, templates: Tensor) -> None:
        """templates: (n_classes, 2) from ``core.models.peaks.element_templates``."""
        if templates.shape != self.templates.shape:
            raise ValueError(f"templates must be {tuple(self.templates.shape)}, got {tuple(templates.shape)}")
        self.templates.copy_(templates)

    def _check(self, x: Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"expected (B, {self.cfg.in_channels}, D, D, D), got {tuple(x.shape)}")
        if any(s % (2**self.cfg.levels) for s in x.shape[2:]):
            raise ValueError(f"grid size {tuple(x.shape[2:])} not divisible by 2**{self.cfg.levels}")

    def extra_channels(self) -> int:
        """Channels the network computes from its input: density and peak features."""
        peak = 2 + 2 * self.cfg.peak_features if self.cfg.peak_features else 0
        return 2 * self.cfg.density_features + peak

    def _peaks(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """(log-amplitude, sigma), each (B, D, D, D) in fp32, when the network uses them."""
        if not (self.cfg.peak_features or self.cfg.peak_templates):
            return None
        return peak_estimates(denormalise_density(x[:, 0].float()), voxel_spacing(x))

    def _with_density_features(self, x: Tensor, peaks: tuple[Tensor, Tensor] | None) -> Tensor:
        """(B, Cin, D, D, D) -> (B, Cin + extra, D, D, D): appends sin/cos(pi 2^k x[:, 0]), k < K,
        then the peak channels (``core.models.peaks.peak_channels``), all computed in fp32."""
        parts = [x]
        k = self.cfg.density_features
        if k:
            freqs = math.pi * 2.0 ** torch.arange(k, device=x.device, dtype=torch.float32)
            phase = x[:, :1].float() * freqs.view(1, k, 1, 1, 1)  # (B, K, D, D, D)
            parts += [torch.sin(phase).to(x.dtype), torch.cos(phase).to(x.dtype)]
        if self.cfg.peak_features:
            parts.append(peak_channels(*peaks, self.cfg.peak_features).to(x.dtype))
        return torch.cat(parts, dim=1) if len(parts) > 1 else x

    def _encode(self, x: Tensor, peaks: tuple[Tensor, Tensor] | None = None) -> list[Tensor]:
        self._check(x)
        peaks = self._peaks(x) if peaks is None else peaks
        acts = [self.inc(self._with_density_features(x, peaks))]
        for down in self.downs:
            acts.append(down(acts[-1]))
        return acts

    def features(self, x: Tensor) -> list[Tensor]:
        """Encoder activations, full resolution first: [(B, w0, D..), (B, w1, D/2..), ...].

        Used by the VAE's deep-feature-consistency loss (with this network frozen).
        """
        return self._encode(x)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """x: (B, Cin, D, D, D) -> logits (B, C, D, D, D), occupancy (B, 1, D, D, D) (both logits)."""
        peaks = self._peaks(x)
        acts = self._encode(x, peaks)
        h = acts[-1]
        for up, skip in zip(self.ups, reversed(acts[:-1]), strict=True):
            h = up(h, skip)
        logits = self.head(h)
        if self.cfg.peak_templates:
            # where the network trusts the peak fit (gate > 0), each element's logit drops with the
            # distance of the fitted (amplitude, sigma) from that element's own
            evidence = template_log_likelihood(*peaks, self.templates)
            logits = logits + F.softplus(self.template_gate(h).float()).to(logits.dtype) * evidence.to(logits.dtype)
        return {"logits": logits, "occupancy": self.occ_head(h)}


def unet_loss(
    out: dict[str, Tensor], labels: Tensor, class_weights: Tensor | None = None, occ_weight: float = 1.0
) -> tuple[Tensor, dict[str, float]]:
    """Class-balanced cross entropy on the species logits + BCE on the occupancy logit.

    out: forward() output; labels: (B, D, D, D) long class ids; class_weights: (C,) or None.
    The CE is the weighted mean (sum w_y * ce / sum w_y), so the weights change which voxels
    dominate the gradient. Occupancy target = labels != 0. Returns (loss, {'ce', 'bce'}).
    """
    # float32 losses even when the network ran under bf16 autocast
    logits = out["logits"].float()
    weight = None
    if class_weights is not None:
        weight = class_weights.to(device=logits.device, dtype=torch.float32)
    ce = F.cross_entropy(logits, labels, weight=weight)
    occ_target = (labels != 0).float().unsqueeze(1)
    bce = F.binary_cross_entropy_with_logits(out["occupancy"].float(), occ_target)
    loss = ce + occ_weight * bce
    return loss, {"ce": float(ce.detach()), "bce": float(bce.detach())}


def class_weights_from_counts(
    counts: Tensor | list[float], power: float = 1.0, clip: tuple[float, float] = (0.02, 50.0)
) -> Tensor:
    """Inverse-frequency class weights from voxel counts per class (C,).

    w_c = (1 / f_c) ** power for classes present, normalised so that the mean weight per voxel
    (sum_c f_c w_c) is 1, then clipped to ``clip``. The background (class 0) is therefore small
    but stays > 0 (the original set it to 0, so its softmax never learnt background). Classes
    with no voxels never occur as targets; they get weight 1 so the vector stays well defined.
    """
    c = torch.as_tensor(counts, dtype=torch.float64)
    if c.ndim != 1 or c.numel() < 1 or bool((c < 0).any()):
        raise ValueError("counts must be a non-negative 1-D sequence")
    total = float(c.sum())
    if total <= 0:
        return torch.ones(c.numel(), dtype=torch.float32)
    present = c > 0
    freq = c / total
    w = torch.ones_like(c)
    w[present] = freq[present].pow(-power)
    w[present] = w[present] / float((freq[present] * w[present]).sum())
    w[present] = w[present].clamp(*clip)
    return w.to(torch.float32)
