"""Small building blocks of NAIMA: RCAB encoders, back-projection, the SGNet-style fusion parts.

Shapes are (B, C, H, W) unless stated. Numerical quirks that the reference code has (eps constants,
the order of FFT operations, where activations sit) are kept exactly: see docs/model.md §1.2-1.5.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

# (kernel, stride, padding) of the one-step ×s back-projection convolutions (docs/model.md §1.3).
PROJECTION_GEOMETRY = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2), 16: (20, 16, 2)}


def conv(cin: int, cout: int, kernel: int, bias: bool = True) -> nn.Conv2d:
    """Stride-1 convolution with 'same' padding."""
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias)


def lrelu(slope: float) -> nn.LeakyReLU:
    return nn.LeakyReLU(slope, inplace=True)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation (RCAN): x · σ(W2 ReLU(W1 avgpool(x)))."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.excite(F.relu(self.squeeze(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(w)


class RCAB(nn.Module):
    """Residual channel-attention block: x + CA(conv(LReLU(conv(x))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv(channels, channels, 3)
        self.act = lrelu(0.2)
        self.conv2 = conv(channels, channels, 3)
        self.attention = ChannelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(self.conv2(self.act(self.conv1(x))))


class ResidualGroup(nn.Module):
    """n RCABs, a 3×3 conv and a global skip (the reference's ``DepthEnc``)."""

    def __init__(self, channels: int, num_blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*(RCAB(channels) for _ in range(num_blocks)))
        self.conv = conv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.blocks(x))


class ResBlock(nn.Module):
    """x + conv(LReLU0.2(conv(x)))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv(channels, channels, 3)
        self.act = lrelu(0.2)
        self.conv2 = conv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class BackProjection(nn.Module):
    """DBPN/SGNet back-projection unit resampling by ``scale`` in one step (docs/model.md §1.3).

    up: a0 = P(T(x)); a1 = P(T(P(C(a0)) - x)); out = a0 + a1 (T transposed conv, C strided conv);
    down swaps T and C. Identity at scale 1 (used by the light preset, which fuses at LR).
    """

    def __init__(self, channels: int, scale: int, up: bool):
        super().__init__()
        if scale not in PROJECTION_GEOMETRY:
            raise ValueError(f"back-projection supports scales {sorted(PROJECTION_GEOMETRY)}, got {scale}")
        k, s, p = PROJECTION_GEOMETRY[scale]
        forward_op, backward_op = (nn.ConvTranspose2d, nn.Conv2d) if up else (nn.Conv2d, nn.ConvTranspose2d)
        self.resample1 = forward_op(channels, channels, k, s, p)
        self.act1 = nn.PReLU(channels)
        self.resample2 = backward_op(channels, channels, k, s, p)
        self.act2 = nn.PReLU(channels)
        self.resample3 = forward_op(channels, channels, k, s, p)
        self.act3 = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a0 = self.act1(self.resample1(x))
        residual = self.act2(self.resample2(a0)) - x
        return a0 + self.act3(self.resample3(residual))


class InvertibleConv1x1(nn.Module):
    """Glow's LU-parameterised invertible 1×1 conv: W = P (L̃ + I)(Ũ + diag(sign_s · exp(log_s)))."""

    def __init__(self, channels: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        diag = torch.diagonal(upper)
        self.register_buffer("p", p.float())
        self.register_buffer("sign_s", torch.sign(diag).float())
        self.l = nn.Parameter(lower.float())
        self.u = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(diag.abs()).float())

    def weight(self) -> torch.Tensor:
        n = self.l.shape[0]
        eye = torch.eye(n, device=self.l.device, dtype=self.l.dtype)
        lower = torch.tril(self.l, -1) + eye
        upper = torch.triu(self.u, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight()
        return F.conv2d(x, w.view(*w.shape, 1, 1).to(x.dtype))


class UNetConv(nn.Module):
    """LReLU0.1(conv3(LReLU0.1(conv3(x)))) + conv1(x)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = conv(cin, cout, 3)
        self.conv2 = conv(cout, cout, 3)
        self.skip = nn.Conv2d(cin, cout, 1)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.act(self.conv1(x)))) + self.skip(x)


class DenseBlock(nn.Module):
    """Two-stage dense block (growth 8) used inside the affine couplings; Xavier-normal ×0.1 init."""

    def __init__(self, cin: int, cout: int, growth: int = 8):
        super().__init__()
        self.unet1 = UNetConv(cin, growth)
        self.unet2 = UNetConv(growth, growth)
        self.out = conv(cin + 2 * growth, cout, 3)
        self.act = nn.LeakyReLU(0.2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                m.weight.data.mul_(0.1)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.act(self.unet1(x))
        x2 = self.act(self.unet2(x1))
        return self.act(self.out(torch.cat([x, x1, x2], dim=1)))


class AffineCoupling(nn.Module):
    """Invertible block (``InvBlock``): 1×1 invertible mix, then an affine coupling of the two splits.

    y1 = x1 + F(x2); y2 = x2 · exp(0.8 (2σ(H(y1)) − 1)) + G(y1).
    """

    def __init__(self, channels: int, split: int, clamp: float = 0.8):
        super().__init__()
        self.split = split
        self.clamp = clamp
        self.mix = InvertibleConv1x1(channels)
        self.shift_net = DenseBlock(channels - split, split)  # F
        self.add_net = DenseBlock(split, channels - split)  # G
        self.scale_net = DenseBlock(split, channels - split)  # H

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mix(x)
        x1, x2 = x[:, : self.split], x[:, self.split:]
        y1 = x1 + self.shift_net(x2)
        s = self.clamp * (torch.sigmoid(self.scale_net(y1)) * 2 - 1)
        y2 = x2 * torch.exp(s) + self.add_net(y1)
        return torch.cat([y1, y2], dim=1)


def pointwise_mlp(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.LeakyReLU(0.1), nn.Conv2d(channels, channels, 1))


class SpectrumFusion(nn.Module):
    """``FreDiff``: fuse a depth and an RGB spectrum component (amplitude or phase)."""

    def __init__(self, channels: int, rgb_channels: int):
        super().__init__()
        self.depth_in = nn.Conv2d(channels, channels, 1)
        self.rgb_in = nn.Conv2d(rgb_channels, channels, 1)
        self.common = pointwise_mlp(channels)
        self.difference = pointwise_mlp(channels)
        self.out = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, depth: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        d = self.depth_in(depth)
        r = self.rgb_in(rgb)
        return self.out(torch.cat([self.common(d), self.difference(torch.abs(r - d))], dim=1))


class FrequencyFusion(nn.Module):
    """``SDB``: amplitude/phase fusion of depth and RGB features in the 2-D real FFT domain.

    The eps constants and operation order follow the reference exactly; the phase branch is
    discontinuous where a bin crosses the negative real axis (docs/model.md §1.4).
    """

    def __init__(self, channels: int, rgb_channels: int):
        super().__init__()
        self.depth_in = nn.Conv2d(channels, channels, 1)
        self.rgb_in = nn.Conv2d(rgb_channels, rgb_channels, 1)
        self.amplitude = SpectrumFusion(channels, rgb_channels)
        self.phase = SpectrumFusion(channels, rgb_channels)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, depth: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        h, w = depth.shape[-2:]
        d_in, r_in = self.depth_in(depth), self.rgb_in(rgb)
        # The whole spectral part runs in float32, autocast or not: half-precision FFTs need power-of-two
        # sizes and lose the phase, and the unnormalised amplitudes grow with the pixel count (the DC bin
        # of the reference preset passes fp16's 65,504 from about 560² on: inf, then NaN).
        with _no_autocast(depth.device.type):
            d = torch.fft.rfft2(d_in.float() + 1e-8, norm="backward")
            r = torch.fft.rfft2(r_in.float() + 1e-8, norm="backward")
            amp = self.amplitude(d.abs(), r.abs())
            pha = self.phase(d.angle(), r.angle())
            spectrum = torch.complex(amp * torch.cos(pha) + 1e-8, amp * torch.sin(pha) + 1e-8) + 1e-8
            spatial = torch.fft.irfft2(spectrum, s=(h, w), norm="backward").abs()
        return self.out(spatial.to(d_in.dtype))


def _no_autocast(device_type: str):
    """Autocast switched off (a no-op context on devices without autocast, such as ``meta``)."""
    if device_type in ("cpu", "cuda", "xpu", "mps"):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


class ContrastChannelAttention(nn.Module):
    """σ(W2 LReLU0.1(W1 (std_hw + mean_hw))) — contrast-aware channel weights."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, channels // 2, 1), nn.LeakyReLU(0.1),
                                 nn.Conv2d(channels // 2, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()  # population std, no eps
        return self.net(std + mean)


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Single-head attention over positions through the fused kernel: memory linear in positions.

    Args:
        q, k, v: (B, N, C) with positions as the sequence axis.
    """
    # The fused kernels need a unit stride on the feature axis; otherwise SDPA silently falls back to
    # the math path and materialises the N×N matrix.
    q, k, v = (t.contiguous().unsqueeze(1) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, scale=scale).squeeze(1)


def inv_sqrt(n: int) -> float:
    return 1.0 / math.sqrt(n)
