"""One call for every method: metres in, metres out (``naima_ros.options.METHODS``).

``load_predictor(method, ...)`` returns an object whose ``predict(rgb_uint8, depth_lr_m)`` gives a
``naima_ros.confidence.Prediction``: float32 (H, W) metres (NaN where not published) and a
per-pixel confidence in [0, 1], for the network ("naima", ``naima_ros.inference.Upsampler``) and
for the classical baselines ("bicubic", "guided_filter", "jbu", :class:`BaselinePredictor`);
``predictor(rgb, depth)`` is the depth alone. Both prepare the frame with
``naima_ros.frames.prepare_frame`` (any depth size, the same validity and range mask, robust
normalisation, nearest-valid hole fill) and finish it with ``naima_ros.confidence`` (the same
calibrated confidence rule and ``min_confidence``). So ``naima-eval``, ``naima-bag`` and the node
score and serve every method through one harness, and a baseline predictor never imports torch.

Every predictor has ``.method``, ``.scale``, ``.min_confidence``, ``.describe() -> dict`` and
``.warmup(height, width)``.
"""

from __future__ import annotations

import numpy as np

from naima_ros.confidence import (DEFAULT_MIN_CONFIDENCE, Prediction, calibration_for, check_min_confidence,
                                  finish_prediction)
from naima_ros import baselines
from naima_ros.frames import check_depth_range, prepare_frame
from naima_ros.options import BASELINE_METHODS, METHODS, PRECISIONS, SCALES

__all__ = ["METHODS", "BaselinePredictor", "load_predictor"]

DEFAULT_BASELINE_SCALE = 8  # the scale a baseline reports when none is asked for (the node's default)
# Keyword options each baseline accepts (naima_ros.baselines).
_BASELINE_OPTIONS = {"bicubic": (), "guided_filter": ("radius", "eps"),
                     "jbu": ("radius", "sigma_spatial", "sigma_range")}


class BaselinePredictor:
    """A classical baseline behind the network predictor's call (numpy on the CPU, float64 inside).

    The baseline runs at the frame's own RGB/depth ratio when that is an integer (every baseline takes
    any integer ratio), else on the grid of ``scale`` (``naima_ros.frames.depth_grid``); ``scale`` is
    the factor the predictor is configured for and reports, and selects the per-scale parameter
    defaults when the frame's ratio is not one of ``SCALES``.

    Args:
        method: One of ``BASELINE_METHODS``.
        scale: Configured SR factor (one of ``SCALES``).
        min_depth, max_depth: Valid depth range in metres (None: unbounded).
        options: The baseline's keyword parameters (e.g. ``radius``, ``eps`` of the guided filter).
    """

    device = "cpu"
    precision = "fp64"

    def __init__(self, method: str, scale: int = DEFAULT_BASELINE_SCALE, *, min_depth: float | None = None,
                 max_depth: float | None = None, min_confidence: float = DEFAULT_MIN_CONFIDENCE, **options):
        if method not in BASELINE_METHODS:
            raise ValueError(f"unknown baseline {method!r}; expected one of {', '.join(BASELINE_METHODS)}")
        if scale not in SCALES:
            raise ValueError(f"scale {scale!r} is not one of {SCALES}")
        unknown = sorted(set(options) - set(_BASELINE_OPTIONS[method]))
        if unknown:
            accepted = ", ".join(_BASELINE_OPTIONS[method]) or "none"
            raise ValueError(f"baseline {method!r} has no option(s) {', '.join(unknown)} (accepted: {accepted})")
        check_depth_range(min_depth, max_depth)
        check_min_confidence(min_confidence)
        self.method, self.scale, self.options = method, int(scale), dict(options)
        self.min_depth, self.max_depth, self.min_confidence = min_depth, max_depth, float(min_confidence)
        self.calibration = calibration_for(method, self.scale)
        self._function = baselines.BASELINES[method]

    def predict(self, rgb: np.ndarray, depth_lr: np.ndarray, min_confidence: float | None = None) -> Prediction:
        """Super-resolve one frame: the contract of ``naima_ros.inference.Upsampler.predict``."""
        frame = prepare_frame(rgb, depth_lr, self.min_depth, self.max_depth, scale=self.scale)
        dense = frame.to_metres(self._function(frame.method_rgb(rgb), frame.depth_norm, frame.ratio, **self.options))
        return finish_prediction(frame, dense, self.calibration,
                                 self.min_confidence if min_confidence is None else min_confidence)

    def __call__(self, rgb: np.ndarray, depth_lr: np.ndarray) -> np.ndarray:
        """``predict(rgb, depth_lr).depth``: (H, W) float32 metres, NaN where not published."""
        return self.predict(rgb, depth_lr).depth

    def describe(self) -> dict:
        return {"method": self.method, "checkpoint": None, "scale": self.scale, "device": self.device,
                "precision": self.precision, "options": dict(self.options)}

    def warmup(self, height: int, width: int, iterations: int = 1) -> None:
        """Nothing to compile or allocate ahead; runs one dummy frame so the call path is exercised."""
        s = self.scale
        h, w = max(height // s, 1), max(width // s, 1)
        for _ in range(iterations):
            self(np.zeros((h * s, w * s, 3), np.uint8), np.ones((h, w), np.float32))


def load_predictor(method: str, *, checkpoint=None, scale: int | None = None, device: str = "auto",
                   precision: str = "auto", **options):
    """The predictor of ``method`` (one of ``METHODS``).

    Args:
        method: "naima" (needs ``checkpoint``) or a baseline name.
        checkpoint: Path of a naima_ros checkpoint (resolve node-style values such as a ``{scale}``
            template first, with ``naima_ros.resources.resolve_checkpoint``).
        scale: Expected scale: checked against the checkpoint's; a baseline's configured scale
            (default 8).
        device: "auto", "cpu", "cuda" or "cuda:N" (baselines: auto or cpu).
        precision: One of ``PRECISIONS`` (the network's; baselines compute in float64 whatever it is).
        options: ``min_depth`` / ``max_depth`` (metres) and ``min_confidence`` for every method, plus a
            baseline's keyword parameters.

    Raises:
        ValueError: unknown method, option, device, precision or scale, a checkpoint given to a
            baseline or missing for the network; ``naima_ros.checkpoint.CheckpointError`` for a bad file.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if method == "naima":
        if checkpoint is None:
            raise ValueError("method 'naima' needs a checkpoint (a naima_ros .safetensors file)")
        unknown = sorted(set(options) - {"min_depth", "max_depth", "min_confidence"})
        if unknown:
            raise ValueError(f"method 'naima' has no option(s) {', '.join(unknown)} "
                             f"(accepted: min_depth, max_depth, min_confidence)")
        from naima_ros.inference import Upsampler  # torch: only the network's predictor needs it

        return Upsampler.from_checkpoint(checkpoint, device=device, precision=precision, expect_scale=scale,
                                         **options)
    if checkpoint is not None:
        raise ValueError(f"method {method!r} is a classical baseline and takes no checkpoint (got {checkpoint})")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if str(device) not in ("auto", "cpu"):
        raise ValueError(f"device {device!r}: the baseline {method!r} runs on the CPU (auto or cpu)")
    return BaselinePredictor(method, DEFAULT_BASELINE_SCALE if scale is None else scale, **options)
