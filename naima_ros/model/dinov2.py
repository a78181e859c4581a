"""Frozen DINOv2 ViT-S/14 semantic encoder (Oquab et al., arXiv 2304.07193), written for NAIMA.

Attribute names follow Meta's official checkpoint layout (``dinov2_vits14_pretrain.pth``:
``blocks.N.attn.qkv``, ``ls1.gamma``, ``norm``) so that file loads without renaming; the
Hugging Face layout is converted in ``naima_ros.model.convert``.

NAIMA taps blocks 2, 5, 8, 11 (0-based), passes each tap through the final LayerNorm and drops
the CLS token (docs/model.md §1.0 step 1). Position embeddings are resampled with DINOv2's exact rule
(bicubic with a +0.1 offset in the scale factor) whenever the token grid differs from the stored
table, including non-square grids.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PATCH_SIZE = 14
EMBED_DIM = 384
DEPTH = 12
NUM_HEADS = 6
NAIMA_TAPS = (2, 5, 8, 11)


class PatchEmbed(nn.Module):
    """Non-overlapping 14×14 patches → tokens: (B, 3, H, W) → (B, gh·gw, D), row-major."""

    def __init__(self, embed_dim: int = EMBED_DIM, patch_size: int = PATCH_SIZE):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused kernel (memory linear in tokens)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_value: float = 1.0):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale (DINOv2 ``NestedTensorBlock``)."""

    def __init__(self, dim: int = EMBED_DIM, num_heads: int = NUM_HEADS, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


def resample_pos_embed(patch_table: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """DINOv2's position-embedding interpolation (``interpolate_pos_encoding``, offset 0.1).

    Args:
        patch_table: (1, g0·g0, D) patch position embeddings of a square g0×g0 grid, row-major.
        grid_hw: target token grid (rows, columns).

    Returns:
        (1, rows·columns, D), row-major.
    """
    n, dim = patch_table.shape[1], patch_table.shape[2]
    g0 = math.isqrt(n)
    if g0 * g0 != n:
        raise ValueError(f"position table has {n} patch entries, expected a square grid")
    gh, gw = grid_hw
    grid = patch_table.reshape(1, g0, g0, dim).permute(0, 3, 1, 2)
    # scale_factor (not size) with the +0.1 offset, as DINOv2 does; the floor then lands on (gh, gw).
    out = F.interpolate(grid.float(), scale_factor=((gh + 0.1) / g0, (gw + 0.1) / g0), mode="bicubic",
                        align_corners=False, antialias=False)
    if out.shape[-2:] != (gh, gw):
        raise RuntimeError(f"pos-embed resample gave {tuple(out.shape[-2:])}, expected {(gh, gw)}")
    return out.to(patch_table.dtype).permute(0, 2, 3, 1).reshape(1, gh * gw, dim)


class DinoV2(nn.Module):
    """DINOv2 ViT-S/14 returning LayerNorm-ed patch tokens of the tapped blocks.

    Args:
        pos_grid: side of the stored square position table (37 for Meta's 518-px weights; NAIMA's
            reference code keeps a random table of img_size/14 = 30 or 32).
        taps: 0-based block indices whose outputs are returned.
    """

    def __init__(self, pos_grid: int = 37, taps: tuple[int, ...] = NAIMA_TAPS):
        super().__init__()
        if not taps or max(taps) >= DEPTH or min(taps) < 0:
            raise ValueError(f"taps must be block indices in [0, {DEPTH - 1}], got {taps}")
        self.taps = tuple(taps)
        self.patch_size = PATCH_SIZE
        self.embed_dim = EMBED_DIM
        self.cls_token = nn.Parameter(torch.zeros(1, 1, EMBED_DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid * pos_grid + 1, EMBED_DIM))
        self.mask_token = nn.Parameter(torch.zeros(1, EMBED_DIM))  # unused; kept for the checkpoint layout
        self.patch_embed = PatchEmbed()
        # Blocks after the last tap never influence the output; they still exist so official
        # checkpoints load strictly, but forward stops early.
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = nn.LayerNorm(EMBED_DIM, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    @property
    def pos_grid(self) -> int:
        return math.isqrt(self.pos_embed.shape[1] - 1)

    def position_embedding(self, grid_hw: tuple[int, int], image_hw: tuple[int, int]) -> torch.Tensor:
        """(1, 1 + gh·gw, D): CLS position kept, patch table resampled unless DINOv2 would skip it."""
        gh, gw = grid_hw
        stored = self.pos_embed.shape[1] - 1
        # DINOv2 skips interpolation only when the token count matches AND the image is square.
        if gh * gw == stored and image_hw[0] == image_hw[1]:
            return self.pos_embed
        patches = resample_pos_embed(self.pos_embed[:, 1:], grid_hw)
        return torch.cat([self.pos_embed[:, :1], patches], dim=1)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Tapped tokens.

        Args:
            image: (B, 3, H, W) ImageNet-standardised RGB with H, W multiples of 14.

        Returns:
            One (B, (H/14)·(W/14), 384) tensor per tap, row-major, after the final norm, CLS dropped.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"DINOv2 expects (B, 3, H, W) RGB, got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % PATCH_SIZE or w % PATCH_SIZE:
            raise ValueError(f"DINOv2 input {h}x{w} is not a multiple of the patch size {PATCH_SIZE}")
        grid = (h // PATCH_SIZE, w // PATCH_SIZE)
        x = self.patch_embed(image)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        x = x + self.position_embedding(grid, (h, w)).to(x.dtype)
        taps = []
        for i, block in enumerate(self.blocks[: max(self.taps) + 1]):
            x = block(x)
            if i in self.taps:
                taps.append(self.norm(x)[:, 1:])
        return taps
