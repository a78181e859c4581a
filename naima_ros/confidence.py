"""Per-pixel confidence of a prediction, and which pixels a predictor publishes.

Every predictor (network and baselines) returns depth and a confidence in [0, 1]: a calibrated
estimate of the probability that the pixel is within ``TOLERANCE`` of the truth
(|error| <= 2 cm + 2 % of the depth). It is one logistic function of five features of the frame and
the prediction, the same rule for every method with coefficients fitted per method and scale
(``fit_calibration``, on ToF-simulated training frames, never on a test set):

- ``hole``: 1 where the grid cell under the pixel had no valid depth (the method filled it);
- ``distance``: log(1 + distance, in grid cells, from the pixel's cell to the nearest valid cell);
- ``spread``: log of the relative depth spread (max - min) / median of the valid cells in the 3x3
  neighbourhood (depth edges and flying pixels);
- ``departure``: log of |prediction - bicubic interpolation of the filled LR| / prediction (how far
  the method moved from the naive answer: it does so at edges, where it is less sure);
- ``depth``: log of the predicted depth (m) (ToF noise grows with distance).

A pixel without a valid cell under it is never certain: its confidence is capped at
``HOLE_CONFIDENCE_MAX`` (0.99). A predictor publishes a pixel when its cell was valid or its
confidence reaches ``min_confidence``: 0 fills every hole, 1 fills none (the square holes of earlier
versions, where an s x s block of output stayed empty for each invalid LR pixel).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["CONFIDENCE_BINS", "DEFAULT_MIN_CONFIDENCE", "FEATURES", "HOLE_CONFIDENCE_MAX", "TOLERANCE", "Calibration",
           "Prediction", "add_to_bins", "bin_names", "bin_stats", "bin_table", "calibration_for",
           "check_min_confidence", "confidence_features", "finish_prediction", "fit_calibration", "within_tolerance"]

FEATURES = ("hole", "distance", "spread", "departure", "depth")
TOLERANCE = (0.02, 0.02)  # a pixel is right when |error| <= 0.02 m + 0.02 x depth
HOLE_CONFIDENCE_MAX = 0.99
# The rule of results/sensor/README.md, fixed before the benchmarks: the largest threshold that still fills 80 % of
# the holes of every shipped model on the calibration frames (20th percentiles of the mixed models: x4 0.224,
# x8 0.207, x16 0.174; of the benchmark models before them 0.231, 0.138, 0.143, which gave 0.1), rounded down to 0.05.
DEFAULT_MIN_CONFIDENCE = 0.15
CALIBRATION_FILE = "confidence_calibration.json"  # package data: the baselines' coefficients


class Prediction(NamedTuple):
    """A predictor's answer for one frame: both (H, W) float32."""

    depth: np.ndarray  # metres, NaN where not published
    confidence: np.ndarray  # [0, 1]; 0 where there is no prediction


class Calibration(NamedTuple):
    """Logistic coefficients: confidence = sigmoid(bias + weights · features)."""

    weights: tuple[float, ...]
    bias: float
    fitted_on: str = ""

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "weights": list(self.weights), "bias": self.bias,
                "tolerance": list(TOLERANCE), "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        if list(data.get("features", [])) != list(FEATURES) or len(data.get("weights", [])) != len(FEATURES):
            raise ValueError(f"confidence calibration for features {data.get('features')}, expected {list(FEATURES)}")
        return cls(tuple(float(w) for w in data["weights"]), float(data["bias"]), str(data.get("fitted_on", "")))


def check_min_confidence(min_confidence: float) -> None:
    """Raise ValueError unless 0 <= min_confidence <= 1."""
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")


def within_tolerance(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """True where |prediction - truth| <= ``TOLERANCE`` (metres)."""
    return np.abs(prediction - truth) <= TOLERANCE[0] + TOLERANCE[1] * np.abs(truth)


@lru_cache(maxsize=1)
def _packaged() -> dict:
    return json.loads(resources.files("naima_ros").joinpath(CALIBRATION_FILE).read_text())


def calibration_for(method: str, scale: int, metadata: dict | None = None) -> Calibration:
    """The calibration of a method at a scale: a checkpoint's own (``metadata["confidence"]``), else the
    packaged one of the method (the network's generic entry for checkpoints without one)."""
    if metadata and metadata.get("confidence"):
        return Calibration.from_dict(metadata["confidence"])
    table = _packaged()
    key = f"{method}_x{scale}"
    if key not in table:
        key = f"{method}_x8" if f"{method}_x8" in table else "bicubic_x8"
    return Calibration.from_dict(table[key])


def _grid_to_output(grid_values: np.ndarray, frame) -> np.ndarray:
    from naima_ros.frames import support_mask

    return support_mask(grid_values, frame.grid.rgb_hw)  # nearest cell under each output pixel


def _grid_features(frame) -> np.ndarray:
    """(3, h, w) float32: hole, distance, spread on the method's grid (``FEATURES[:3]``)."""
    from scipy import ndimage

    valid = frame.valid
    distance = ndimage.distance_transform_edt(~valid) if not valid.all() else np.zeros(valid.shape)
    grid_m = frame.depth_grid_m
    high = ndimage.maximum_filter(np.where(valid, grid_m, -np.inf), size=3, mode="nearest")
    low = ndimage.minimum_filter(np.where(valid, grid_m, np.inf), size=3, mode="nearest")
    filled_m = frame.depth_norm.astype(np.float64) * frame.span + frame.depth_min
    with np.errstate(invalid="ignore"):
        spread = np.where(np.isfinite(high - low), (high - low) / np.maximum(filled_m, 1e-3), 0.0)
    return np.stack([~valid, np.log1p(distance), np.log(spread + 1e-3)]).astype(np.float32)


def _output_features(frame, depth: np.ndarray) -> np.ndarray:
    """(2, H, W) float32: departure and depth at the output's size (``FEATURES[3:]``)."""
    from naima_ros.resample import upsample_bicubic

    filled_m = frame.depth_norm.astype(np.float64) * frame.span + frame.depth_min
    interpolated = upsample_bicubic(filled_m, frame.grid.rgb_hw)
    depth_safe = np.maximum(np.nan_to_num(depth, nan=1.0), 1e-3)
    departure = np.abs(depth_safe - interpolated) / depth_safe
    return np.stack([np.log(departure + 1e-3), np.log(depth_safe)]).astype(np.float32)


def confidence_features(frame, depth: np.ndarray) -> np.ndarray:
    """(len(FEATURES), H, W) float32 features of a dense prediction (metres) on a prepared frame."""
    grid = [_grid_to_output(f, frame) for f in _grid_features(frame)]
    return np.concatenate([np.stack(grid), _output_features(frame, depth)])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free


def finish_prediction(frame, depth: np.ndarray, calibration: Calibration, min_confidence: float) -> Prediction:
    """Confidence of a dense prediction, and the pixels published (module docstring).

    Args:
        frame: The ``naima_ros.frames.PreparedFrame`` the method ran on.
        depth: (H, W) dense prediction in metres (``frame.to_metres``).
        calibration: The method's coefficients.
        min_confidence: Publish a pixel without a valid cell only from this confidence on.
    """
    weights = np.asarray(calibration.weights, np.float32)
    # The logit is linear in the features: the grid's part is summed on the grid and expanded once.
    grid_logit = np.tensordot(weights[:3], _grid_features(frame), axes=1) + np.float32(calibration.bias)
    departure, log_depth = _output_features(frame, depth)
    logit = _grid_to_output(grid_logit.astype(np.float32), frame) + weights[3] * departure + weights[4] * log_depth
    confidence = _sigmoid(logit).astype(np.float32)
    support = frame.support
    confidence = np.where(support, confidence, np.minimum(confidence, HOLE_CONFIDENCE_MAX))
    predicted = np.isfinite(depth)
    confidence = np.where(predicted, confidence, 0.0).astype(np.float32)
    published = predicted & (support | (confidence >= min_confidence))
    return Prediction(np.where(published, depth, np.float32(np.nan)).astype(np.float32), confidence)


def fit_calibration(features: np.ndarray, correct: np.ndarray, fitted_on: str = "",
                    l2: float = 1e-3) -> Calibration:
    """Logistic regression of ``correct`` (N,) bool on ``features`` (N, len(FEATURES)).

    Minimises the mean log loss + ``l2`` · |weights|² with L-BFGS (scipy).
    """
    from scipy.optimize import minimize

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"expected (N, {len(FEATURES)}) features and (N,) labels, got {x.shape} and {y.shape}")
    # Standardised for conditioning; a feature that barely varies for a method (the departure of bicubic from
    # bicubic) keeps a floor, so the penalty holds its weight near zero instead of trading it against the bias.
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 0.05)

    def loss(theta):
        z = ((x - mean) / std) @ theta[1:] + theta[0]
        log_p = -np.logaddexp(0.0, -z)
        log_q = -np.logaddexp(0.0, z)
        p = _sigmoid(z)
        value = -np.mean(y * log_p + (1 - y) * log_q) + l2 * np.sum(theta[1:] ** 2)
        grad_z = (p - y) / len(y)
        grad = np.concatenate([[grad_z.sum()], ((x - mean) / std).T @ grad_z + 2 * l2 * theta[1:]])
        return value, grad

    theta = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    weights = theta[1:] / std
    bias = theta[0] - float(np.sum(weights * mean))
    return Calibration(tuple(float(w) for w in weights), float(bias), fitted_on)


# ---------------------------------------------------------------------- reliability tables
CONFIDENCE_BINS = np.linspace(0.0, 1.0, 11)  # the bins of every reliability table (naima-eval, naima-bag eval)


def bin_names() -> list[str]:
    return [f"{CONFIDENCE_BINS[i]:.1f}-{CONFIDENCE_BINS[i + 1]:.1f}" for i in range(len(CONFIDENCE_BINS) - 1)]


def bin_table() -> np.ndarray:
    """An empty reliability table: per confidence bin, pixels, sum of squared error, pixels within tolerance."""
    return np.zeros((len(CONFIDENCE_BINS) - 1, 3))


def add_to_bins(table: np.ndarray, confidence: np.ndarray, error: np.ndarray, ok: np.ndarray) -> None:
    """Pool scored pixels (1-D: their confidence, error and whether within tolerance) into `table`."""
    index = np.clip(np.digitize(confidence, CONFIDENCE_BINS) - 1, 0, len(table) - 1)
    table[:, 0] += np.bincount(index, minlength=len(table))
    table[:, 1] += np.bincount(index, weights=error.astype(np.float64) ** 2, minlength=len(table))
    table[:, 2] += np.bincount(index, weights=ok.astype(np.float64), minlength=len(table))


def bin_stats(table: np.ndarray) -> list[tuple[str, int, float, float]]:
    """Per bin: name, pixels, RMSE (the error's unit) and share within tolerance (NaN for an empty bin)."""
    return [(name, int(count), float(np.sqrt(squared / count)) if count else float("nan"),
             float(ok / count) if count else float("nan"))
            for name, (count, squared, ok) in zip(bin_names(), table)]
