"""Frame preparation shared by every predictor, network and baselines alike (numpy + scipy, no torch).

What happens between the sensor arrays and a method, and back:

1. Validation (:func:`check_frame`): RGB uint8 (H, W, 3) in RGB order, depth float metres (h, w);
   H/h and W/w must be the same integer ratio r (a non-integer ratio is an error naming both sizes).
2. Validity (:func:`valid_depth_mask`): LR pixels that are 0, NaN, ±inf or outside
   [min_depth, max_depth] are invalid.
3. Normalisation per frame from the LR's valid values: d_n = (d - min) / (max - min); the output
   is de-normalised with the same two numbers (a deployed node has no HR ground truth, docs/model.md §7).
4. Hole filling before the method: every invalid LR pixel takes the normalised value of its nearest
   valid LR pixel (exact Euclidean nearest, scipy's distance transform), so holes do not create
   artificial depth edges. After the method, HR pixels whose LR cell was invalid are NaN
   (:func:`support_mask`).

:func:`prepare_frame` does 1-4 and returns a :class:`PreparedFrame` whose ``to_metres`` undoes the
normalisation and applies the support mask. ``standardise_rgb`` (the network's RGB input, also the
training pipeline's) lives here too, so the one definition of ImageNet standardisation is torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NoValidDepthError",
    "PreparedFrame",
    "check_depth_range",
    "check_frame",
    "fill_invalid_nearest",
    "prepare_frame",
    "standardise_rgb",
    "support_mask",
    "valid_depth_mask",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class NoValidDepthError(ValueError):
    """The LR depth frame has no valid pixel: nothing to super-resolve."""


def standardise_rgb(rgb_uint8: np.ndarray, mode: str = "imagenet") -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32 network input.

    Args:
        rgb_uint8: (H, W, 3) uint8 image.
        mode: "imagenet" (/255 then ImageNet mean/std: training, inference, NYU/RGB-D-D/TOFDSR and
            the deployed Middlebury/Lu protocol) or "unit" (/255 only: the reference's Middlebury/Lu).
    """
    rgb = np.asarray(rgb_uint8, dtype=np.float32).transpose(2, 0, 1) / 255.0
    if mode == "unit":
        return np.ascontiguousarray(rgb)
    if mode != "imagenet":
        raise ValueError(f"unknown RGB normalisation {mode!r}; expected 'imagenet' or 'unit'")
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((rgb - mean) / std)


def check_depth_range(min_depth: float | None, max_depth: float | None) -> None:
    """Raise ValueError unless 0 <= min_depth < max_depth (either may be None: unbounded)."""
    if min_depth is not None and min_depth < 0:
        raise ValueError(f"need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}")
    if min_depth is not None and max_depth is not None and not min_depth < max_depth:
        raise ValueError(f"need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}")


def valid_depth_mask(depth_m: np.ndarray, min_depth: float | None = None,
                     max_depth: float | None = None) -> np.ndarray:
    """True where depth is finite, > 0 and inside the optional [min_depth, max_depth] (metres)."""
    depth_m = np.asarray(depth_m)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth_m) & (depth_m > 0)
        if min_depth is not None:
            valid &= depth_m >= min_depth
        if max_depth is not None:
            valid &= depth_m <= max_depth
    return valid


def fill_invalid_nearest(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid pixels with the nearest valid value (Euclidean), so depth is finite everywhere.

    Args:
        depth: (H, W) float depth.
        valid: (H, W) bool mask of measured pixels.

    Returns:
        (H, W) float32 copy; if nothing is valid, zeros.
    """
    from scipy import ndimage  # scipy is slow to import; only frames with holes need it

    depth = np.asarray(depth, dtype=np.float32)
    if valid.all():
        return depth.copy()
    if not valid.any():
        return np.zeros_like(depth)
    indices = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return depth[tuple(indices)].astype(np.float32)


def check_frame(rgb, depth_lr) -> int:
    """Validate a frame pair; return the integer RGB/depth size ratio. Raises ValueError naming sizes."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be a numpy uint8 array (H, W, 3) in RGB order, got "
                         f"{type(rgb).__name__} {getattr(rgb, 'shape', '')}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8 (0-255), got dtype {rgb.dtype}")
    if not isinstance(depth_lr, np.ndarray) or depth_lr.ndim != 2:
        raise ValueError(f"depth_lr must be a 2-D numpy array of metres (h, w), got "
                         f"{type(depth_lr).__name__} {getattr(depth_lr, 'shape', '')}")
    if not np.issubdtype(depth_lr.dtype, np.floating):
        raise ValueError(f"depth_lr must be float metres, got dtype {depth_lr.dtype} (convert millimetres first)")
    (hh, ww), (h, w) = rgb.shape[:2], depth_lr.shape
    if min(hh, ww, h, w) == 0:
        raise ValueError(f"empty frame: rgb {hh}x{ww}, depth {h}x{w}")
    if hh % h or ww % w or hh // h != ww // w:
        raise ValueError(f"rgb {hh}x{ww} is not an integer multiple of depth {h}x{w} with the same ratio "
                         f"in both axes ({hh / h:.3f} x {ww / w:.3f})")
    return hh // h


def support_mask(valid_lr: np.ndarray, ratio: int) -> np.ndarray:
    """(h, w) LR validity -> (h·r, w·r): an HR pixel is supported when its LR cell was valid."""
    return np.repeat(np.repeat(valid_lr, ratio, axis=0), ratio, axis=1)


@dataclass(frozen=True)
class PreparedFrame:
    """One LR depth frame, normalised and hole-filled, with what it takes to go back to metres.

    Attributes:
        ratio: Integer RGB/depth size ratio r.
        valid: (h, w) bool, the valid LR pixels.
        depth_min: Minimum valid LR depth (m).
        span: max - min of the valid LR depth (m), at least 1e-6.
        depth_norm: (h, w) float32 normalised LR depth, holes filled with their nearest valid value.
    """

    ratio: int
    valid: np.ndarray
    depth_min: float
    span: float
    depth_norm: np.ndarray

    def to_metres(self, normalised_hr: np.ndarray) -> np.ndarray:
        """(h·r, w·r) normalised prediction -> float32 metres, NaN where the LR cell was invalid."""
        depth_hr = np.asarray(normalised_hr, dtype=np.float32) * self.span + self.depth_min
        return np.where(support_mask(self.valid, self.ratio), depth_hr, np.nan).astype(np.float32)


def prepare_frame(rgb: np.ndarray, depth_lr: np.ndarray, min_depth: float | None = None,
                  max_depth: float | None = None) -> PreparedFrame:
    """Steps 1-4 of the module docstring for one frame.

    Raises:
        ValueError: bad shapes/dtypes or a non-integer size ratio.
        NoValidDepthError: no LR pixel is valid.
    """
    ratio = check_frame(rgb, depth_lr)
    depth_lr = depth_lr.astype(np.float32, copy=False)
    valid = valid_depth_mask(depth_lr, min_depth, max_depth)
    if not valid.any():
        raise NoValidDepthError(f"depth frame {depth_lr.shape[0]}x{depth_lr.shape[1]} has no valid pixel "
                                f"(all 0/NaN/inf or outside [{min_depth}, {max_depth}] m)")
    d_min, d_max = float(depth_lr[valid].min()), float(depth_lr[valid].max())
    span = max(d_max - d_min, 1e-6)
    with np.errstate(invalid="ignore"):
        normalised = np.where(valid, (depth_lr - d_min) / span, 0.0)
    return PreparedFrame(ratio, valid, d_min, span, fill_invalid_nearest(normalised, valid).astype(np.float32))
