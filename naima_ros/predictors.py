"""One call for every method: metres in, metres out (``naima_ros.options.METHODS``).

``load_predictor(method, ...)`` returns an object ``predictor(rgb_uint8, depth_lr_m)`` that gives
float32 (H, W) metres, NaN where the LR cell under an output pixel was invalid, for the network
("naima", ``naima_ros.inference.Upsampler``) and for the classical baselines ("bicubic",
"guided_filter", "jbu", :class:`BaselinePredictor`). Both prepare the frame with
``naima_ros.frames.prepare_frame``: the same validity and range mask, nearest-valid hole fill, LR
min/max normalisation and support mask. So ``naima-eval``, ``naima-bag`` and the node score and
serve every method through one harness, and a baseline predictor never imports torch.

Every predictor has ``.method``, ``.scale``, ``.describe() -> dict`` and ``.warmup(height, width)``.
"""

from __future__ import annotations

import numpy as np

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

    The baseline runs at the frame's own RGB/depth ratio (every baseline takes any integer ratio);
    ``scale`` is the factor the predictor is configured for and reports, and selects the per-scale
    parameter defaults when the frame's ratio is not one of ``SCALES``.

    Args:
        method: One of ``BASELINE_METHODS``.
        scale: Configured SR factor (one of ``SCALES``).
        min_depth, max_depth: Valid depth range in metres (None: unbounded).
        options: The baseline's keyword parameters (e.g. ``radius``, ``eps`` of the guided filter).
    """

    device = "cpu"
    precision = "fp64"

    def __init__(self, method: str, scale: int = DEFAULT_BASELINE_SCALE, *, min_depth: float | None = None,
                 max_depth: float | None = None, **options):
        if method not in BASELINE_METHODS:
            raise ValueError(f"unknown baseline {method!r}; expected one of {', '.join(BASELINE_METHODS)}")
        if scale not in SCALES:
            raise ValueError(f"scale {scale!r} is not one of {SCALES}")
        unknown = sorted(set(options) - set(_BASELINE_OPTIONS[method]))
        if unknown:
            accepted = ", ".join(_BASELINE_OPTIONS[method]) or "none"
            raise ValueError(f"baseline {method!r} has no option(s) {', '.join(unknown)} (accepted: {accepted})")
        check_depth_range(min_depth, max_depth)
        self.method, self.scale, self.options = method, int(scale), dict(options)
        self.min_depth, self.max_depth = min_depth, max_depth
        self._function = baselines.BASELINES[method]

    def __call__(self, rgb: np.ndarray, depth_lr: np.ndarray) -> np.ndarray:
        """Super-resolve one frame: the contract of ``naima_ros.inference.Upsampler.__call__``."""
        frame = prepare_frame(rgb, depth_lr, self.min_depth, self.max_depth)
        return frame.to_metres(self._function(rgb, frame.depth_norm, frame.ratio, **self.options))

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
        options: ``min_depth`` / ``max_depth`` (metres) for every method, plus a baseline's keyword
            parameters.

    Raises:
        ValueError: unknown method, option, device, precision or scale, a checkpoint given to a
            baseline or missing for the network; ``naima_ros.checkpoint.CheckpointError`` for a bad file.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if method == "naima":
        if checkpoint is None:
            raise ValueError("method 'naima' needs a checkpoint (a naima_ros .safetensors file)")
        unknown = sorted(set(options) - {"min_depth", "max_depth"})
        if unknown:
            raise ValueError(f"method 'naima' has no option(s) {', '.join(unknown)} (accepted: min_depth, max_depth)")
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
