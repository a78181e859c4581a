"""Foreign weights → this project's keys: reference NAIMA checkpoints and DINOv2 backbones.

The model classes never know about foreign layouts; everything enters here, shape-checked, and
nothing is unpickled (``torch.load(weights_only=True)`` for ``.pth``, safetensors otherwise).

Also the seeded random backbone: with no DINOv2 file, a checkpoint records a seed and the frozen
random backbone is regenerated bit for bit from it by ``seeded_backbone_state`` (a documented
integer-hash rule, independent of platform, numpy and torch RNG versions).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

# ------------------------------------------------------------------------------------------
# Reference NAIMA (NAIMA-GDSR) state dicts
# ------------------------------------------------------------------------------------------

# Ordered (pattern, replacement) rules; the first match rewrites the key and the rest still apply
# to the result, so nested renames compose. Group numbers that count from 1 in the reference
# (GTA1, bridge1, enc1) become 0-based indices through the callables.
_RCAB = [
    (r"\.body\.0\.", ".conv1."),
    (r"\.body\.2\.", ".conv2."),
    (r"\.body\.3\.conv_du\.0\.", ".attention.squeeze."),
    (r"\.body\.3\.conv_du\.2\.", ".attention.excite."),
]
_DENSE = [
    (r"\.conv1\.identity\.", ".unet1.skip."), (r"\.conv1\.conv_1\.", ".unet1.conv1."),
    (r"\.conv1\.conv_2\.", ".unet1.conv2."), (r"\.conv2\.identity\.", ".unet2.skip."),
    (r"\.conv2\.conv_1\.", ".unet2.conv1."), (r"\.conv2\.conv_2\.", ".unet2.conv2."),
    (r"\.conv3\.", ".out."),
]


def _group_index(prefix_ours: str):
    return lambda m: f"{prefix_ours}.{int(m.group(1)) - 1}."


def _residual_group(index: str, num_blocks: int) -> str:
    """``att_blocks.J`` (J < n: RCAB J; J == n: the tail conv) → ``blocks.J`` / ``conv``."""
    j = int(index)
    return f".blocks.{j}." if j < num_blocks else ".conv."


def reference_rules(gta_rcabs: int = 6, upsampler_rcabs: int = 8) -> list[tuple[str, object]]:
    return [
        (r"^semantics_encoder\.", "backbone."),
        (r"^conv_rgb\.", "rgb_stem."),
        (r"^conv_depth\.", "depth_stem."),
        (r"^GTA(\d)\.", _group_index("gtas")),
        (r"^(gtas\.\d\.)depth_enc\.att_blocks\.(\d+)\.",
         lambda m: m.group(1) + "depth_encoder" + _residual_group(m.group(2), gta_rcabs)),
        (r"\.spatial_projector\.token_encoder\.proj1\.", ".token_projector.conv3x3."),
        (r"\.spatial_projector\.token_encoder\.proj2\.", ".token_projector.conv1x1."),
        (r"\.spatial_projector\.att\.q_proj\.", ".attention.query."),
        (r"\.spatial_projector\.att\.k_proj\.", ".attention.key."),
        (r"\.spatial_projector\.att\.v_proj\.", ".attention.value."),
        (r"\.spatial_projector\.att\.alpha$", ".attention.alpha"),
        (r"\.rgb_encoder\.blocks\.body\.0\.", ".rgb_encoder.conv1."),
        (r"\.rgb_encoder\.blocks\.body\.2\.", ".rgb_encoder.conv2."),
        (r"^bridge(\d)\.", _group_index("fusions")),
        (r"\.rgbprocess\.", ".rgb_conv."),
        (r"\.rgbpre\.", ".rgb_proj."),
        (r"\.spa_process\.0\.", ".spatial_coupling."),
        (r"\.spa_process\.1\.", ".spatial_out."),
        (r"\.fuse_process\.0\.", ".fuse_coupling."),
        (r"\.fuse_process\.1\.", ".fuse_out."),
        (r"_coupling\.invconv\.", "_coupling.mix."),
        (r"_coupling\.F\.", "_coupling.shift_net."),
        (r"_coupling\.G\.", "_coupling.add_net."),
        (r"_coupling\.H\.", "_coupling.scale_net."),
        (r"\.fre_process\.pre1\.", ".frequency.depth_in."),
        (r"\.fre_process\.pre2\.", ".frequency.rgb_in."),
        (r"\.fre_process\.amp_fuse\.", ".frequency.amplitude."),
        (r"\.fre_process\.pha_fuse\.", ".frequency.phase."),
        (r"\.fre_process\.post\.", ".frequency.out."),
        (r"\.(amplitude|phase)\.pre_dep\.", r".\1.depth_in."),
        (r"\.(amplitude|phase)\.pre_rgb\.", r".\1.rgb_in."),
        (r"\.(amplitude|phase)\.fuse_c\.", r".\1.common."),
        (r"\.(amplitude|phase)\.fuse_sub\.", r".\1.difference."),
        (r"\.(amplitude|phase)\.post\.", r".\1.out."),
        (r"\.cha_att\.", ".channel_attention.net."),
        (r"\.spa_att\.", ".unused_spatial_attention."),
        (r"^(fusions\.\d)\.post\.", r"\1.unused_post."),
        (r"\.upBlock\.", ".up_projection."),
        (r"\.downBlock\.", ".down_projection."),
        (r"_projection\.conv_(\d)\.0\.", r"_projection.resample\1."),
        (r"_projection\.conv_(\d)\.1\.", r"_projection.act\1."),
        (r"^conv1x1\.", "fusion_inputs.0."),
        (r"^conv1x1_2\.", "fusion_inputs.1."),
        (r"^conv1x1_3\.", "fusion_inputs.2."),
        (r"^reshaper\.", "d3_reduce."),
        (r"^reshaper2\.", "unused_token_reshaper."),
        (r"^conv_proj\.", "d1_lift."),
        (r"^upsampler\.upsampler1\.", "upsampler.up1."),
        (r"^upsampler\.conv1\.", "upsampler.down."),
        (r"^upsampler\.upsampler2\.", "upsampler.up2."),
        (r"^upsampler\.conv2\.", "upsampler.conv."),
        (r"^upsampler\.conv3\.", "upsampler.head."),
        (r"^upsampler\.enc(\d)\.att_blocks\.(\d+)\.",
         lambda m: f"upsampler.refine.{int(m.group(1)) - 1}"
                   + _residual_group(m.group(2), upsampler_rcabs)),
    ] + _RCAB + [(r"(_net)" + pat, r"\1" + rep) for pat, rep in _DENSE]


def reference_key_to_ours(key: str, rules=None) -> str:
    for pattern, replacement in rules or reference_rules():
        key = re.sub(pattern, replacement, key)
    return key


def from_reference_state_dict(sd: dict) -> dict:
    """Keys of the reference NAIMA code → this project's keys (values untouched).

    The result loads into ``build_model("reference", s)`` with ``strict=True``. The reference's
    checkpoint dict (``{"model": ..., "optimizer": ..., "epoch": ...}``) is accepted too.
    """
    if "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    rules = reference_rules()
    out = {}
    for key, value in sd.items():
        key = key.removeprefix("module.")  # saved from DataParallel/DDP
        new = reference_key_to_ours(key, rules)
        if new in out:
            raise ValueError(f"reference keys collide on {new!r} (from {key!r})")
        out[new] = value
    return out


# ------------------------------------------------------------------------------------------
# DINOv2 backbones
# ------------------------------------------------------------------------------------------

_HF_RULES = [
    (r"^(dinov2\.)", ""),
    (r"^embeddings\.cls_token$", "cls_token"),
    (r"^embeddings\.mask_token$", "mask_token"),
    (r"^embeddings\.position_embeddings$", "pos_embed"),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^encoder\.layer\.(\d+)\.", r"blocks.\1."),
    (r"\.attention\.output\.dense\.", ".attn.proj."),  # the distributed model.safetensors
    (r"\.attention\.o_proj\.", ".attn.proj."),  # transformers ≥ 5 in-memory names
    (r"\.layer_scale1\.lambda1$", ".ls1.gamma"),
    (r"\.layer_scale2\.lambda1$", ".ls2.gamma"),
    (r"^layernorm\.", "norm."),
]


def from_hf_dinov2_state_dict(sd: dict) -> dict:
    """HF ``Dinov2Model`` (``facebook/dinov2-small``) keys → Meta's layout (separate q/k/v fused).

    Accepts the distributed file's names (``attention.attention.query``) and transformers ≥ 5's
    in-memory names (``attention.q_proj``).
    """
    out, qkv = {}, {}
    aliases = {"q_proj": "query", "k_proj": "key", "v_proj": "value"}
    for key, value in sd.items():
        m = re.match(r"^(?:dinov2\.)?encoder\.layer\.(\d+)\.attention\.(?:attention\.)?"
                     r"(query|key|value|q_proj|k_proj|v_proj)\.(weight|bias)$", key)
        if m:
            part = aliases.get(m.group(2), m.group(2))
            qkv.setdefault((int(m.group(1)), m.group(3)), {})[part] = value
            continue
        if key.startswith(("pooler", "classifier", "head")):
            continue
        for pattern, replacement in _HF_RULES:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    for (layer, kind), parts in sorted(qkv.items()):
        if set(parts) != {"query", "key", "value"}:
            raise ValueError(f"HF DINOv2 layer {layer} {kind}: missing one of query/key/value")
        out[f"blocks.{layer}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
    return out


def read_weights(path: str | Path) -> dict:
    """Read a state dict from safetensors or (never unpickling) a ``.pth``; clear errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or a pickle that weights_only refuses
        raise ValueError(f"cannot read weights from {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def backbone_state_from_file(path: str | Path) -> dict:
    """A DINOv2 ViT-S/14 state dict in Meta's layout from Meta's ``.pth`` or HF safetensors."""
    sd = read_weights(path)
    if any(k.startswith(("embeddings.", "encoder.layer.", "dinov2.")) for k in sd):
        sd = from_hf_dinov2_state_dict(sd)
    return {k: v for k, v in sd.items() if not k.startswith("head")}


def load_backbone_weights(backbone: torch.nn.Module, path: str | Path, keep_pos_embed: bool = False) -> None:
    """Load DINOv2 weights into ``backbone``, every key shape-checked, strictly.

    Args:
        keep_pos_embed: keep the backbone's own (random) position table, as the reference code does
            (SPEC.md 1.1); otherwise the pretrained table replaces it (the project's default).
    """
    sd = backbone_state_from_file(path)
    own = backbone.state_dict()
    if keep_pos_embed:
        sd.pop("pos_embed", None)
    elif "pos_embed" in sd:
        own_pos = backbone.pos_embed
        if sd["pos_embed"].shape != own_pos.shape:  # different stored grid: adopt the file's table
            backbone.pos_embed = torch.nn.Parameter(sd["pos_embed"].clone(), requires_grad=False)
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


# ------------------------------------------------------------------------------------------
# Deterministic fills: the splitmix64 rule (also the PARITY.md fixture rule)
# ------------------------------------------------------------------------------------------

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


def seeded_backbone_state(backbone: torch.nn.Module, seed: int) -> dict:
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


# ------------------------------------------------------------------------------------------
# naima-convert
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``naima-convert``: a reference NAIMA ``.pth`` → this project's safetensors checkpoint."""
    from naima_ros.checkpoint import save_checkpoint, state_dict_mismatch
    from naima_ros.model.naima import build_model

    parser = argparse.ArgumentParser(prog="naima-convert", description=main.__doc__)
    parser.add_argument("input", help="reference checkpoint (last.pth / epoch_N.pth), read with weights_only=True")
    parser.add_argument("output", help="output .safetensors (a .json sidecar is not needed: metadata is inside)")
    parser.add_argument("--scale", type=int, required=True, choices=(4, 8, 16))
    parser.add_argument("--dataset", default="nyuv2", help="training dataset tag stored in the metadata")
    args = parser.parse_args(argv)
    try:
        sd = from_reference_state_dict(read_weights(args.input))
        model = build_model("reference", args.scale, warn_untrained=False)
        problem = state_dict_mismatch(model, sd)
        if problem:
            raise ValueError(f"{args.input}: does not match the reference x{args.scale} model: {problem}")
        model.load_state_dict(sd, strict=True)
        model.backbone_identity = "reference-checkpoint (pretrained DINOv2 blocks, random frozen pos_embed)"
        save_checkpoint(args.output, model, preset="reference", extra={"source": str(args.input),
                                                                        "dataset": args.dataset})
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"naima-convert: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"written": args.output, "scale": args.scale}))
    return 0
