"""LR synthesis, normalisation, crops and augmentations (docs/model.md §3.2) and the torch datasets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from naima_ros.data import transforms as T
from naima_ros.data.common import RGBDFrame, clip_depth
from naima_ros.data.datasets import TestDataset, TrainDataset, make_test_sample


def test_synthesize_lr_is_antialiased_bicubic_without_clamp():
    depth = torch.rand(1, 1, 64, 48)
    expected = F.interpolate(depth, size=(8, 6), mode="bicubic", antialias=True, align_corners=False)
    torch.testing.assert_close(T.synthesize_lr(depth, 8), expected)
    assert T.synthesize_lr(depth[0], 8).shape == (1, 8, 6)
    lr = T.synthesize_lr(depth[0, 0].numpy(), 4)
    assert isinstance(lr, np.ndarray) and lr.shape == (16, 12)
    # A step edge overshoots below 0 / above 1: no clamping, as the reference.
    step = np.zeros((32, 32), np.float32)
    step[:, 16:] = 1.0
    lr = T.synthesize_lr(step, 4)
    assert lr.min() < 0 and lr.max() > 1
    # Antialiasing differs from plain bicubic.
    plain = F.interpolate(depth, size=(8, 6), mode="bicubic", align_corners=False)
    assert not torch.allclose(plain, expected)
    torch.testing.assert_close(T.synthesize_lr(depth, 8, method="plain"), plain)


def test_area_lr_synthesis_is_the_footprint_mean():
    """What a ToF pixel measures: each LR pixel the mean of its s x s footprint, remainders cropped, no overshoot."""
    depth = np.random.default_rng(0).random((35, 27)).astype(np.float32)
    lr = T.synthesize_lr(depth, 4, method="area")
    assert isinstance(lr, np.ndarray) and lr.shape == (8, 6)
    np.testing.assert_allclose(lr[2, 5], depth[8:12, 20:24].mean(), rtol=1e-6)
    step = np.zeros((32, 32), np.float32)
    step[:, 14:] = 1.0  # the edge inside the fourth footprint: a mixed pixel, no ringing
    lr = T.synthesize_lr(step, 4, method="area")
    assert lr.min() == 0 and lr.max() == 1 and np.allclose(lr[:, 3], 0.5)
    batched = T.synthesize_lr(torch.from_numpy(step)[None, None].repeat(2, 1, 1, 1), 4, method="area")
    assert batched.shape == (2, 1, 8, 8) and torch.equal(batched[1, 0], torch.from_numpy(lr))
    with pytest.raises(ValueError, match="unknown LR synthesis 'nearest'; expected one of antialias, plain, area"):
        T.synthesize_lr(step, 4, method="nearest")


def test_standardise_rgb_modes_and_round_trip():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    std = T.standardise_rgb(rgb)
    assert std.shape == (3, 5, 7) and std.dtype == np.float32
    assert std[0, 1, 2] == pytest.approx((rgb[1, 2, 0] / 255 - 0.485) / 0.229, rel=1e-5)
    np.testing.assert_array_equal(T.unstandardise_rgb(std), rgb)
    np.testing.assert_allclose(T.standardise_rgb(rgb, "unit")[2], rgb[:, :, 2] / 255.0, rtol=1e-6)
    with pytest.raises(ValueError):
        T.standardise_rgb(rgb, "zscore")


def test_modcrop_and_pil_resize():
    assert T.modcrop(np.zeros((370, 427, 3)), 8).shape == (368, 424, 3)
    assert T.resize_bicubic_pil(np.ones((16, 24)), (4, 6)) == pytest.approx(np.ones((4, 6)))


def test_crop_offsets_follow_randrange_quirk():
    rng = np.random.default_rng(0)
    ys, xs = zip(*(T.random_crop_offsets(480, 640, (448, 448), rng) for _ in range(3000)))
    assert min(ys) == 0 and max(ys) == 480 - 448 - 1  # the last offset (32) is never drawn
    assert min(xs) == 0 and max(xs) == 640 - 448 - 1
    assert T.random_crop_offsets(64, 64, (64, 64), rng) == (0, 0)
    with pytest.raises(ValueError, match="does not fit"):
        T.random_crop_offsets(60, 80, (64, 64), rng)


def test_clip_depth_reference_rule():
    raw = np.array([[0.0, 0.05], [5.0, 11.0]], np.float32)
    depth, valid, minmax = clip_depth(raw, (0.1, 10.0))
    np.testing.assert_allclose(depth, [[0.1, 0.1], [5.0, 10.0]])
    np.testing.assert_array_equal(valid, [[False, False], [True, False]])
    assert minmax == (pytest.approx(0.1), pytest.approx(10.0))
    depth, _, minmax = clip_depth(np.array([[0.0, 2.0], [2.0, 3.0]], np.float32), (0.1, 10.0), fill_holes=True)
    assert depth[0, 0] == pytest.approx(2.0) and minmax == (pytest.approx(2.0), pytest.approx(3.0))


def _geometry_probe(size=8):
    """RGB whose three channels equal the depth pattern, so geometric ops can be compared."""
    pattern = torch.arange(size * size, dtype=torch.float32).reshape(1, size, size)
    return pattern.repeat(3, 1, 1), pattern.clone(), (pattern % 3 == 0)


def test_augment_geometry_identical_on_all_arrays_and_colour_on_rgb_only():
    seen_geometry, seen_colour = set(), 0
    for seed in range(64):
        rgb, depth, mask = _geometry_probe()
        out_rgb, (out_depth, out_mask) = T.augment(rgb, [depth, mask], np.random.default_rng(seed))
        # Geometry: the mask still marks the same depth values, and the depth is a permutation.
        torch.testing.assert_close(out_mask, out_depth % 3 == 0)
        assert sorted(out_depth.flatten().tolist()) == sorted(depth.flatten().tolist())
        # Colour ops are affine per image: rgb = a * depth + b with the same geometry.
        a = (out_rgb[0].flatten() - out_rgb[0, 0, 0]) / (out_depth[0].flatten() - out_depth[0, 0, 0] + 1e-12)
        torch.testing.assert_close(a[1:], a[1:].mean().expand_as(a[1:]), atol=1e-4, rtol=1e-4)
        seen_colour += not torch.allclose(out_rgb[0], out_depth[0])
        seen_geometry.add(tuple(out_depth.flatten()[:2].tolist()))
    assert len(seen_geometry) >= 6 and seen_colour > 20  # flips/transposes/rotations and colour ops happen


def test_augment_clamp_flag():
    rgb = torch.full((3, 4, 4), -1.5)
    clamped_any = False
    for seed in range(20):
        out, _ = T.augment(rgb, [], np.random.default_rng(seed), clamp_rgb=True)
        plain, _ = T.augment(rgb, [], np.random.default_rng(seed), clamp_rgb=False)
        if not torch.equal(out, rgb):
            clamped_any = True
            assert out.min() >= 0.0  # the reference's quirk clips standardised RGB to [0, 1]
        assert plain.max() < 0.0  # without the flag nothing is clipped
    assert clamped_any


def test_make_training_sample_shapes_and_lr():
    rng = np.random.default_rng(0)
    rgb = rng.standard_normal((3, 40, 56)).astype(np.float32)
    depth = rng.random((40, 56)).astype(np.float32)
    sample = T.make_training_sample(rgb, depth, depth > 0.1, (0.5, 3.0), "x", patch=32, scale=8,
                                    rng=np.random.default_rng(1))
    assert sample["rgb"].shape == (3, 32, 32) and sample["depth_hr"].shape == (1, 32, 32)
    assert sample["depth_lr"].shape == (1, 4, 4) and sample["valid"].dtype == torch.bool
    torch.testing.assert_close(sample["depth_lr"], T.synthesize_lr(sample["depth_hr"], 8))
    assert sample["minmax"].tolist() == [0.5, 3.0] and sample["name"] == "x"
    plain = T.make_training_sample(rgb, depth, depth > 0.1, (0.5, 3.0), "x", patch=32, scale=8,
                                   rng=np.random.default_rng(1), augmentation=False)
    y, x = T.random_crop_offsets(40, 56, (32, 32), np.random.default_rng(1))
    np.testing.assert_array_equal(plain["depth_hr"][0].numpy(), depth[y:y + 32, x:x + 32])
    with pytest.raises(ValueError, match="multiple"):
        T.make_training_sample(rgb, depth, depth > 0, (0, 1), "x", patch=30, scale=8, rng=rng)


def _frame(name, value, h=48, w=64):
    rng = np.random.default_rng(value)
    depth = rng.uniform(1.0, 2.0, (h, w)).astype(np.float32)
    return RGBDFrame(name=name, rgb=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), depth=depth,
                     valid=np.ones((h, w), bool), minmax=(float(depth.min()), float(depth.max())), unit="m",
                     rmse_scale=100.0, rmse_unit="cm")


def test_train_dataset_mix_determinism_and_epochs():
    frames = [_frame("a", 1), _frame("b", 2)]
    dataset = TrainDataset(frames, scale=4, patch=32, repeat=2, synthetic_count=1, synthetic_size=(48, 64), seed=3)
    assert len(dataset) == 6
    assert [dataset.source(i).name for i in range(6)] == ["a", "b", "synthetic_0"] * 2
    first = dataset[2]
    again = TrainDataset(frames, scale=4, patch=32, repeat=2, synthetic_count=1, synthetic_size=(48, 64), seed=3)[2]
    torch.testing.assert_close(first["rgb"], again["rgb"])
    torch.testing.assert_close(first["depth_lr"], again["depth_lr"])
    assert first["name"] == "synthetic_0" and first["depth_lr"].shape == (1, 8, 8)
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0]["depth_hr"], TrainDataset(frames, scale=4, patch=32, seed=3)[0]["depth_hr"])
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    assert batch["rgb"].shape == (3, 3, 32, 32) and batch["minmax"].shape == (3, 2)
    with pytest.raises(ValueError, match="needs real frames"):
        TrainDataset([], scale=4, patch=32)


def test_test_sample_modcrop_and_units():
    frame = _frame("t", 5, h=50, w=70)
    sample = make_test_sample(frame, 8)
    assert sample["rgb"].shape == (3, 48, 64) and sample["rgb_uint8"].shape == (48, 64, 3)
    assert sample["depth_hr"].shape == (1, 48, 64) and sample["depth_lr"].shape == (1, 6, 8)
    assert sample["rmse_scale"] == 100.0 and sample["rmse_unit"] == "cm" and sample["unit"] == "m"
    unit = TestDataset([frame], 8, "unit")[0]
    assert unit["rgb"].min() >= 0 and unit["rgb"].max() <= 1
