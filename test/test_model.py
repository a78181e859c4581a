"""The NAIMA network: parity with the reference, Table 4 counts, shapes, gradients, bad input."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from naima_ros.model import PRESETS, build_model, count_parameters, from_reference_state_dict, preset_config
from naima_ros.model.dinov2 import resample_pos_embed
from naima_ros.model.naima import CosineTokenAttention, TokenProjector, UntrainedBackboneWarning
from parity_fill import filled_reference_state_dict, load_fixture, reference_keys

TABLE4 = {4: (40_967_861, 21_876_480), 8: (59_768_501, 21_924_096), 16: (119_930_549, 21_924_096)}


def quiet_build(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedBackboneWarning)
        return build_model(*args, **kwargs)


@pytest.fixture(scope="module", params=[4, 8, 16])
def reference_model(request):
    scale = request.param
    model = quiet_build("reference", scale)
    model.load_state_dict(from_reference_state_dict(filled_reference_state_dict(scale)), strict=True)
    return scale, model


def test_parity_with_reference_fixtures(reference_model):
    scale, model = reference_model
    fx = load_fixture(scale)
    with torch.inference_mode():
        out = model(fx["rgb"], fx["depth"])
    assert out.shape == fx["output"].shape
    assert (out - fx["output"]).abs().max().item() <= 1e-4


def test_parity_is_sensitive_to_alpha(reference_model):
    """The fixture check can fail: a 5% change of GTA4's alpha moves the output beyond the bound."""
    scale, model = reference_model
    fx = load_fixture(scale)
    alpha = model.gtas[3].attention.alpha
    with torch.inference_mode():
        original = alpha.clone()
        alpha.mul_(1.05)
        try:
            out = model(fx["rgb"], fx["depth"])
        finally:
            alpha.copy_(original)
    assert (out - fx["output"]).abs().max().item() > 1e-4


@pytest.mark.parametrize("scale", [4, 8, 16])
def test_reference_counts_equal_table4(scale):
    counts = count_parameters(quiet_build("reference", scale))
    assert (counts["trainable"], counts["frozen"]) == TABLE4[scale]


@pytest.mark.parametrize("scale", [4, 8, 16])
def test_reference_keys_map_one_to_one(scale):
    keys = reference_keys(scale)
    mapped = from_reference_state_dict({k: torch.empty(shape) for k, shape, _ in keys})
    own = quiet_build("reference", scale).state_dict()
    assert set(mapped) == set(own)
    for key, value in mapped.items():
        assert tuple(value.shape) == tuple(own[key].shape), key
    # frozen stays frozen, trainable stays trainable, buffers stay buffers
    model = quiet_build("reference", scale)
    kinds = {n: ("trainable" if p.requires_grad else "frozen") for n, p in model.named_parameters()}
    kinds.update({n: "buffer" for n, _ in model.named_buffers()})
    mapped_kinds = dict(zip(mapped, (kind for _, _, kind in keys)))
    assert mapped_kinds == kinds


def test_reference_checkpoint_dict_and_ddp_prefix_accepted():
    keys = reference_keys(4)
    sd = {"module." + k: torch.zeros(1) for k, _, _ in keys[:3]}
    out = from_reference_state_dict({"model": sd, "optimizer": {}, "epoch": 3})
    assert set(out) == {"backbone.cls_token", "backbone.pos_embed", "backbone.mask_token"}


# ---------------------------------------------------------------- non-square, other sizes


def test_pos_embed_resample_keeps_row_column_orientation():
    """A table varying only along rows must still vary only along rows on a non-square grid."""
    g0, dim = 6, 4
    rows = torch.arange(g0, dtype=torch.float32).view(g0, 1, 1).expand(g0, g0, dim)
    out = resample_pos_embed(rows.reshape(1, g0 * g0, dim), (9, 4)).reshape(9, 4, dim)
    assert torch.allclose(out, out[:, :1].expand_as(out), atol=1e-5)  # constant along columns
    assert out[-1, 0, 0] > out[0, 0, 0] + 3  # increases down the rows


def test_token_projector_is_row_major_on_non_square_grids():
    proj = TokenProjector(feats=16, kernel=1)
    with torch.no_grad():
        proj.conv3x3.weight.zero_()
        proj.conv3x3.bias.zero_()
        proj.conv3x3.weight[:, 0, 0, 0] = 1.0  # every output channel = token feature 0
        proj.conv1x1.weight.copy_(torch.eye(256).view(256, 256, 1, 1))
        proj.conv1x1.bias.zero_()
    gh, gw = 3, 7
    tokens = torch.zeros(1, gh * gw, 384)
    tokens[0, :, 0] = torch.arange(gh * gw, dtype=torch.float32)  # feature 0 = row * gw + col
    out = proj(tokens, (gh, gw), (gh * 4, gw * 4))
    assert out.shape == (1, 16, 12, 28)
    expected = torch.arange(gh * gw, dtype=torch.float32).view(gh, gw).repeat_interleave(4, 0).repeat_interleave(4, 1)
    assert torch.allclose(out[0, 0], expected)


@pytest.mark.parametrize("hw", [(5, 9), (7, 4)])
def test_fused_attention_equals_explicit_softmax(hw):
    torch.manual_seed(0)
    att = CosineTokenAttention(channels=24, token_feats=16)
    with torch.no_grad():
        att.alpha.fill_(0.7)
    e = torch.randn(2, 24, *hw)
    f = torch.randn(2, 16, *hw)
    q = F.normalize(att.query(e).flatten(2), dim=1, eps=1e-6)
    k = F.normalize(att.key(f).flatten(2), dim=1, eps=1e-6)
    v = att.value(f).flatten(2)
    a = torch.softmax(q.transpose(1, 2) @ k / 24**0.5, dim=-1)
    expected = e + 0.7 * (v @ a.transpose(1, 2)).view_as(e)
    assert torch.allclose(att(e, f), expected, atol=1e-5)


def test_reference_runs_on_non_square_input(reference_model):
    scale, model = reference_model
    m = 112 if scale == 16 else 56
    rgb = torch.randn(1, 3, 2 * m, 3 * m)
    depth = torch.rand(1, 1, 2 * m // scale, 3 * m // scale)
    with torch.inference_mode():
        out = model(rgb, depth)
    assert out.shape == (1, 1, 2 * m, 3 * m) and torch.isfinite(out).all()


def test_non_square_output_is_not_a_transposed_square_assumption():
    """Transposing a non-square input must not give the transposed output (position tables differ),
    but the model must treat both orientations consistently: both finite and correctly shaped."""
    model = quiet_build("naima", 4, seed=0, gta_rcabs=1, upsampler_groups=1, upsampler_rcabs=1)
    rgb = torch.randn(1, 3, 56, 84)
    depth = torch.rand(1, 1, 14, 21)
    with torch.inference_mode():
        a = model(rgb, depth)
        b = model(rgb.transpose(-1, -2).contiguous(), depth.transpose(-1, -2).contiguous())
    assert a.shape == (1, 1, 56, 84) and b.shape == (1, 1, 84, 56)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()


# ---------------------------------------------------------------- every preset


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("scale", [4, 8, 16])
def test_presets_forward_and_gradients(preset, scale):
    overrides = {} if preset == "light" else dict(num_feats=16, gta_rcabs=1, upsampler_groups=1, upsampler_rcabs=1,
                                                  upsampler_feats=16, upsampler_out_feats=16)
    model = quiet_build(preset, scale, seed=0, **overrides).train()
    m = model.config.size_multiple
    side = max(m, 112 if model.config.dino_input_scale < 1 else 56)
    side = -(-side // m) * m
    rgb, depth = torch.randn(1, 3, side, side), torch.rand(1, 1, side // scale, side // scale)
    out = model(rgb, depth)
    assert out.shape == (1, 1, side, side) and torch.isfinite(out).all()
    out.abs().mean().backward()
    unused = ("unused_", "gtas.3.rgb_encoder.")  # the reference's dead layers
    for name, p in model.named_parameters():
        if name.startswith("backbone."):
            assert not p.requires_grad and p.grad is None, name
        elif not any(u in name for u in unused):
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name} got no gradient"


def test_naima_plus_replaces_attention_by_addition():
    model = quiet_build("naima_plus", 8)
    assert not any(name.endswith("attention.alpha") for name, _ in model.named_parameters())
    assert model.config.attention == "add"
    assert preset_config("naima", 8, attention="add") == model.config


def test_light_preset_is_lighter_than_paper():
    light = count_parameters(quiet_build("light", 8))["trainable"]
    paper = count_parameters(quiet_build("naima", 8))["trainable"]
    assert light < paper / 10


def test_untrained_backbone_warns_loudly():
    with pytest.warns(UntrainedBackboneWarning, match="UNTRAINED"):
        build_model("light", 8)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("args,kwargs,match", [
    (("nope", 8), {}, "unknown preset 'nope'"),
    (("light", 3), {}, "scale must be one of"),
    (("light", 8), {"banana": 1}, r"unknown model override\(s\) \['banana'\]"),
    (("light", 8), {"attention": "dot"}, "attention must be"),
    (("light", 8), {"num_feats": 20}, "num_feats must be"),
    (("light", 8), {"dino_input_scale": 0}, "dino_input_scale"),
])
def test_build_model_rejects_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        quiet_build(*args, **kwargs)


@pytest.mark.parametrize("rgb_shape,depth_shape,match", [
    ((1, 1, 56, 56), (1, 1, 14, 14), r"image must be \(B, 3, H, W\)"),
    ((1, 3, 56, 56), (1, 14, 14), r"depth must be \(B, 1, h, w\)"),
    ((2, 3, 56, 56), (1, 1, 14, 14), "batch sizes differ"),
    ((1, 3, 50, 56), (1, 1, 12, 14), "multiples of 28"),
    ((1, 3, 56, 56), (1, 1, 13, 14), "must be image 56x56 / 4 = 14x14"),
])
def test_forward_rejects_bad_shapes(rgb_shape, depth_shape, match):
    model = quiet_build("naima", 4, num_feats=16, gta_rcabs=0, upsampler_groups=0)
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(rgb_shape), torch.zeros(depth_shape))


def test_attention_memory_is_linear_in_positions():
    """NYU x4 at 672²: 28,224 LR positions. An explicit attention matrix would need 3.2 GB; the fused
    kernel must stay far below (run in a fresh process so the peak RSS is this computation's)."""
    code = textwrap.dedent("""
        import resource, torch
        from naima_ros.model.naima import CosineTokenAttention
        torch.manual_seed(0)
        att = CosineTokenAttention(48, 48)
        e, f = torch.randn(1, 48, 168, 168), torch.randn(1, 48, 168, 168)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with torch.inference_mode():
            out = att(e, f)
        assert torch.isfinite(out).all()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    grown = int(res.stdout.strip().splitlines()[-1])
    assert grown < 1.0e9, f"attention grew RSS by {grown / 1e9:.2f} GB (explicit matrix would be 3.2 GB)"


def test_splitmix_rule_matches_parity_md_definition():
    """Independent scalar re-statement of the parity fixtures' fill rule (docs/model.md §8) for a few indices."""
    import zlib

    from naima_ros.model.encoders import splitmix_uniform

    mask = (1 << 64) - 1
    key = "GTA1.spatial_projector.att.alpha"
    for i in (0, 1, 12345):
        x = ((zlib.crc32(key.encode()) << 32) + i) & mask
        z = (x + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        expected = (z >> 11) / 2**53 * 2 - 1
        assert splitmix_uniform(key, i + 1)[i] == pytest.approx(expected, abs=0)
    assert np.all(np.abs(splitmix_uniform("k", 1000)) <= 1)


# ---------------------------------------------------------------- fp16 safety of the spectral fusion


def test_reference_fusion_blocks_are_fp16_safe_at_672():
    """Under fp16 autocast the FFT amplitudes of 672² feature maps pass fp16's range (the DC bin grows with
    the pixel count); the spectral fusion must stay in fp32 and give the fp32 result, finite."""
    model = quiet_build("reference", 8)
    model.load_state_dict(from_reference_state_dict(filled_reference_state_dict(8)), strict=True)
    g = torch.Generator().manual_seed(0)
    for block in model.fusions:
        freq = block.frequency
        depth = torch.rand(1, freq.depth_in.in_channels, 672, 672, generator=g)
        rgb = torch.rand(1, freq.rgb_in.in_channels, 672, 672, generator=g)
        with torch.inference_mode():
            amplitude = torch.fft.rfft2(freq.depth_in(depth)).abs().max().item()
            assert amplitude > 65504, "precondition: the fp32 amplitudes exceed fp16's range"
            reference = freq(depth, rgb)
            with torch.autocast("cpu", dtype=torch.float16):
                half = freq(depth, rgb)
        assert half.dtype == torch.float16 and torch.isfinite(half).all()
        err = (half.float() - reference).abs().max().item()
        assert err <= 1e-2 * reference.abs().max().item(), err
