"""DINOv2 ViT-S/14: official weight layouts load, and the HF layout computes what transformers computes."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from naima_ros.model.convert import backbone_state_from_file
from naima_ros.model.encoders import load_dinov2_weights, seeded_backbone_state
from naima_ros.model.dinov2 import DinoV2

transformers = pytest.importorskip("transformers", reason="transformers (dev dependency) is needed for the HF check")


def official_meta_state(pos_grid: int = 37) -> dict:
    """Random tensors with the exact key names and shapes of Meta's dinov2_vits14_pretrain.pth."""
    g = torch.Generator().manual_seed(0)
    sd = {"cls_token": torch.randn(1, 1, 384, generator=g),
          "pos_embed": torch.randn(1, pos_grid**2 + 1, 384, generator=g),
          "mask_token": torch.randn(1, 384, generator=g),
          "patch_embed.proj.weight": torch.randn(384, 3, 14, 14, generator=g),
          "patch_embed.proj.bias": torch.randn(384, generator=g), "norm.weight": torch.randn(384, generator=g),
          "norm.bias": torch.randn(384, generator=g)}
    for i in range(12):
        p = f"blocks.{i}."
        for name, shape in [("norm1.weight", (384,)), ("norm1.bias", (384,)), ("attn.qkv.weight", (1152, 384)),
                            ("attn.qkv.bias", (1152,)), ("attn.proj.weight", (384, 384)), ("attn.proj.bias", (384,)),
                            ("ls1.gamma", (384,)), ("norm2.weight", (384,)), ("norm2.bias", (384,)),
                            ("mlp.fc1.weight", (1536, 384)), ("mlp.fc1.bias", (1536,)),
                            ("mlp.fc2.weight", (384, 1536)), ("mlp.fc2.bias", (384,)), ("ls2.gamma", (384,))]:
            sd[p + name] = torch.randn(*shape, generator=g) * 0.05
    return sd


def test_meta_pth_layout_loads_exactly(tmp_path):
    sd = official_meta_state()
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(sd, path)
    backbone = DinoV2(pos_grid=30)  # the reference's own table size: the file's 37² table replaces it
    load_dinov2_weights(backbone, path)
    own = backbone.state_dict()
    assert own["pos_embed"].shape == (1, 1370, 384)
    for key, value in sd.items():
        assert torch.equal(own[key], value), key
    assert not any(p.requires_grad for p in backbone.parameters())


def test_meta_pth_reference_mode_keeps_random_pos_embed(tmp_path):
    sd = official_meta_state()
    path = tmp_path / "w.pth"
    torch.save(sd, path)
    backbone = DinoV2(pos_grid=32)
    before = backbone.pos_embed.detach().clone()
    load_dinov2_weights(backbone, path, keep_pos_embed=True)
    assert torch.equal(backbone.pos_embed, before)
    assert torch.equal(backbone.blocks[3].mlp.fc1.weight, sd["blocks.3.mlp.fc1.weight"])


def test_pickled_objects_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"cls_token": Payload()}, f)
    with pytest.raises(ValueError, match="cannot read weights from .*evil.pth"):
        backbone_state_from_file(path)


def test_wrong_shapes_and_missing_keys_are_named(tmp_path):
    sd = official_meta_state()
    sd["blocks.0.attn.qkv.weight"] = torch.zeros(10, 384)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"blocks.0.attn.qkv.weight has shape \(10, 384\)"):
        load_dinov2_weights(DinoV2(), tmp_path / "bad.pth")
    sd = official_meta_state()
    del sd["norm.weight"]
    torch.save(sd, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="missing.pth: not a DINOv2 ViT-S/14 state dict; missing .*norm.weight"):
        load_dinov2_weights(DinoV2(), tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_dinov2_weights(DinoV2(), tmp_path / "nowhere.pth")


def hf_model(image_size: int):
    config = transformers.Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                                       patch_size=14, image_size=image_size, layer_norm_eps=1e-6, qkv_bias=True,
                                       layerscale_value=1.0, use_swiglu_ffn=False, hidden_act="gelu")
    torch.manual_seed(0)
    model = transformers.Dinov2Model(config).eval()
    with torch.no_grad():  # make every tensor non-trivial (HF inits LayerScale to 1, LN to identity)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def distributed_hf_names(sd: dict) -> dict:
    """transformers ≥ 5 in-memory names → the names inside facebook/dinov2-small's model.safetensors."""
    renames = {".attention.q_proj.": ".attention.attention.query.", ".attention.k_proj.": ".attention.attention.key.",
               ".attention.v_proj.": ".attention.attention.value.", ".attention.o_proj.": ".attention.output.dense."}
    out = {}
    for key, value in sd.items():
        for old, new in renames.items():
            key = key.replace(old, new)
        out[key] = value.contiguous()
    return out


@pytest.mark.parametrize("file_names", ["distributed", "transformers5"])
@pytest.mark.parametrize("image_hw", [(56, 56), (70, 42)])
def test_hf_safetensors_layout_matches_transformers(tmp_path, image_hw, file_names):
    model = hf_model(image_size=56)
    path = tmp_path / "model.safetensors"
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(distributed_hf_names(sd) if file_names == "distributed" else sd, str(path))
    backbone = DinoV2(pos_grid=4, taps=(2, 5, 8, 11))
    load_dinov2_weights(backbone, path)
    x = torch.randn(2, 3, *image_hw)
    with torch.no_grad():
        ours = backbone(x)
        hf = model(pixel_values=x, output_hidden_states=True)
    if image_hw == (56, 56):  # no interpolation: the two must agree to float precision
        for tap, i in zip(ours, (2, 5, 8, 11)):
            expected = model.layernorm(hf.hidden_states[i + 1])[:, 1:]
            assert torch.allclose(tap, expected, atol=1e-4), (i, (tap - expected).abs().max())
    else:  # HF resamples by size, DINOv2 by scale factor (+0.1): same grid, close values
        assert ours[-1].shape == (2, (70 // 14) * (42 // 14), 384)
        expected = model.layernorm(hf.hidden_states[12])[:, 1:]
        assert torch.corrcoef(torch.stack([ours[-1].flatten(), expected.flatten()]))[0, 1] > 0.99


def test_seeded_backbone_is_bit_reproducible_and_seed_dependent():
    a = seeded_backbone_state(DinoV2(), 7)
    b = seeded_backbone_state(DinoV2(), 7)
    c = seeded_backbone_state(DinoV2(), 8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["blocks.0.attn.qkv.weight"], c["blocks.0.attn.qkv.weight"])
    # documented scales: weights variance 1/fan_in, LayerNorm weights 1, biases 0
    w = a["blocks.0.mlp.fc1.weight"]
    assert abs(w.var().item() * 384 - 1) < 0.02
    assert torch.equal(a["norm.weight"], torch.ones(384)) and torch.equal(a["norm.bias"], torch.zeros(384))


def test_taps_must_be_valid_block_indices():
    with pytest.raises(ValueError, match="taps must be block indices"):
        DinoV2(taps=(2, 12))
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        DinoV2()(torch.zeros(1, 3, 50, 56))
