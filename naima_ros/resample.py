"""Bicubic resizing of depth maps without torch: torch's kernel in numpy, and PIL's float mode.

``upsample_bicubic`` reproduces ``F.interpolate(mode="bicubic", align_corners=False)`` without
antialiasing (Keys' cubic convolution with A = -0.75, source index (i + 0.5)·in/out - 0.5, border
taps clamped to the edge), so the bicubic baseline runs where torch is not installed and gives the
same numbers as torch's ``F.interpolate`` to float32 rounding (test_predictors.py).
``resize_bicubic_pil`` is the literature's "Bicubic" protocol (PIL in float mode).
"""

from __future__ import annotations

import functools

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


@functools.lru_cache(maxsize=32)
def _axis_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Torch's 1-D bicubic resampling along one axis as four taps per output sample.

    Returns:
        ((4, size_out) int64 source indices, clamped to the edge; (4, size_out) float64 weights),
        read-only: cached per size pair, since a node resamples every frame at the same sizes.
    """
    source = (np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    base = np.floor(source)
    weights = np.ascontiguousarray(_cubic_weights(source - base).T)
    index = np.clip(base.astype(np.int64) + np.arange(-1, 3)[:, None], 0, size_in - 1)
    weights.flags.writeable = False
    index.flags.writeable = False
    return index, weights


def upsample_bicubic(array: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize an (h, w) float array to ``size_hw`` exactly as torch's bicubic (align_corners=False).

    Separable, in float64: the four column taps on the small input (h, W), then the four row taps
    (H, W), gathered with cached tap tables. Not as two matrix products (mostly zeros): numpy's
    multi-threaded OpenBLAS took 12-24 ms for a 640x480 output on two cores shared with other
    processes, this about 2 ms (bench/README.md, "bench_camera_rate.py").

    Args:
        array: (h, w) float array, finite.
        size_hw: Output (H, W).

    Returns:
        (H, W) float32.
    """
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected an (h, w) array, got shape {array.shape}")
    size_h, size_w = int(size_hw[0]), int(size_hw[1])
    col_index, col_weights = _axis_taps(array.shape[1], size_w)
    row_index, row_weights = _axis_taps(array.shape[0], size_h)
    taps = array[:, col_index]  # (h, 4, W): one gather, 4 taps per output column
    taps *= col_weights
    cols = taps[:, 0] + taps[:, 1] + taps[:, 2] + taps[:, 3]  # (h, W)
    taps = cols[row_index]  # (4, H, W)
    taps *= row_weights[:, :, None]
    out = taps[0] + taps[1] + taps[2] + taps[3]
    return out.astype(np.float32)


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
