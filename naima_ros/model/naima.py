"""NAIMA: semantics-aware RGB-guided depth super-resolution (arXiv 2604.04407).

Checked against the public reference code (NAIMA-GDSR) through the parity fixtures of
the parity fixtures (docs/model.md §8); docs/model.md §1 lists what each module computes and §6 the
differences between that code and the paper's text. Reading order: token projector and
attention → Guided Token Attention block → fusion block → upsamplers → ``Naima`` →
``NaimaConfig`` and ``PRESETS`` → ``build_model``.

Three families of presets share these blocks:
- ``reference``: the published code bit for bit (random frozen position table sized by the
  training patch, unused layers kept so checkpoints and parameter counts match Table 4).
- ``naima`` / ``naima_plus``: the paper's network with the pretrained DINOv2 position table
  (interpolated by DINOv2's rule) and without dead layers; ``naima_plus`` is the eq. 11 ablation
  (token features added instead of attended).
- ``light``: onboard real-time design; all fusion at LR with a pixel-unshuffled RGB stem,
  a lighter upsampling head (progressive ×2 pixel shuffles) and DINOv2 on a half-resolution image.
- ``light_guided``: ``light`` with high-resolution RGB guidance in the upsampling head and the
  pretrained EfficientNet-Lite0 as semantic encoder (``naima_ros.model.encoders``).

The semantic encoder is pluggable (``NaimaConfig.encoder``): DINOv2 ViT-S/14, EfficientNet-Lite0 or
none. ``build_model`` only builds; weights enter through ``naima_ros.model.encoders.prepare_encoder``
or ``naima_ros.checkpoint.load_checkpoint``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from naima_ros.model.dinov2 import EMBED_DIM, PATCH_SIZE
from naima_ros.model.encoders import (ENCODERS, UntrainedBackboneWarning, build_encoder, token_dims,
                                      warn_random_encoder)
from naima_ros.model.layers import (PROJECTION_GEOMETRY, AffineCoupling, BackProjection, ContrastChannelAttention,
                                    FrequencyFusion,
                                    ResBlock, ResidualGroup, conv, inv_sqrt, lrelu, sdpa_attention)
from naima_ros.options import SCALES

__all__ = ["PRESETS", "SCALES", "Naima", "NaimaConfig", "UntrainedBackboneWarning", "build_model",
           "count_parameters", "preset_config"]

TOKEN_SHUFFLE = 4  # the projector's PixelShuffle factor: 4 at every SR scale for DINOv2 (docs/model.md §1.2, §6.5)


# --------------------------------------------------------------------------------------------
# Guided Token Attention (GTA), docs/model.md §1.2
# --------------------------------------------------------------------------------------------


class TokenProjector(nn.Module):
    """Tokens → LR feature map: valid 3×3 conv, 1×1 conv, PixelShuffle(4), bilinear resize to h×w.

    The ``DinoFeatureEncoder`` of the reference (P and U in the paper); its output width is
    ``feats`` whatever the GTA width. ``shuffle`` 1 suits encoders whose maps are already dense
    (EfficientNet's stride-4..32 stages): the convs then run at the map's own resolution.
    """

    def __init__(self, feats: int, token_dim: int = EMBED_DIM, kernel: int = 3, shuffle: int = TOKEN_SHUFFLE):
        super().__init__()
        hidden = feats * shuffle**2
        self.kernel = kernel
        self.conv3x3 = nn.Conv2d(token_dim, hidden, kernel)  # no padding: a 3×3 grid loses 2 rows and columns
        self.conv1x1 = nn.Conv2d(hidden, hidden, 1)
        self.shuffle = nn.PixelShuffle(shuffle)

    def forward(self, tokens: torch.Tensor, grid_hw: tuple[int, int], lr_hw: tuple[int, int]) -> torch.Tensor:
        b, n, d = tokens.shape
        if n != grid_hw[0] * grid_hw[1]:
            raise ValueError(f"{n} tokens do not form a {grid_hw[0]}x{grid_hw[1]} grid")
        if min(grid_hw) < self.kernel:
            raise ValueError(f"token grid {grid_hw[0]}x{grid_hw[1]} is too small for the valid "
                             f"{self.kernel}x{self.kernel} conv")
        grid = tokens.transpose(1, 2).reshape(b, d, *grid_hw)  # row-major tokens → (B, D, gh, gw)
        x = self.shuffle(self.conv1x1(self.conv3x3(grid)))
        return F.interpolate(x, size=lr_hw, mode="bilinear", align_corners=False)


class CosineTokenAttention(nn.Module):
    """Global single-head cross-attention over LR positions with cosine logits (``TRGRAMKQV``).

    out = E + α · softmax(q̂ k̂ᵀ / √C) v, q̂/k̂ L2-normalised over channels (eps 1e-6), α init 0.
    Runs through the fused SDPA kernel, so memory grows linearly with h·w.
    """

    def __init__(self, channels: int, token_feats: int, kv_stride: int = 1):
        super().__init__()
        self.kv_stride = kv_stride
        self.query = nn.Conv2d(channels, channels, 1, bias=False)
        self.key = nn.Conv2d(token_feats, channels, 1, bias=False)
        self.value = nn.Conv2d(token_feats, channels, 1, bias=False)
        self.alpha = nn.Parameter(torch.zeros(()))
        for proj in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(proj.weight)

    def forward(self, depth_feats: torch.Tensor, token_map: torch.Tensor) -> torch.Tensor:
        b, c, h, w = depth_feats.shape
        if self.kv_stride > 1:  # light preset: keys/values on a coarser grid (the map is a smooth resize anyway)
            token_map = F.avg_pool2d(token_map, self.kv_stride, ceil_mode=True)
        q = F.normalize(self.query(depth_feats).flatten(2), dim=1, eps=1e-6).transpose(1, 2)  # (B, N, C)
        k = F.normalize(self.key(token_map).flatten(2), dim=1, eps=1e-6).transpose(1, 2)
        v = self.value(token_map).flatten(2).transpose(1, 2)
        out = sdpa_attention(q, k, v, scale=inv_sqrt(c)).transpose(1, 2).reshape(b, c, h, w)
        return depth_feats + self.alpha * out


class AdditiveTokenFusion(nn.Module):
    """NAIMA+ ablation (paper eq. 11): the projected token map is added instead of attended."""

    def __init__(self, channels: int, token_feats: int, kv_stride: int = 1):
        super().__init__()
        self.value = nn.Conv2d(token_feats, channels, 1, bias=False)
        nn.init.xavier_uniform_(self.value.weight)

    def forward(self, depth_feats: torch.Tensor, token_map: torch.Tensor) -> torch.Tensor:
        return depth_feats + self.value(token_map)


class GuidedTokenAttention(nn.Module):
    """GTA block: (depth D at LR, tokens T, RGB R) → (E + α·Att(E, P(T)), ResBlock(R)), E = RCABs(D).

    With ``token_dim`` None (no semantic encoder) the block is (E, ResBlock(R)).
    """

    def __init__(self, channels: int, feats: int, num_rcabs: int, attention: str, token_kernel: int = 3,
                 kv_stride: int = 1, rgb_output: bool = True, token_dim: int | None = EMBED_DIM,
                 token_shuffle: int = TOKEN_SHUFFLE):
        super().__init__()
        self.depth_encoder = ResidualGroup(channels, num_rcabs)
        if token_dim is None:
            self.token_projector = self.attention = None
        else:
            self.token_projector = TokenProjector(feats, token_dim, token_kernel, token_shuffle)
            attention_cls = CosineTokenAttention if attention == "cosine" else AdditiveTokenFusion
            self.attention = attention_cls(channels, feats, kv_stride)
        # The last GTA's RGB output is discarded; only the reference keeps (and computes) it.
        self.rgb_encoder = ResBlock(feats) if rgb_output else None

    def forward(self, depth_feats, tokens, grid_hw, rgb_feats):
        encoded = self.depth_encoder(depth_feats)
        rgb_out = self.rgb_encoder(rgb_feats) if self.rgb_encoder is not None else None
        if self.attention is None:
            return encoded, rgb_out
        token_map = self.token_projector(tokens, grid_hw, encoded.shape[-2:])
        return self.attention(encoded, token_map), rgb_out


# --------------------------------------------------------------------------------------------
# Fusion block, docs/model.md §1.4 (SGNet-style; the paper credits SUFT)
# --------------------------------------------------------------------------------------------


class FusionBlock(nn.Module):
    """Depth up-projected to the RGB resolution, fused spatially and spectrally, projected back.

    Returns the fused depth features at LR and the processed RGB features for the next GTA.
    ``scale`` is the depth→RGB resolution ratio: s for the paper (fusion at HR), 1 for ``light``.
    """

    def __init__(self, channels: int, rgb_channels: int, scale: int, keep_unused: bool = False):
        super().__init__()
        self.up_projection = BackProjection(channels, scale, up=True) if scale > 1 else nn.Identity()
        self.rgb_conv = conv(rgb_channels, rgb_channels, 3)
        self.rgb_proj = nn.Conv2d(rgb_channels, rgb_channels, 1)
        self.spatial_coupling = AffineCoupling(channels + rgb_channels, channels)
        self.spatial_out = nn.Conv2d(channels + rgb_channels, channels, 1)
        self.frequency = FrequencyFusion(channels, rgb_channels)
        self.fuse_coupling = AffineCoupling(2 * channels, channels)
        self.fuse_out = nn.Conv2d(2 * channels, channels, 1)
        self.channel_attention = ContrastChannelAttention(channels)
        self.down_projection = BackProjection(channels, scale, up=False) if scale > 1 else nn.Identity()
        if keep_unused:  # dead in the reference's forward, but in its checkpoints and Table 4's counts
            self.unused_spatial_attention = nn.Sequential(conv(channels, channels // 2, 3), nn.LeakyReLU(0.1),
                                                          conv(channels // 2, channels, 3), nn.Sigmoid())
            self.unused_post = conv(channels, channels, 3)

    def forward(self, depth_feats: torch.Tensor, rgb_feats: torch.Tensor):
        depth_hr = self.up_projection(depth_feats)
        rgb_next = self.rgb_conv(rgb_feats)
        rgb = self.rgb_proj(rgb_next)
        spatial = self.spatial_out(self.spatial_coupling(torch.cat([depth_hr, rgb], dim=1)))
        spectral = self.frequency(depth_hr, rgb)
        fused = self.fuse_out(self.fuse_coupling(torch.cat([spatial, spectral], dim=1)))
        fused = self.channel_attention(fused) * fused + depth_hr
        return self.down_projection(fused), rgb_next


# --------------------------------------------------------------------------------------------
# Upsampling heads, docs/model.md §1.5. Each maps (LR features, RGB, bicubic depth) to the HR residual that
# is added to the bicubic depth; only the guided head looks at the RGB and the bicubic depth.
# --------------------------------------------------------------------------------------------


class BackProjectionHead(nn.Module):
    """The reference head: one up/down/up back-projection stage by s, then RCAB groups at HR."""

    def __init__(self, cin: int, feats: int, out_feats: int, scale: int, groups: int, rcabs: int):
        super().__init__()
        k, s, p = PROJECTION_GEOMETRY[scale]
        self.up1 = nn.ConvTranspose2d(cin, feats, k, s, p)
        self.act1 = nn.PReLU(feats)
        self.down = nn.Conv2d(feats, cin, k, s, p)
        self.act2 = nn.PReLU(cin)
        self.up2 = nn.ConvTranspose2d(cin, feats, k, s, p)
        self.act3 = nn.PReLU(feats)
        self.refine = nn.Sequential(*(ResidualGroup(feats, rcabs) for _ in range(groups)))
        self.conv = conv(feats, out_feats, 3)
        self.act = lrelu(0.2)
        self.head = conv(out_feats, 1, 3)

    def forward(self, x: torch.Tensor, image: torch.Tensor, bicubic: torch.Tensor) -> torch.Tensor:
        u1 = self.act1(self.up1(x))
        u2 = self.act2(self.down(u1)) - x
        y = u1 + self.act3(self.up2(u2))
        return self.head(self.act(self.conv(self.refine(y))))


class PixelShuffleHead(nn.Module):
    """Light head: RCAB groups at LR, then log2(s) stages of conv → PixelShuffle(2), halving width."""

    def __init__(self, cin: int, feats: int, scale: int, groups: int, rcabs: int, min_feats: int = 8):
        super().__init__()
        self.conv_in = conv(cin, feats, 3)
        self.refine = nn.Sequential(*(ResidualGroup(feats, rcabs) for _ in range(groups)))
        stages, width = [], feats
        for _ in range(int(math.log2(scale))):
            nxt = max(width // 2, min_feats)
            stages += [conv(width, 4 * nxt, 3), nn.PixelShuffle(2), lrelu(0.2)]
            width = nxt
        self.stages = nn.Sequential(*stages)
        self.head = conv(width, 1, 3)
        # Zero-initialised head: training starts from the bicubic skip and learns a residual.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, image: torch.Tensor, bicubic: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.refine(self.conv_in(x))))


class GuidedPixelShuffleHead(nn.Module):
    """Light head with high-resolution RGB guidance.

    An RGB pyramid (a full-resolution stem, then stride-2 convs) gives features at ×2 … ×s of the LR
    grid. Each ×2 pixel-shuffle stage concatenates the RGB features of its new resolution and mixes
    them with a 3×3 conv; at full resolution two convs run on [features, RGB stem, bicubic depth]
    before the zero-initialised output conv. RGB edges can thus place depth edges to the pixel, which
    the all-LR ``PixelShuffleHead`` cannot.
    """

    def __init__(self, cin: int, feats: int, scale: int, groups: int, rcabs: int, guide_feats: int = 16,
                 min_feats: int = 16):
        super().__init__()
        steps = int(math.log2(scale))
        self.conv_in = conv(cin, feats, 3)
        self.refine = nn.Sequential(*(ResidualGroup(feats, rcabs) for _ in range(groups)))
        self.rgb_stem = conv(3, guide_feats, 3)
        # rgb_down[i] halves the resolution: full → /2 → … → ×2 of LR (steps − 1 convs).
        self.rgb_down = nn.ModuleList(nn.Conv2d(guide_feats, guide_feats, 3, stride=2, padding=1)
                                      for _ in range(steps - 1))
        self.up, self.merge = nn.ModuleList(), nn.ModuleList()
        width = feats
        for i in range(steps):
            nxt = max(width // 2, min_feats)
            self.up.append(nn.Sequential(conv(width, 4 * nxt, 3), nn.PixelShuffle(2)))
            last = i == steps - 1
            # The last stage's merge is the full-resolution refinement on [features, RGB stem, bicubic].
            self.merge.append(conv(nxt + guide_feats + (1 if last else 0), nxt, 3))
            width = nxt
        self.refine_hr = conv(width, width, 3)
        self.act = lrelu(0.2)
        self.head = conv(width, 1, 3)
        nn.init.zeros_(self.head.weight)  # training starts from the bicubic skip
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, image: torch.Tensor, bicubic: torch.Tensor) -> torch.Tensor:
        guides = [self.act(self.rgb_stem(image))]
        for down in self.rgb_down:
            guides.append(self.act(down(guides[-1])))
        guides = guides[::-1]  # coarsest (×2 of LR) first
        x = self.refine(self.conv_in(x))
        for i, (up, merge) in enumerate(zip(self.up, self.merge)):
            x = self.act(up(x))
            parts = [x, guides[i]] + ([bicubic.to(x.dtype)] if i == len(self.up) - 1 else [])
            x = self.act(merge(torch.cat(parts, dim=1)))
        return self.head(self.act(self.refine_hr(x)))


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NaimaConfig:
    """Architecture of one NAIMA variant. Presets are instances of this; ``scale`` is separate.

    Attributes:
        scale: SR factor s (4, 8 or 16).
        num_feats: C0; GTA widths are (C0, 2C0, 2C0, 3C0) and the RGB/token features have C0.
        gta_rcabs: RCABs in each GTA's depth encoder.
        encoder: semantic encoder, one of ``encoders.ENCODERS`` ("dinov2_vits14" paper, "efficientnet_lite0",
            "none": no semantic branch).
        token_kernel: kernel of the token projector's first (valid) conv: 3 in the paper, 1 in light.
        token_shuffle: the token projector's PixelShuffle factor (4 for DINOv2's stride-14 tokens, 1 for
            EfficientNet's dense maps).
        attention_kv_stride: keys/values of the GTA attention from the token map average-pooled by this
            stride (1 in the paper; light uses 4: attention cost falls 16×).
        attention: "cosine" (NAIMA) or "add" (NAIMA+, eq. 11).
        fusion_at: "hr" (paper: back-project depth to the RGB resolution) or "lr" (RGB pixel-unshuffled to LR).
        upsampler: upsampling head: "backprojection" (paper), "pixelshuffle" (light) or "guided" (light
            with high-resolution RGB guidance).
        upsampler_feats, upsampler_out_feats, upsampler_groups, upsampler_rcabs: head sizes.
        guide_feats: width of the guided head's RGB features.
        dino_pos_grid: side of the stored DINOv2 position table (37 pretrained; reference: img_size/14).
        dino_input_scale: the semantic encoder (DINOv2 or EfficientNet; the name predates the choice) runs on
            the RGB resized by this factor (1.0 = full resolution).
        keep_unused: keep the reference's dead layers (spa_att, post, reshaper2, GTA4's RGB ResBlock) for
            checkpoint parity and Table 4's counts.
    """

    scale: int
    num_feats: int = 48
    gta_rcabs: int = 6
    encoder: str = "dinov2_vits14"
    token_kernel: int = 3
    token_shuffle: int = TOKEN_SHUFFLE
    attention_kv_stride: int = 1
    attention: str = "cosine"
    fusion_at: str = "hr"
    upsampler: str = "backprojection"
    upsampler_feats: int = 96
    upsampler_out_feats: int = 48
    upsampler_groups: int = 3
    upsampler_rcabs: int = 8
    guide_feats: int = 16
    dino_pos_grid: int = 37
    dino_input_scale: float = 1.0
    keep_unused: bool = False

    def __post_init__(self):
        checks = [
            (self.scale in SCALES, f"scale must be one of {SCALES}, got {self.scale!r}"),
            (self.num_feats >= 16 and self.num_feats % 16 == 0,
             f"num_feats must be a multiple of 16 ≥ 16, got {self.num_feats!r}"),
            (self.gta_rcabs >= 0, f"gta_rcabs must be ≥ 0, got {self.gta_rcabs!r}"),
            (self.encoder in ENCODERS, f"encoder must be one of {ENCODERS}, got {self.encoder!r}"),
            (self.token_kernel in (1, 3), f"token_kernel must be 1 or 3, got {self.token_kernel!r}"),
            (self.token_shuffle in (1, 2, 4), f"token_shuffle must be 1, 2 or 4, got {self.token_shuffle!r}"),
            (self.attention_kv_stride >= 1, f"attention_kv_stride must be ≥ 1, got {self.attention_kv_stride!r}"),
            (self.attention in ("cosine", "add"), f"attention must be 'cosine' or 'add', got {self.attention!r}"),
            (self.fusion_at in ("hr", "lr"), f"fusion_at must be 'hr' or 'lr', got {self.fusion_at!r}"),
            (self.upsampler in ("backprojection", "pixelshuffle", "guided"),
             f"upsampler must be 'backprojection', 'pixelshuffle' or 'guided', got {self.upsampler!r}"),
            (self.dino_pos_grid >= 3, f"dino_pos_grid must be ≥ 3, got {self.dino_pos_grid!r}"),
            (0.0 < self.dino_input_scale <= 1.0, f"dino_input_scale must be in (0, 1], got {self.dino_input_scale!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"NaimaConfig: {message}")

    @property
    def size_multiple(self) -> int:
        """HR height and width must be multiples of this (DINOv2 patches × integer LR size)."""
        if self.encoder == "dinov2_vits14" and self.dino_input_scale == 1.0:
            return math.lcm(PATCH_SIZE, self.scale)
        return self.scale

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Naima(nn.Module):
    """The NAIMA network (docs/model.md §1.0).

    Forward: (standardised RGB (B, 3, H, W), normalised LR depth (B, 1, H/s, W/s)) → (B, 1, H, W)
    normalised HR depth. H and W must be multiples of ``config.size_multiple``.
    """

    def __init__(self, config: NaimaConfig):
        super().__init__()
        self.config = config
        c0, s = config.num_feats, config.scale
        widths = (c0, 2 * c0, 2 * c0, 3 * c0)
        fusion_scale = s if config.fusion_at == "hr" else 1
        self.backbone = build_encoder(config.encoder, config.dino_pos_grid)  # frozen; None: no semantic branch
        self.backbone_identity = "random-init (untrained)" if self.backbone is not None else "none"
        self.backbone_pretrained = False  # set by encoders.prepare_encoder / checkpoint loading
        self.backbone_seed: int | None = None  # set when the random backbone is regenerated from a seed
        dims = token_dims(config.encoder) if self.backbone is not None else (None,) * 4
        if config.fusion_at == "hr":
            self.rgb_stem = conv(3, c0, 3)
        else:  # RGB detail kept losslessly as channels at LR
            self.rgb_stem = nn.Sequential(nn.PixelUnshuffle(s), conv(3 * s * s, c0, 3))
        self.depth_stem = conv(1, c0, 3)
        self.act = lrelu(0.2)
        self.gtas = nn.ModuleList(GuidedTokenAttention(w, c0, config.gta_rcabs, config.attention,
                                                       config.token_kernel, config.attention_kv_stride,
                                                       rgb_output=(i < 3 or config.keep_unused), token_dim=dims[i],
                                                       token_shuffle=config.token_shuffle)
                                  for i, w in enumerate(widths))
        self.fusion_inputs = nn.ModuleList([nn.Conv2d(widths[0], widths[0], 1), nn.Conv2d(widths[1], widths[1], 1),
                                            nn.Conv2d(widths[2], widths[3], 1)])
        self.fusions = nn.ModuleList(FusionBlock(widths[i + (i == 2)], c0, fusion_scale, config.keep_unused)
                                     for i in range(3))
        self.d1_lift = conv(c0, widths[1], 3)  # reference: conv_proj
        self.d3_reduce = nn.Conv2d(2 * widths[1], widths[2], 1)  # reference: reshaper
        if config.keep_unused:
            self.unused_token_reshaper = nn.Conv2d(EMBED_DIM, widths[3], 1)
        # The upsampling head (``upsampler`` is its checkpoint key; naima_ros.inference.Upsampler is the
        # inference wrapper around the whole network).
        if config.upsampler == "backprojection":
            self.upsampler = BackProjectionHead(widths[3], config.upsampler_feats, config.upsampler_out_feats, s,
                                                config.upsampler_groups, config.upsampler_rcabs)
        elif config.upsampler == "pixelshuffle":
            self.upsampler = PixelShuffleHead(widths[3], config.upsampler_feats, s, config.upsampler_groups,
                                              config.upsampler_rcabs)
        else:
            self.upsampler = GuidedPixelShuffleHead(widths[3], config.upsampler_feats, s, config.upsampler_groups,
                                                    config.upsampler_rcabs, config.guide_feats)

    @property
    def scale(self) -> int:
        return self.config.scale

    def train(self, mode: bool = True):
        super().train(mode)
        if self.backbone is not None:
            self.backbone.eval()  # frozen: EfficientNet's batch norm must keep its ImageNet statistics
        return self

    def semantic_tokens(self, image: torch.Tensor) -> list[tuple[torch.Tensor, tuple[int, int]]] | None:
        """(tokens (B, N, D), grid) for each GTA level: the GTA token interface; None without an encoder.

        DINOv2: the four tapped token sets on one grid (on a resized image when ``dino_input_scale`` < 1).
        EfficientNet-Lite0: the stride-4/8/16/32 maps of the (resized) image, flattened row-major.
        """
        if self.backbone is None:
            return None
        if self.config.encoder == "efficientnet_lite0":
            if self.config.dino_input_scale < 1.0:
                size = tuple(max(1, round(side * self.config.dino_input_scale)) for side in image.shape[-2:])
                image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
            with torch.no_grad():
                maps = self.backbone(image)
            return [(m.flatten(2).transpose(1, 2), (m.shape[-2], m.shape[-1])) for m in maps]
        if self.config.dino_input_scale < 1.0:
            h, w = image.shape[-2:]
            k = self.config.token_kernel
            size = (max(k, round(h * self.config.dino_input_scale / PATCH_SIZE)) * PATCH_SIZE,
                    max(k, round(w * self.config.dino_input_scale / PATCH_SIZE)) * PATCH_SIZE)
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
        grid = (image.shape[-2] // PATCH_SIZE, image.shape[-1] // PATCH_SIZE)
        with torch.no_grad():  # frozen: never build a graph through the backbone
            tokens = self.backbone(image)
        return [(t, grid) for t in tokens]

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        check_inputs(image, depth, self.config)
        levels = self.semantic_tokens(image) or [(None, None)] * 4
        d1 = self.act(self.depth_stem(depth))
        r1 = self.act(self.rgb_stem(image))
        g1, g2, g3, g4 = self.gtas
        f1, f2, f3 = self.fusions
        e1, q1 = g1(d1, *levels[0], r1)
        c1, r2 = f1(self.fusion_inputs[0](e1), q1)
        e2, q2 = g2(torch.cat([e1, c1 + d1], dim=1), *levels[1], r2)
        c2, r3 = f2(self.fusion_inputs[1](e2), q2)
        d3 = self.d3_reduce(torch.cat([e2, c2 + self.d1_lift(d1)], dim=1))
        e3, q3 = g3(d3, *levels[2], r3)
        c3, r4 = f3(self.fusion_inputs[2](e3), q3)
        e4, _ = g4(c3, *levels[3], r4)  # GTA4's RGB output is discarded, as in the reference
        # Global bicubic skip in normalised-depth units, added only at the very end (docs/model.md §1.0 step 12).
        skip = F.interpolate(depth, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.upsampler(e4, image, skip) + skip


def check_inputs(image: torch.Tensor, depth: torch.Tensor, config: NaimaConfig) -> None:
    """Raise ValueError naming the shapes when (image, depth) do not fit the network."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W) standardised RGB, got shape {tuple(image.shape)}")
    if depth.ndim != 4 or depth.shape[1] != 1:
        raise ValueError(f"depth must be (B, 1, h, w) normalised LR depth, got shape {tuple(depth.shape)}")
    if image.shape[0] != depth.shape[0]:
        raise ValueError(f"batch sizes differ: image {image.shape[0]}, depth {depth.shape[0]}")
    h, w = image.shape[-2:]
    s, m = config.scale, config.size_multiple
    if h % m or w % m:
        raise ValueError(f"image {h}x{w} must have sides that are multiples of {m} for this model "
                         f"(pad it; naima_ros.inference.Upsampler does)")
    if tuple(depth.shape[-2:]) != (h // s, w // s):
        raise ValueError(f"depth {depth.shape[-2]}x{depth.shape[-1]} must be image {h}x{w} / {s} = {h // s}x{w // s}")
    # The token projector needs at least a token_kernel-sized grid (and DINOv2 one patch); EfficientNet's
    # stride-32 map has a pixel from any size on (the rule is kept: inference pads to it for every encoder).
    min_side = max(config.token_kernel, 1) * PATCH_SIZE / config.dino_input_scale
    if min(h, w) < min_side - 1e-6:
        raise ValueError(f"image {h}x{w} is too small: each side must be ≥ {math.ceil(min_side)} pixels")


# --------------------------------------------------------------------------------------------
# Presets and factory
# --------------------------------------------------------------------------------------------

# Training patch sizes of the reference (img_size): they set its random position table.
REFERENCE_IMG_SIZE = {4: 420, 8: 448, 16: 448}

PRESETS: dict[str, dict] = {
    # The published code: random frozen position table of img_size/14 (scale-dependent), dead layers kept.
    "reference": dict(keep_unused=True),
    # The paper's network, defects fixed: pretrained position table interpolated, no dead layers.
    "naima": dict(),
    # Ablation NAIMA+ (eq. 11): token features added instead of attended.
    "naima_plus": dict(attention="add"),
    # Onboard real time: everything at LR, 2 RCABs per GTA, pixel-shuffle upsampler, DINOv2 at half resolution.
    "light": dict(num_feats=32, gta_rcabs=2, token_kernel=1, attention_kv_stride=4, fusion_at="lr",
                  upsampler="pixelshuffle", upsampler_feats=64,
                  upsampler_groups=1, upsampler_rcabs=4, dino_input_scale=0.5),
    # light + high-resolution RGB guidance in the head + the pretrained EfficientNet-Lite0 encoder on the half-
    # resolution image, whose dense stride-8..64 maps (of the full image) need no token shuffle. The semantic
    # ablation varies encoder/attention from here.
    "light_guided": dict(num_feats=32, gta_rcabs=2, encoder="efficientnet_lite0", token_kernel=1, token_shuffle=1,
                         attention_kv_stride=4, fusion_at="lr", upsampler="guided", upsampler_feats=64,
                         upsampler_groups=1, upsampler_rcabs=4, guide_feats=16, dino_input_scale=0.5),
}


def preset_config(preset: str, scale: int, **overrides) -> NaimaConfig:
    """The ``NaimaConfig`` of a preset at a scale, with overrides (unknown keys rejected)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    fields = {f.name for f in dataclasses.fields(NaimaConfig)} - {"scale"}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown model override(s) {sorted(unknown)}; valid: {sorted(fields)}")
    values = dict(PRESETS[preset])
    if preset == "reference":
        values["dino_pos_grid"] = REFERENCE_IMG_SIZE[scale] // PATCH_SIZE
    values.update(overrides)
    return NaimaConfig(scale=scale, **values)


def build_model(preset: str, scale: int, *, seed: int | None = None, warn_untrained: bool = True,
                **overrides) -> Naima:
    """Build a NAIMA network with a random frozen semantic encoder (no file is opened here).

    Args:
        preset: one of ``PRESETS`` ("reference", "naima", "naima_plus", "light", "light_guided").
        scale: 4, 8 or 16.
        seed: seeds torch's RNG for the trainable initialisation (reproducible runs).
        warn_untrained: warn that the encoder is random (off when weights will be loaded:
            ``naima_ros.model.encoders.prepare_encoder`` or ``naima_ros.checkpoint.load_checkpoint``).
        **overrides: ``NaimaConfig`` fields.

    Returns:
        ``Naima`` in eval mode with a frozen encoder.
    """
    config = preset_config(preset, scale, **overrides)
    if seed is not None:
        torch.manual_seed(seed)
    model = Naima(config)
    if warn_untrained:
        warn_random_encoder(config.encoder)
    return model.eval()


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable and frozen parameter counts (buffers excluded)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}
