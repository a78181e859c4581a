"""Per-pixel confidence: the calibration fit, its features, and which pixels a predictor publishes."""

import json

import numpy as np
import pytest

from naima_ros.confidence import (FEATURES, HOLE_CONFIDENCE_MAX, TOLERANCE, Calibration, calibration_for,
                                  confidence_features, finish_prediction, fit_calibration, within_tolerance)
from naima_ros.frames import prepare_frame
from naima_ros.predictors import load_predictor


def test_fit_recovers_a_known_logistic_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, len(FEATURES))) * [0.5, 1.0, 2.0, 1.5, 0.3] + [0.5, 0.0, -3.0, -2.0, 0.7]
    true_w, true_b = np.array([-2.0, -1.0, -0.5, -0.8, 1.2]), 0.3
    p = 1 / (1 + np.exp(-(x @ true_w + true_b)))
    y = rng.random(len(p)) < p
    fitted = fit_calibration(x, y, "test", l2=0.0)
    spread = np.array([0.5, 1.0, 2.0, 1.5, 0.3])  # a weight is as sure as its feature varies
    assert np.all(np.abs(np.array(fitted.weights) - true_w) < 0.06 / spread)
    assert fitted.bias == pytest.approx(true_b, abs=0.15)
    again = Calibration.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert again == fitted


def test_calibration_table_has_every_method_and_scale_and_checkpoints_win():
    for method in ("naima", "bicubic", "guided_filter", "jbu"):
        for scale in (4, 8, 16):
            calibration = calibration_for(method, scale)
            assert len(calibration.weights) == len(FEATURES) and "PLACEHOLDER" not in calibration.fitted_on
    own = Calibration((0.0,) * len(FEATURES), 5.0, "own")
    assert calibration_for("naima", 8, {"confidence": own.to_dict()}) == own
    with pytest.raises(ValueError, match="features"):
        Calibration.from_dict({"features": ["distance"], "weights": [1.0], "bias": 0.0})


def frame_with_hole(seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    depth = np.full((8, 12), 2.0, np.float32)
    depth[:, 6:] = 3.0
    depth[2:5, 2:4] = np.nan  # a hole in the flat part, 1-2 cells from valid cells
    return rgb, depth


def test_features_know_holes_distance_and_edges():
    rgb, depth = frame_with_hole()
    frame = prepare_frame(rgb, depth, scale=8)
    dense = frame.to_metres(np.kron(frame.depth_norm, np.ones((8, 8))))
    features = dict(zip(FEATURES, confidence_features(frame, dense)))
    assert features["hole"][20, 20] == 1 and features["hole"][0, 0] == 0
    assert features["distance"][24, 20] == pytest.approx(np.log1p(1.0)) and features["distance"][0, 0] == 0
    assert features["spread"][30, 47] > features["spread"][60, 10] + 3  # the 2 m | 3 m edge
    np.testing.assert_allclose(features["depth"][0, 0], np.log(2.0), atol=1e-5)


def test_min_confidence_decides_which_filled_pixels_are_published():
    rgb, depth = frame_with_hole()
    frame = prepare_frame(rgb, depth, scale=8)
    dense = frame.to_metres(np.kron(frame.depth_norm, np.ones((8, 8))))
    sure = Calibration((0.0,) * len(FEATURES), 20.0)  # confidence ~1 everywhere
    everything = finish_prediction(frame, dense, sure, 0.0)
    assert np.isfinite(everything.depth).all()
    hole = ~frame.support
    assert (everything.confidence[hole] <= HOLE_CONFIDENCE_MAX).all() and (everything.confidence[~hole] > 0.99).all()
    squares = finish_prediction(frame, dense, sure, 1.0)  # the square holes of earlier versions
    np.testing.assert_array_equal(np.isnan(squares.depth), hole)
    unsure = Calibration((-5.0, 0, 0, 0, 0), 2.0)  # holes at sigmoid(-3), elsewhere sigmoid(2)
    half = finish_prediction(frame, dense, unsure, 0.5)
    np.testing.assert_array_equal(np.isnan(half.depth), hole)
    assert np.allclose(half.confidence[hole], 1 / (1 + np.exp(3.0)), atol=1e-6)


def test_within_tolerance():
    truth = np.array([1.0, 1.0, 3.0, 3.0])
    assert within_tolerance(truth + [0.039, 0.041, 0.079, -0.081], truth).tolist() == [True, False, True, False]
    assert TOLERANCE == (0.02, 0.02)


def test_every_predictor_returns_a_confidence_that_falls_off_into_holes():
    """A wall at 2 m with 1 % noise and a 6 x 6 cell hole: measured > hole border > hole centre."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    depth = (2.0 + 0.02 * rng.normal(size=(16, 16))).astype(np.float32)
    depth[5:11, 5:11] = np.nan
    for method in ("bicubic", "guided_filter", "jbu"):
        prediction = load_predictor(method, scale=8, min_confidence=0.0).predict(rgb, depth)
        assert prediction.depth.shape == prediction.confidence.shape == rgb.shape[:2]
        assert prediction.confidence.dtype == np.float32
        cell = prediction.confidence.reshape(16, 8, 16, 8).mean(axis=(1, 3))
        measured, border, centre = cell[1:4, 1:4].mean(), cell[5, 5:11].mean(), cell[7:9, 7:9].mean()
        assert measured > border > centre, (method, measured, border, centre)
