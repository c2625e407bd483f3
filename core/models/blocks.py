"""Shared 3-D building blocks for the voxel networks, and the coordinate channels.

Every grid in this project covers exactly one crystal cell and is periodic, so all 3x3x3
convolutions use circular padding: a voxel on the face of the cube sees its neighbours across
the cell boundary, and the networks are equivariant to periodic translations of the grid
(pooling by 2 and stride-2 transposed convolutions keep that as long as ``d`` is divisible by
the total down-sampling factor).

Coordinate channels ("CoordConv") carry the lattice into the networks. Grid point ``i`` sits at
fractional position ``i/d``; channel ``k`` is ``(frac_k - 0.5) * abc_k / COORD_SCALE``: centred on
zero, of order one for typical cells, and its slope across the grid is proportional to the lattice
length, so a 4 Å cell and a 6 Å cell give different channels (the original fed raw Å ramps
starting at 0 next to a density ~Z/sigma^3, which the DESIGN lists as a flaw).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Å; lattice lengths are divided by this so the coordinate channels are O(1).
COORD_SCALE = 5.0

_NORMS = ("batch", "group", "instance", "none")


def _mkldnn_ok(x: Tensor, weight: Tensor) -> bool:
    """Whether to call oneDNN directly: CPU float32 outside autocast.

    PyTorch's dispatcher picks its slow im2col kernel for a batch of ONE small 3-D input
    (a heuristic in ConvParams::use_mkldnn: batch 1 and N*C*D*H < 20480), which made a single
    VAE decode 10-30x slower than necessary; oneDNN gives identical results (to float rounding).
    """
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not torch.is_autocast_enabled("cpu")
    )


class PeriodicConv3d(nn.Conv3d):
    """Conv3d with circular padding (same state dict as ``nn.Conv3d``); fast on CPU at batch 1."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, bias: bool = True) -> None:
        super().__init__(cin, cout, kernel_size, padding=kernel_size // 2, padding_mode="circular", bias=bias)

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        x = F.pad(x, self._reversed_padding_repeated_twice, mode="circular")
        if _mkldnn_ok(x, weight):
            return torch.mkldnn_convolution(
                x, weight, bias, (0, 0, 0), self.stride, self.dilation, self.groups
            )
        return F.conv3d(x, weight, bias, self.stride, 0, self.dilation, self.groups)


def coord_channels(abc: Tensor, d: int) -> Tensor:
    """Coordinate channels of a batch of cells.

    abc: (B, 3) lattice lengths in Å. Returns (B, 3, D, D, D) float tensor on abc's device with
    channel k = (i_k/d - 0.5) * abc_k / COORD_SCALE, where i_k is the voxel index along axis k.
    """
    if abc.ndim != 2 or abc.shape[1] != 3:
        raise ValueError(f"abc must be (B, 3), got {tuple(abc.shape)}")
    dtype = abc.dtype if abc.is_floating_point() else torch.float32
    frac = torch.arange(d, device=abc.device, dtype=dtype) / d - 0.5  # (D,)
    scale = abc.to(dtype) / COORD_SCALE  # (B, 3)
    b = abc.shape[0]
    cx = (scale[:, 0, None] * frac).view(b, d, 1, 1).expand(b, d, d, d)
    cy = (scale[:, 1, None] * frac).view(b, 1, d, 1).expand(b, d, d, d)
    cz = (scale[:, 2, None] * frac).view(b, 1, 1, d).expand(b, d, d, d)
    return torch.stack([cx, cy, cz], dim=1).contiguous()


def make_input(density: Tensor, abc: Tensor) -> Tensor:
    """Network input from a normalised density and lattice lengths.

    density: (B, D, D, D) or (B, 1, D, D, D) normalised density (core.voxel.normalise_density);
    abc: (B, 3) in Å. Returns (B, 4, D, D, D) = [density, coord_x, coord_y, coord_z].
    """
    if density.ndim == 4:
        density = density.unsqueeze(1)
    if density.ndim != 5 or density.shape[1] != 1:
        raise ValueError(f"density must be (B,D,D,D) or (B,1,D,D,D), got {tuple(density.shape)}")
    d = density.shape[-1]
    coords = coord_channels(abc.to(density.device), d).to(density.dtype)
    return torch.cat([density, coords], dim=1)


def norm3d(kind: str, channels: int) -> nn.Module:
    """A 3-D normalisation layer: 'batch' (running statistics), 'group', 'instance' or 'none'."""
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "group":
        # Up to 8 groups, but never more groups than channels and always a divisor.
        groups = max(g for g in range(1, min(8, channels) + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {_NORMS}")


class PointwiseConv3d(nn.Conv3d):
    """1x1x1 Conv3d computed as one matrix product (same state dict as ``nn.Conv3d``).

    PyTorch's batch-1 CPU path for a 1x1x1 conv goes through im2col (7 ms for 8 -> 57 channels
    at 32^3); a batched GEMM takes well under 1 ms and is 2.5x faster in training than matmul.
    """

    def __init__(self, cin: int, cout: int, bias: bool = True) -> None:
        super().__init__(cin, cout, 1, bias=bias)

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        b, c, *spatial = x.shape
        cout = weight.shape[0]
        w = weight.view(cout, c).expand(b, cout, c)
        xf = x.reshape(b, c, -1)
        # bmm writes (B, Cout, N) directly; torch.matmul would go through a transposed copy
        if bias is None:
            y = torch.bmm(w, xf)
        else:
            y = torch.baddbmm(bias.view(1, cout, 1).to(xf.dtype), w.to(xf.dtype), xf)
        return y.view(b, cout, *spatial)


class ConvBlock(nn.Sequential):
    """Circular-padded Conv3d(k=3) -> norm -> LeakyReLU. (B, Cin, D, D, D) -> (B, Cout, D, D, D)."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", slope: float = 0.2) -> None:
        super().__init__(
            PeriodicConv3d(cin, cout, 3, bias=norm == "none"),
            norm3d(norm, cout),
            nn.LeakyReLU(slope, inplace=True),
        )


class ConvStack(nn.Sequential):
    """``n`` ConvBlocks: the first maps cin -> cout, the rest cout -> cout."""

    def __init__(self, cin: int, cout: int, n: int = 2, norm: str = "batch") -> None:
        if n < 1:
            raise ValueError("a ConvStack needs at least one convolution")
        super().__init__(*[ConvBlock(cin if i == 0 else cout, cout, norm) for i in range(n)])


class Down(nn.Sequential):
    """MaxPool(2) then a ConvStack. (B, Cin, D, D, D) -> (B, Cout, D/2, D/2, D/2)."""

    def __init__(self, cin: int, cout: int, n: int = 2, norm: str = "batch") -> None:
        super().__init__(nn.MaxPool3d(2), ConvStack(cin, cout, n, norm))


class UpSample(nn.Sequential):
    """Stride-2 transposed conv (k=2: no overlap, so no boundary effects) -> norm -> LeakyReLU.

    (B, Cin, D, D, D) -> (B, Cout, 2D, 2D, 2D). Cheaper than nearest upsampling + a 3x3x3 conv.
    """

    def __init__(self, cin: int, cout: int, norm: str = "batch", slope: float = 0.2) -> None:
        super().__init__(
            nn.ConvTranspose3d(cin, cout, 2, stride=2, bias=norm == "none"),
            norm3d(norm, cout),
            nn.LeakyReLU(slope, inplace=True),
        )


class Up(nn.Module):
    """U-Net decoder step: upsample x, concatenate the skip, ConvStack.

    x: (B, Cin, D, D, D), skip: (B, Cskip, 2D, 2D, 2D) -> (B, Cout, 2D, 2D, 2D).
    """

    def __init__(self, cin: int, cskip: int, cout: int, n: int = 2, norm: str = "batch") -> None:
        super().__init__()
        self.up = UpSample(cin, cout, norm)
        self.conv = ConvStack(cout + cskip, cout, n, norm)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))

