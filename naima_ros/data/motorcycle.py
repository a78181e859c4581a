"""The Middlebury 2014 "Motorcycle" stereo scene shipped with scikit-image, as a metric RGB-D frame.

``skimage.data.stereo_motorcycle()`` returns the left/right images (500x741, the benchmark's
images down-sampled x4 with ``downscale_local_mean``) and the left ground-truth disparity, with
non-finite values where there is no ground truth. Its docstring gives the calibration valid for
the down-sampled images: focal length 994.978 px, principal point (311.193, 254.877) px,
principal-point offset between the views (doffs) 31.086 px, baseline 193.001 mm. Middlebury 2014
depth is ``Z = baseline * f / (d + doffs)``.
"""

from __future__ import annotations

import numpy as np

from naima_ros.data.common import RGBDFrame, fill_invalid_nearest

__all__ = ["FOCAL_PX", "PRINCIPAL_POINT_PX", "DOFFS_PX", "BASELINE_M", "disparity_to_depth", "load_motorcycle"]

FOCAL_PX = 994.978
PRINCIPAL_POINT_PX = (311.193, 254.877)  # (cx, cy)
DOFFS_PX = 31.086
BASELINE_M = 0.193001


def disparity_to_depth(disparity_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Middlebury 2014 disparity (px) -> depth (m) with the scene's calibration.

    Returns:
        (depth_m float32 with NaN where invalid, valid bool).
    """
    disparity = np.asarray(disparity_px, dtype=np.float64)
    valid = np.isfinite(disparity) & (disparity + DOFFS_PX > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(valid, BASELINE_M * FOCAL_PX / (disparity + DOFFS_PX), np.nan)
    return depth.astype(np.float32), valid


def load_motorcycle() -> RGBDFrame:
    """The Motorcycle scene as a metric frame (left image, depth in metres, RMSE in cm).

    Holes (no ground truth, ~7 % of pixels) are filled with the nearest valid depth and marked
    invalid; ``minmax`` is the valid depth's range.
    """
    from skimage import data

    left, _right, disparity = data.stereo_motorcycle()
    depth, valid = disparity_to_depth(disparity)
    filled = fill_invalid_nearest(depth, valid)
    return RGBDFrame(name="motorcycle", rgb=np.ascontiguousarray(left, dtype=np.uint8), depth=filled, valid=valid,
                     minmax=(float(depth[valid].min()), float(depth[valid].max())), unit="m",
                     rmse_scale=100.0, rmse_unit="cm", intrinsics=(FOCAL_PX, FOCAL_PX) + PRINCIPAL_POINT_PX)
