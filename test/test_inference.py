"""Upsampler: metres in/out at any size, invalid pixels, precision, bad input."""

import numpy as np
import pytest
import torch

from naima_ros.frames import fill_invalid_nearest
from naima_ros.inference import NoValidDepthError, Upsampler


@pytest.fixture(scope="module")
def upsampler(tiny_checkpoint):
    return Upsampler.from_checkpoint(tiny_checkpoint(scale=8), device="cpu")


def frame(h, w, s, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h * s, w * s, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (1.0 + 0.02 * yy + 0.01 * xx + 0.3 * (xx > w // 2)).astype(np.float32)
    return rgb, depth


@pytest.mark.parametrize("h,w", [(7, 11), (37, 53), (60, 80), (16, 9)])
def test_any_size_gives_full_resolution_metres(upsampler, h, w):
    rgb, depth = frame(h, w, 8)
    out = upsampler(rgb, depth)
    assert out.shape == (8 * h, 8 * w) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_invalid_lr_pixels_become_nan_cells_at_min_confidence_1(upsampler):
    """min_confidence 1 publishes no filled pixel: the square holes of earlier versions; 0 fills them all."""
    rgb, depth = frame(12, 16, 8)
    depth[3, 4] = 0
    depth[5, 6] = np.nan
    depth[7, 8] = np.inf
    upsampler.min_confidence = 1.0
    prediction = upsampler.predict(rgb, depth)
    out = prediction.depth
    for y, x in [(3, 4), (5, 6), (7, 8)]:
        assert np.isnan(out[8 * y: 8 * y + 8, 8 * x: 8 * x + 8]).all()
        assert (prediction.confidence[8 * y: 8 * y + 8, 8 * x: 8 * x + 8] <= 0.99).all()  # never certain
    assert np.isnan(out).sum() == 3 * 64
    upsampler.min_confidence = 0.0
    filled = upsampler.predict(rgb, depth)
    assert np.isfinite(filled.depth).all() and ((filled.confidence >= 0) & (filled.confidence <= 1)).all()
    np.testing.assert_array_equal(filled.depth[np.isfinite(out)], out[np.isfinite(out)])


def test_depth_range_limits_mark_pixels_invalid(tiny_checkpoint):
    up = Upsampler.from_checkpoint(tiny_checkpoint(scale=8), device="cpu", min_depth=1.0, max_depth=1.3,
                                   min_confidence=1.0)
    rgb, depth = frame(12, 16, 8)
    out = up(rgb, depth)
    assert np.isnan(out[::8, ::8]).tolist() == (~((depth >= 1.0) & (depth <= 1.3))).tolist()


def test_output_follows_affine_depth_changes(upsampler):
    """Per-frame normalisation: metres a·d + b give a·out + b (the network sees the same input)."""
    rgb, depth = frame(10, 14, 8)
    base = upsampler(rgb, depth)
    moved = upsampler(rgb, 2.5 * depth + 0.7)
    assert np.allclose(moved, 2.5 * base + 0.7, atol=1e-4)


def test_non_integer_ratios_are_served_and_other_aspect_ratios_named(upsampler):
    out = upsampler(np.zeros((100, 130, 3), np.uint8), np.full((30, 39), 2.0, np.float32))  # ratio 3.33
    assert out.shape == (100, 130) and np.isfinite(out).all()
    with pytest.raises(ValueError, match=r"rgb 130x100 and depth 16x12 have different aspect ratios"):
        upsampler(np.zeros((100, 130, 3), np.uint8), np.ones((12, 16), np.float32))
    with pytest.raises(ValueError, match=r"rgb 64x96 and depth 16x12 have different aspect ratios"):
        upsampler(np.zeros((96, 64, 3), np.uint8), np.ones((12, 16), np.float32))


def test_other_integer_ratio_runs_at_model_scale(upsampler):
    rgb, depth = frame(12, 16, 4)  # RGB only 4× the depth: x8 model runs, output resized to the RGB size
    out = upsampler(rgb, depth)
    assert out.shape == (48, 64) and np.isfinite(out).all()
    assert abs(np.nanmean(out) - depth.mean()) < 0.2


@pytest.mark.parametrize("rgb,depth,match", [
    (np.zeros((64, 64), np.uint8), np.ones((8, 8), np.float32), r"rgb must be a numpy uint8 array \(H, W, 3\)"),
    (np.zeros((64, 64, 3), np.float32), np.ones((8, 8), np.float32), "rgb must be uint8"),
    (np.zeros((64, 64, 3), np.uint8), np.ones((8, 8), np.uint16), "depth_lr must be float metres"),
    (np.zeros((64, 64, 3), np.uint8), np.ones((1, 8, 8), np.float32), "depth_lr must be a 2-D numpy array"),
    (np.zeros((0, 64, 3), np.uint8), np.ones((0, 8), np.float32), "empty frame"),
    ([[1]], np.ones((8, 8), np.float32), "rgb must be a numpy uint8 array"),
])
def test_bad_inputs_are_named(upsampler, rgb, depth, match):
    with pytest.raises(ValueError, match=match):
        upsampler(rgb, depth)


def test_all_invalid_depth_is_its_own_error(upsampler):
    rgb, depth = frame(8, 8, 8)
    depth[:] = np.nan
    with pytest.raises(NoValidDepthError, match="no valid pixel"):
        upsampler(rgb, depth)


def test_constructor_arguments_are_checked(tiny_checkpoint):
    path = tiny_checkpoint(scale=8)
    with pytest.raises(ValueError, match="precision 'fp8'"):
        Upsampler.from_checkpoint(path, device="cpu", precision="fp8")
    with pytest.raises(ValueError, match="device 'tpu'"):
        Upsampler.from_checkpoint(path, device="tpu")
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        Upsampler.from_checkpoint(path, device="cpu", min_depth=2.0, max_depth=1.0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Upsampler.from_checkpoint(path, device="cuda:0")


@pytest.mark.parametrize("precision,tolerance", [("bf16", 0.05), ("fp16", 0.01)])
def test_reduced_precision_matches_fp32(tiny_checkpoint, precision, tolerance):
    """Autocast bf16/fp16 vs fp32 on CPU, relative to the frame's depth span."""
    path = tiny_checkpoint(scale=8)
    rgb, depth = frame(20, 24, 8, seed=3)
    ref = Upsampler.from_checkpoint(path, device="cpu", precision="fp32")(rgb, depth)
    low = Upsampler.from_checkpoint(path, device="cpu", precision=precision)(rgb, depth)
    span = depth.max() - depth.min()
    err = np.abs(low - ref) / span
    assert err.max() < tolerance, f"{precision}: max error {err.max():.4f} of the depth span"
    assert not np.array_equal(low, ref)  # autocast really ran in reduced precision


def test_fill_invalid_uses_nearest_valid_value():
    values = np.array([[1.0, 0.0, 0.0, 4.0]])
    valid = np.array([[True, False, False, True]])
    assert fill_invalid_nearest(values, valid).tolist() == [[1.0, 1.0, 4.0, 4.0]]


def test_describe_and_warmup(upsampler):
    info = upsampler.describe()
    assert info["scale"] == 8 and info["preset"] == "light" and info["precision"] == "fp32"
    assert "UNTRAINED" in info["backbone"]
    encoder = info["semantic_encoder"]
    assert encoder["identity"] == info["backbone"] and encoder["pretrained"] is False
    assert set(encoder) >= {"name", "pretrained", "identity", "seed", "rgb_normalisation"}
    upsampler.warmup(100, 130, iterations=1)  # not a multiple of 8: rounded down, must not raise
