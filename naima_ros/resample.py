"""Bicubic resizing of depth maps without torch: torch's kernel in numpy, and PIL's float mode.

``upsample_bicubic`` reproduces ``F.interpolate(mode="bicubic", align_corners=False)`` without
antialiasing (Keys' cubic convolution with A = -0.75, source index (i + 0.5)·in/out - 0.5, border
taps clamped to the edge), so the bicubic baseline runs where torch is not installed and gives the
same numbers as the torch path (``naima_ros.data.transforms.upsample_bicubic_torch``) to float32
rounding. ``resize_bicubic_pil`` is the literature's "Bicubic" protocol (PIL in float mode).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["upsample_bicubic", "resize_bicubic_pil"]

_CUBIC_A = -0.75  # torch's (and OpenCV's) choice; PIL uses -0.5


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """(n,) fractional offsets -> (n, 4) weights of the taps at floor-1 .. floor+2."""
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


def _axis_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix applying torch's 1-D bicubic resampling along one axis."""
    source = (np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    base = np.floor(source)
    weights = _cubic_weights(source - base)
    matrix = np.zeros((size_out, size_in))
    rows = np.arange(size_out)
    for tap in range(4):
        np.add.at(matrix, (rows, np.clip(base.astype(np.int64) - 1 + tap, 0, size_in - 1)), weights[:, tap])
    return matrix


def upsample_bicubic(array: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize an (h, w) float array to ``size_hw`` exactly as torch's bicubic (align_corners=False).

    Args:
        array: (h, w) float array, finite.
        size_hw: Output (H, W).

    Returns:
        (H, W) float32.
    """
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected an (h, w) array, got shape {array.shape}")
    rows = _axis_matrix(array.shape[0], int(size_hw[0]))
    cols = _axis_matrix(array.shape[1], int(size_hw[1]))
    return (rows @ array @ cols.T).astype(np.float32)


def resize_bicubic_pil(array: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W) array with PIL bicubic in 32-bit float mode ("F").

    This is the protocol of the literature's "Bicubic" rows (PIL for both the LR and the
    upsampling): on the 8-bit Middlebury/Lu depth divided by 255 it reproduces the anchors of
    ``shared/data/README.md`` (resizing the uint8 image instead rounds and misses them).
    PIL antialiases when downsampling (its bicubic support grows with the factor).

    Args:
        array: (H, W) float array.
        size_hw: Output (height, width).

    Returns:
        (height, width) float32.
    """
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
    return np.asarray(image.resize((size_hw[1], size_hw[0]), Image.BICUBIC), dtype=np.float32)
