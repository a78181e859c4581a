"""Predictors: one call for the network and the baselines, torch-free baselines, the numpy bicubic."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from naima_ros import baselines
from naima_ros.frames import NoValidDepthError, prepare_frame
from naima_ros.inference import Upsampler
from naima_ros.options import BASELINE_METHODS, METHODS
from naima_ros.predictors import BaselinePredictor, load_predictor
from naima_ros.resample import upsample_bicubic


def frame(h, w, s, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h * s, w * s, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (1.0 + 0.02 * yy + 0.01 * xx + 0.3 * (xx > w // 2)).astype(np.float32)
    return rgb, depth


@pytest.mark.parametrize("size_in,size_out", [((7, 11), (56, 88)), ((60, 80), (480, 640)), ((5, 3), (20, 12)),
                                              ((1, 4), (16, 64)), ((10, 10), (7, 13)), ((9, 6), (9, 6))])
def test_numpy_bicubic_equals_torch(size_in, size_out):
    x = np.random.default_rng(sum(size_in)).normal(size=size_in).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(x)[None, None], size=size_out, mode="bicubic",
                             align_corners=False)[0, 0].numpy()
    got = upsample_bicubic(x, size_out)
    assert got.shape == size_out and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_baseline_predictors_import_no_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np\n"
            "from naima_ros.predictors import load_predictor\n"
            "for method in ('bicubic', 'guided_filter', 'jbu'):\n"
            "    p = load_predictor(method, scale=4)\n"
            "    out = p(np.zeros((16, 24, 3), np.uint8), np.full((4, 6), 2.0, np.float32))\n"
            "    assert out.shape == (16, 24) and np.allclose(out, 2.0, atol=1e-5), method\n"
            "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_baseline_predictor_is_the_baseline_on_the_filled_frame(method):
    """Independent reference: fill holes in metres with scipy's nearest, run the baseline in metres
    (every baseline is linear in depth), NaN the cells of invalid LR pixels."""
    rgb, depth = frame(9, 12, 4, seed=2)
    depth[2, 3] = 0
    depth[5, 7:9] = np.nan
    depth[8, 0] = 20.0  # outside max_depth
    valid = np.isfinite(depth) & (depth > 0) & (depth <= 10.0)
    idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    filled = depth[tuple(idx)]
    expected = baselines.BASELINES[method](rgb, filled, 4)
    expected = np.where(np.kron(valid, np.ones((4, 4))) > 0, expected, np.nan)
    got = load_predictor(method, scale=4, min_depth=0.1, max_depth=10.0)(rgb, depth)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, atol=1e-4, equal_nan=True)


def test_network_and_baselines_share_support_mask_and_range(tiny_checkpoint):
    rgb, depth = frame(12, 16, 8)
    depth[3, 4] = 0
    depth[7, 8] = np.inf
    network = load_predictor("naima", checkpoint=tiny_checkpoint(scale=8), scale=8, device="cpu",
                             min_depth=1.0, max_depth=1.3)
    assert isinstance(network, Upsampler) and network.method == "naima" and network.scale == 8
    expected_nan = np.kron(~prepare_frame(rgb, depth, 1.0, 1.3).valid, np.ones((8, 8))) > 0
    for predictor in [network] + [load_predictor(m, scale=8, min_depth=1.0, max_depth=1.3)
                                  for m in BASELINE_METHODS]:
        out = predictor(rgb, depth)
        assert out.dtype == np.float32 and out.shape == rgb.shape[:2]
        assert np.array_equal(np.isnan(out), expected_nan), predictor.method
        assert predictor.describe()["method"] == predictor.method


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_baselines_follow_affine_depth_changes(method):
    """Per-frame normalisation, as the network: metres a·d + b give a·out + b."""
    rgb, depth = frame(8, 10, 8, seed=4)
    predictor = load_predictor(method, scale=8)
    base = predictor(rgb, depth)
    np.testing.assert_allclose(predictor(rgb, 2.5 * depth + 0.7), 2.5 * base + 0.7, atol=1e-4)


def test_baseline_runs_at_the_frames_ratio_and_warms_up():
    predictor = load_predictor("bicubic", scale=8)
    rgb, depth = frame(6, 5, 4)  # ratio 4 on an x8-configured baseline
    out = predictor(rgb, depth)
    np.testing.assert_allclose(out, baselines.bicubic(rgb, prepare_frame(rgb, depth).depth_norm, 4)
                               * np.ptp(depth) + depth.min(), atol=1e-5)
    predictor.warmup(100, 130)
    assert predictor.describe() == {"method": "bicubic", "checkpoint": None, "scale": 8, "device": "cpu",
                                    "precision": "fp64", "options": {}}


def test_baseline_options_reach_the_baseline():
    rgb, depth = frame(8, 8, 4, seed=5)
    narrow = load_predictor("guided_filter", scale=4, radius=1, eps=1e-6)(rgb, depth)
    wide = load_predictor("guided_filter", scale=4, radius=6, eps=1e-1)(rgb, depth)
    assert not np.allclose(narrow, wide)


def test_methods_are_spelled_once():
    assert METHODS == ("naima", "bicubic", "guided_filter", "jbu")
    assert set(baselines.BASELINES) == set(BASELINE_METHODS)


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="dctnet"), "unknown method 'dctnet'"),
    (dict(method="naima"), "needs a checkpoint"),
    (dict(method="naima", checkpoint="x.safetensors", max_pixels=4096), "no option"),
    (dict(method="bicubic", checkpoint="x.safetensors"), "takes no checkpoint"),
    (dict(method="jbu", eps=0.1), "has no option"),
    (dict(method="bicubic", device="cuda"), "runs on the CPU"),
    (dict(method="bicubic", precision="fp8"), "precision 'fp8'"),
    (dict(method="bicubic", scale=3), "scale 3"),
    (dict(method="bicubic", min_depth=2.0, max_depth=1.0), "min_depth < max_depth"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_predictor(**kwargs)


def test_checkpoint_of_another_scale_is_refused(tiny_checkpoint):
    from naima_ros.checkpoint import CheckpointError
    with pytest.raises(CheckpointError):
        load_predictor("naima", checkpoint=tiny_checkpoint(scale=8), scale=4, device="cpu")


def test_all_invalid_frame_is_the_same_error_for_baselines():
    rgb, depth = frame(4, 4, 4)
    with pytest.raises(NoValidDepthError, match="no valid pixel"):
        BaselinePredictor("bicubic", 4)(rgb, np.full_like(depth, np.nan))
