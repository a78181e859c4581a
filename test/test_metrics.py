"""Metrics: hand-computed cases, an independent reference on random inputs, masks, units, reduction."""

import math

import numpy as np
import pytest
import torch

from naima_ros.eval import metrics as M


def test_hand_computed_2x2():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[1.0, 0.0], [3.0, 8.0]])
    assert M.rmse(pred, target) == pytest.approx(math.sqrt((0 + 4 + 0 + 16) / 4))
    assert M.mae(pred, target) == pytest.approx(6 / 4)
    mask = np.array([[True, True], [False, False]])
    assert M.rmse(pred, target, mask) == pytest.approx(math.sqrt(4 / 2))
    assert M.rmse(torch.tensor(pred), torch.tensor(target)) == pytest.approx(math.sqrt(5))


def _naive_rmse(pred, target, valid, shave):
    total, count = 0.0, 0
    height, width = pred.shape
    for y in range(shave, height - shave):
        for x in range(shave, width - shave):
            if valid is None or valid[y, x]:
                total += (float(pred[y, x]) - float(target[y, x])) ** 2
                count += 1
    return math.sqrt(total / count)


def test_random_inputs_against_independent_reference():
    rng = np.random.default_rng(0)
    for shape, shave in [((13, 17), 0), ((20, 16), 3), ((15, 15), 6)]:
        pred, target = rng.normal(size=shape), rng.normal(size=shape)
        valid = rng.random(shape) > 0.3
        assert M.rmse(pred, target, shave=shave) == pytest.approx(_naive_rmse(pred, target, None, shave))
        assert M.rmse(pred, target, valid, shave=shave) == pytest.approx(_naive_rmse(pred, target, valid, shave))


def test_per_image_mean_vs_pooled():
    preds = [np.zeros((2, 2)), np.zeros((4, 4))]
    targets = [np.full((2, 2), 1.0), np.full((4, 4), 3.0)]
    assert M.rmse_over_images(preds, targets) == pytest.approx((1 + 3) / 2)
    pooled = math.sqrt((4 * 1 + 16 * 9) / 20)
    assert M.rmse_over_images(preds, targets, reduction="pooled") == pytest.approx(pooled)
    with pytest.raises(ValueError, match="reduction"):
        M.rmse_over_images(preds, targets, reduction="median")


def test_all_invalid_and_error_paths():
    pred = np.zeros((3, 3))
    assert math.isnan(M.rmse(pred, pred, np.zeros((3, 3), bool)))
    assert math.isnan(M.rmse_over_images([pred], [pred], [np.zeros((3, 3), bool)]))
    # An all-invalid image is skipped by the per-image mean.
    assert M.rmse_over_images([pred, pred], [pred, pred + 2], [np.zeros((3, 3), bool), None]) == pytest.approx(2)
    with pytest.raises(ValueError, match="shape"):
        M.rmse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="shave"):
        M.rmse(np.zeros((12, 12)), np.zeros((12, 12)), shave=6)
    with pytest.raises(ValueError, match="same number"):
        M.rmse_over_images([pred], [])


def test_shave_and_denormalise():
    x = np.arange(100).reshape(10, 10)
    assert M.shave_border(x, 2).shape == (6, 6) and M.shave_border(x, 2)[0, 0] == 22
    assert M.shave_border(x, 0) is x
    np.testing.assert_allclose(M.denormalise(np.array([0.0, 0.5, 1.0]), (2.0, 4.0)), [2.0, 3.0, 4.0])


def test_reference_rmse_units():
    rng = np.random.default_rng(1)
    gt = rng.random((20, 20))
    pred = gt + 0.01
    # NYU-like: [min, max] = [0.5, 4.5] m -> 0.01 normalised = 0.04 m = 4 cm everywhere.
    assert M.reference_rmse(pred, gt, (0.5, 4.5), 100.0) == pytest.approx(4.0)
    # Middlebury/Lu: 8-bit with minmax (0, 255) -> 0.01 * 255.
    assert M.reference_rmse(pred, gt, (0.0, 255.0), 1.0) == pytest.approx(2.55)
    # The 6-px shave only scores the interior.
    pred_border = gt.copy()
    pred_border[:6] += 1.0
    assert M.reference_rmse(pred_border, gt, (0, 255), 1.0) == pytest.approx(0.0)
    assert M.reference_rmse(pred_border, gt, (0, 255), 1.0, shave=0) > 100
