"""Baselines against naive implementations, the README bicubic anchors on the real files, figures."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from naima_ros.data import shared
from naima_ros.data.transforms import modcrop, resize_bicubic_pil, synthesize_lr
from naima_ros import baselines as B
from naima_ros.eval import figures
from naima_ros.eval import metrics as M

SHARED = shared.shared_data_root()
needs_shared = pytest.mark.skipif(
    not (SHARED / "gdsr_test" / "Middlebury").is_dir() or not (SHARED / "gdsr_test" / "Lu").is_dir(),
    reason=f"shared real data (gdsr_test/Middlebury, Lu) not found at {SHARED}; set NAIMA_SHARED_DATA")


def _naive_box_mean(x, r):
    out = np.zeros(x.shape, dtype=np.float64)
    for y in range(x.shape[0]):
        for k in range(x.shape[1]):
            out[y, k] = x[max(0, y - r):y + r + 1, max(0, k - r):k + r + 1].mean(axis=(0, 1))
    return out


def _naive_guided_filter(guide, src, r, eps):
    """He et al.'s per-window ridge regression solved by least squares, then averaged per pixel."""
    height, width = src.shape
    a = np.zeros((height, width, 3))
    b = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            ys, xs = slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1)
            guide_w, src_w = guide[ys, xs].reshape(-1, 3), src[ys, xs].reshape(-1)
            n = len(src_w)
            # min sum (a . I + b - p)^2 + n * eps * |a|^2 as an augmented least-squares system.
            design = np.vstack([np.hstack([guide_w, np.ones((n, 1))]),
                                np.hstack([math.sqrt(n * eps) * np.eye(3), np.zeros((3, 1))])])
            target = np.concatenate([src_w, np.zeros(3)])
            solution = np.linalg.lstsq(design, target, rcond=None)[0]
            a[y, x], b[y, x] = solution[:3], solution[3]
    out = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            ys, xs = slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1)
            out[y, x] = (a[ys, xs].reshape(-1, 3) @ guide[y, x]).mean() + b[ys, xs].mean()
    return out


def _naive_jbu(rgb, depth, s, radius, sigma_s, sigma_r):
    h, w = depth.shape
    guide = rgb / 255.0
    out = np.zeros((h * s, w * s))
    for y in range(h * s):
        for x in range(w * s):
            py, px = (y + 0.5) / s - 0.5, (x + 0.5) / s - 0.5
            num = den = 0.0
            for qy in range(int(np.rint(py)) - radius, int(np.rint(py)) + radius + 1):
                for qx in range(int(np.rint(px)) - radius, int(np.rint(px)) + radius + 1):
                    if 0 <= qy < h and 0 <= qx < w:
                        block = guide[qy * s:(qy + 1) * s, qx * s:(qx + 1) * s].reshape(-1, 3).mean(0)
                        weight = math.exp(-((py - qy) ** 2 + (px - qx) ** 2) / (2 * sigma_s**2))
                        weight *= math.exp(-float(np.sum((guide[y, x] - block) ** 2)) / (2 * sigma_r**2))
                        num += weight * depth[qy, qx]
                        den += weight
            out[y, x] = num / den
    return out


def test_box_mean_matches_naive():
    x = np.random.default_rng(0).random((9, 11, 2))
    for r in (0, 1, 3, 12):
        np.testing.assert_allclose(B.box_mean(x, r), _naive_box_mean(x, r), atol=1e-12)


def test_guided_filter_matches_naive_least_squares():
    rng = np.random.default_rng(1)
    guide, src = rng.random((10, 12, 3)), rng.random((10, 12))
    for r, eps in [(1, 1e-3), (2, 1e-2), (3, 1e-4)]:
        np.testing.assert_allclose(B.guided_filter_rgb(guide, src, r, eps), _naive_guided_filter(guide, src, r, eps),
                                   atol=1e-8)


def test_guided_filter_upsampling_is_bicubic_then_filter_and_unit_free():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    lr = rng.random((4, 6)).astype(np.float32) + 1.0
    up = F.interpolate(torch.from_numpy((lr - lr.min()) / (lr.max() - lr.min()))[None, None], size=(16, 24),
                       mode="bicubic", align_corners=False)[0, 0].numpy()
    expected = _naive_guided_filter(rgb / 255.0, up, 2, 1e-3) * (lr.max() - lr.min()) + lr.min()
    np.testing.assert_allclose(B.guided_filter(rgb, lr, 4, radius=2, eps=1e-3), expected, atol=1e-5)
    # Linear in depth: metres vs millimetres give the same map up to the unit.
    np.testing.assert_allclose(B.guided_filter(rgb, lr * 1000, 4) / 1000, B.guided_filter(rgb, lr, 4), atol=1e-5)


def test_jbu_matches_naive():
    rng = np.random.default_rng(3)
    for s, radius, sigma_s, sigma_r in [(2, 1, 0.5, 0.1), (4, 2, 1.0, 0.3), (3, 1, 0.7, 0.05)]:
        rgb = rng.integers(0, 256, (4 * s, 5 * s, 3), dtype=np.uint8)
        lr = rng.random((4, 5))
        np.testing.assert_allclose(
            B.joint_bilateral_upsampling(rgb, lr, s, radius=radius, sigma_spatial=sigma_s, sigma_range=sigma_r),
            _naive_jbu(rgb, lr, s, radius, sigma_s, sigma_r), rtol=1e-5, atol=1e-6)


def test_common_signature_and_input_checks():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    lr = rng.random((4, 6)).astype(np.float32)
    for name, baseline in B.BASELINES.items():
        out = baseline(rgb, lr, 8)
        assert out.shape == (32, 48) and out.dtype == np.float32 and np.isfinite(out).all(), name
        # A constant depth stays constant.
        np.testing.assert_allclose(baseline(rgb, np.full((4, 6), 2.5), 8), 2.5, rtol=1e-5)
    expected = F.interpolate(torch.from_numpy(lr)[None, None], size=(32, 48), mode="bicubic", align_corners=False)
    # numpy's float64 kernel vs torch's float32 one: equal to float32 rounding.
    np.testing.assert_allclose(B.bicubic(rgb, lr, 8), expected[0, 0].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="modcrop"):
        B.bicubic(rgb[:30], lr, 8)
    with pytest.raises(ValueError, match="non-finite"):
        B.guided_filter(rgb, np.full((4, 6), np.nan), 8)


# shared/data/README.md anchors (x4, x8, x16), per-image RMSE x255 averaged, modcrop, depth / 255.
ANCHORS = {
    "pil": {"Middlebury": (2.28, 3.98, 6.37), "Lu": (2.42, 4.54, 7.38)},
    "torch": {"Middlebury": (2.23, 3.92, 6.28), "Lu": (2.36, 4.44, 7.26)},
    "pil_shave6": {"Middlebury": (2.30, 4.00, 6.34), "Lu": (2.47, 4.64, 7.52)},
}


def bicubic_rmse(frames, scale, protocol):
    """Per-image-mean RMSE (8-bit units) of bicubic under one of the README's protocols."""
    values = []
    for frame in frames:
        rgb, gt = modcrop(frame.rgb, scale), modcrop(frame.depth_norm, scale)
        if protocol == "torch":
            pred = B.bicubic(rgb, synthesize_lr(gt, scale), scale)
        else:
            pred = B.bicubic_pil(rgb, resize_bicubic_pil(gt, (gt.shape[0] // scale, gt.shape[1] // scale)), scale)
        shave = M.REFERENCE_SHAVE_PX if protocol == "pil_shave6" else 0
        values.append(M.reference_rmse(pred, gt, frame.minmax, frame.rmse_scale, shave=shave))
    return float(np.mean(values))


@needs_shared
@pytest.mark.parametrize("protocol", sorted(ANCHORS))
def test_bicubic_anchors_reproduced_to_the_second_decimal(protocol):
    for dataset, expected in ANCHORS[protocol].items():
        frames = list(shared.load_test_set(dataset))
        assert len(frames) == {"Middlebury": 30, "Lu": 6}[dataset]
        measured = tuple(round(bicubic_rmse(frames, s, protocol), 2) for s in (4, 8, 16))
        assert measured == expected, f"{protocol} {dataset}: measured {measured}, README {expected}"


@needs_shared
def test_guided_filter_and_jbu_beat_bicubic_on_middlebury_x8():
    scale = 8
    scores = {name: [] for name in B.BASELINES}
    for frame in shared.load_test_set("Middlebury"):
        rgb, gt = modcrop(frame.rgb, scale), modcrop(frame.depth_norm, scale)
        lr = synthesize_lr(gt, scale)
        for name, baseline in B.BASELINES.items():
            scores[name].append(M.reference_rmse(baseline(rgb, lr, scale), gt, frame.minmax, frame.rmse_scale, shave=0))
    mean = {name: float(np.mean(v)) for name, v in scores.items()}
    assert mean["bicubic"] == pytest.approx(3.92, abs=0.005)
    assert mean["guided_filter"] < mean["bicubic"] - 0.1, mean
    assert mean["jbu"] < mean["bicubic"] - 0.1, mean


def test_figures_write_pngs(tmp_path):
    rng = np.random.default_rng(5)
    gt = rng.random((24, 32)) * 3 + 1
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    preds = {"Bicubic": gt + 0.1, "GF": gt - 0.05, "NAIMA": gt}
    path = figures.save_comparison_strip(tmp_path / "a" / "strip.png", rgb, preds, gt, valid=gt > 1.5, unit="cm",
                                         title="tiny")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = figures.save_error_map(tmp_path / "err.png", gt + 0.2, gt, unit="cm", title="err")
    assert path.stat().st_size > 0
    assert figures.depth_range(np.full((4, 4), np.nan)) == (0.0, 1.0)
