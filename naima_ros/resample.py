"""Resizing depth maps without torch: bicubic (torch's kernel in numpy, PIL's float mode) and the
hole-aware resampling that puts a sensor's depth of any size onto a model's grid.

``upsample_bicubic`` reproduces ``F.interpolate(mode="bicubic", align_corners=False)`` without
antialiasing (Keys' cubic convolution with A = -0.75, source index (i + 0.5)·in/out - 0.5, border
taps clamped to the edge), so the bicubic baseline runs where torch is not installed and gives the
same numbers as torch's ``F.interpolate`` to float32 rounding (test_predictors.py).
``resize_bicubic_pil`` is the literature's "Bicubic" protocol (PIL in float mode).

Hole-aware resampling (``naima_ros.frames`` uses both to serve any depth size):

- ``resample_valid``: a depth of any other size, up or down by any ratio: normalised convolution
  over the valid pixels only (linear interpolation upwards; downwards the footprint mean, which for
  a ToF's footprint means is the footprint mean of the coarser cell); where valid pixels carry too
  little of the filter's weight the output is a hole.
- ``bin_valid_median``: depth already on a fine grid (registered to the RGB, dense or sparse) binned
  onto a coarser grid: the median of the valid samples whose centres fall in each cell (robust to
  flying pixels and mixed fore/background samples); an empty cell is a hole.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

RESAMPLE_MIN_COVERAGE = 0.5  # share of the filter weight on valid pixels for a resampled pixel to be valid

__all__ = ["RESAMPLE_MIN_COVERAGE", "bin_valid_median", "resample_valid", "resize_bicubic_pil", "upsample_bicubic"]

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


@functools.lru_cache(maxsize=32)
def _filter_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights from input pixels to output pixels along one axis.

    Upwards (and at the same size): linear interpolation between pixel centres (a tent one input
    pixel wide), which keeps a plane a plane. Downwards: the overlap of each output cell with each
    input pixel (a box as wide as the cell), so an output is the footprint mean of what lies under
    it and never reaches past its own footprint (across a hole into the far side). Read-only;
    cached per size pair (a node resamples every frame at the same sizes).
    """
    ratio = size_in / size_out
    if size_out >= size_in:
        centres = (np.arange(size_out, dtype=np.float64) + 0.5) * ratio - 0.5  # in input pixels
        weights = np.clip(1.0 - np.abs(np.arange(size_in)[None] - np.clip(centres, 0, size_in - 1)[:, None]),
                          0.0, None)
    else:
        edges = np.arange(size_out + 1, dtype=np.float64) * ratio
        pixels = np.arange(size_in, dtype=np.float64)[None]
        weights = np.clip(np.minimum(edges[1:, None], pixels + 1.0) - np.maximum(edges[:-1, None], pixels), 0.0, None)
    weights.flags.writeable = False
    return weights


def resample_valid(depth: np.ndarray, valid: np.ndarray, size_hw: tuple[int, int], *,
                   min_coverage: float = RESAMPLE_MIN_COVERAGE) -> tuple[np.ndarray, np.ndarray]:
    """Hole-aware resampling to any size, up or down (normalised convolution, ``_filter_matrix``).

    Each output pixel is the weighted mean of the valid input pixels under its filter (linear
    interpolation upwards, its footprint downwards); it is a hole where the valid pixels carry less
    than ``min_coverage`` of the filter's weight, so values never bleed across an empty pixel into
    the far side. Upwards a plane stays a plane exactly; downwards within an eighth of a pixel's
    slope at non-integer ratios (footprints cut input pixels).

    Args:
        depth: (h, w) float depth; values under ``~valid`` are ignored (may be NaN).
        valid: (h, w) bool.
        size_hw: Output (H, W).
        min_coverage: Share of the filter's weight that must fall on valid pixels.

    Returns:
        ((H, W) float32 depth, NaN in holes; (H, W) bool validity).
    """
    depth, valid = np.asarray(depth, dtype=np.float64), np.asarray(valid, dtype=bool)
    if depth.ndim != 2 or depth.shape != valid.shape:
        raise ValueError(f"expected (h, w) depth and validity of one shape, got {depth.shape} and {valid.shape}")
    rows, cols = _filter_matrix(depth.shape[0], int(size_hw[0])), _filter_matrix(depth.shape[1], int(size_hw[1]))
    total = rows @ np.where(valid, depth, 0.0) @ cols.T
    covered = rows @ valid.astype(np.float64) @ cols.T
    full = rows.sum(axis=1)[:, None] * cols.sum(axis=1)[None]
    out_valid = covered >= min_coverage * full
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(out_valid, total / np.where(out_valid, covered, 1.0), np.nan)
    return out.astype(np.float32), out_valid


def bin_valid_median(depth: np.ndarray, valid: np.ndarray, size_hw: tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Median of the valid samples whose pixel centres fall in each cell of a coarser (H, W) grid.

    Args:
        depth: (h, w) float depth on the fine grid (h >= H, w >= W); values under ``~valid`` ignored.
        valid: (h, w) bool (a registration leaves most pixels invalid: sparse input is fine).
        size_hw: Output (H, W).

    Returns:
        ((H, W) float32 depth, NaN in empty cells; (H, W) bool validity). A cell with one valid
        sample gives that sample; with an even count, the mean of the two middle samples.
    """
    depth, valid = np.asarray(depth), np.asarray(valid, dtype=bool)
    if depth.ndim != 2 or depth.shape != valid.shape:
        raise ValueError(f"expected (h, w) depth and validity of one shape, got {depth.shape} and {valid.shape}")
    (h, w), (out_h, out_w) = depth.shape, (int(size_hw[0]), int(size_hw[1]))
    if out_h > h or out_w > w:
        raise ValueError(f"binning needs a coarser grid: {h}x{w} -> {out_h}x{out_w}")
    ys, xs = np.nonzero(valid)
    values = depth[ys, xs].astype(np.float64)
    cells = (((2 * ys + 1) * out_h) // (2 * h)) * out_w + ((2 * xs + 1) * out_w) // (2 * w)  # floor((y + 0.5)·H/h)
    order = np.lexsort((values, cells))
    cells, values = cells[order], values[order]
    counts = np.bincount(cells, minlength=out_h * out_w)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    occupied = counts > 0
    lower = values[(starts + (counts - 1) // 2)[occupied]]
    upper = values[(starts + counts // 2)[occupied]]
    out = np.full(out_h * out_w, np.nan)
    out[occupied] = 0.5 * (lower + upper)
    return out.reshape(out_h, out_w).astype(np.float32), occupied.reshape(out_h, out_w)
