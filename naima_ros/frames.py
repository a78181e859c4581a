"""Frame preparation shared by every predictor, network and baselines alike (numpy + scipy, no torch).

What happens between the sensor arrays and a method, and back:

1. Validation (:func:`check_frame`): RGB uint8 (H, W, 3) in RGB order, depth float metres (h, w) of
   any size whose aspect ratio matches the RGB's (within ``ASPECT_TOLERANCE``).
2. The method's grid (:func:`depth_grid`), the one place that decides what LR a method sees:
   - ``native``: H/h = W/w = an integer r >= 2: the depth as it is, the method runs at ratio r
     (the benchmarks' and most pipelines' case; unchanged from earlier versions);
   - ``binned``: depth at least as fine as the RGB (a driver's aligned depth, or the scattered
     samples a registration leaves): the median of the valid samples in each cell of the grid
     (RGB size / scale); an empty cell is a hole;
   - ``resampled``: any other size (a phone ToF's 192x144 against a 512x384 RGB): hole-aware
     linear resampling onto the grid (``naima_ros.resample``).
   Off the native case the method runs at the model's scale s on a grid of round(H/s) x round(W/s);
   where s times that grid is not exactly the RGB size, the RGB is resized to it for the method and
   the output is resized back.
3. Validity (:func:`valid_depth_mask`): depth that is 0, NaN, ±inf or outside [min_depth, max_depth]
   is invalid, before any resampling.
4. Robust normalisation from the grid's valid values: d_n = (d - p1) / (p99 - p1), the 1st and 99th
   percentiles (``NORMALISATION_PERCENTILES``), so a few flying pixels or outliers do not squash the
   scene into a sliver of the network's range as the min/max of earlier versions did; the output is
   de-normalised with the same two numbers (a deployed node has no ground truth, docs/model.md §7).
5. Hole filling before the method: every invalid grid pixel takes the normalised value of its
   nearest valid pixel (exact Euclidean nearest, scipy's distance transform), so holes do not create
   artificial depth edges; networks that take a validity input also see where the holes were.

:func:`prepare_frame` does 1-5 and returns a :class:`PreparedFrame`, whose ``to_metres`` undoes the
normalisation (and any resize) and whose ``support`` says which output pixels had a valid grid cell
under them; what a predictor publishes in the other pixels is decided by its confidence
(``naima_ros.confidence``). ``standardise_rgb`` (the network's RGB input, also the training
pipeline's) lives here too, so the one definition of ImageNet standardisation is torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ASPECT_TOLERANCE",
    "GRID_MODES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NORMALISATION_PERCENTILES",
    "DepthGrid",
    "NoValidDepthError",
    "PreparedFrame",
    "check_depth_range",
    "check_frame",
    "depth_grid",
    "fill_invalid_nearest",
    "normalisation_range",
    "prepare_frame",
    "standardise_rgb",
    "support_mask",
    "valid_depth_mask",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ASPECT_TOLERANCE = 0.02  # RGB and depth aspect ratios may differ this much (rounded sensor sizes)
NORMALISATION_PERCENTILES = (1.0, 99.0)
GRID_MODES = ("native", "binned", "resampled")


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


def check_frame(rgb, depth_lr) -> None:
    """Validate a frame pair's types and sizes. Raises ValueError naming what was expected."""
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


@dataclass(frozen=True)
class DepthGrid:
    """Where a method sees a depth frame: its LR grid, the HR/LR ratio it runs at, and how the
    depth got onto the grid (``GRID_MODES``; see the module docstring).

    Attributes:
        rgb_hw: (H, W) of the RGB, the output's size.
        grid_hw: (h, w) of the method's LR grid.
        ratio: The method's HR/LR factor: it works at (h·ratio, w·ratio).
        mode: "native", "binned" or "resampled".
    """

    rgb_hw: tuple[int, int]
    grid_hw: tuple[int, int]
    ratio: int
    mode: str

    @property
    def method_hw(self) -> tuple[int, int]:
        """(h·ratio, w·ratio): the RGB size the method works at."""
        return self.grid_hw[0] * self.ratio, self.grid_hw[1] * self.ratio

    @property
    def resized(self) -> bool:
        """True when the method works at another size than the RGB's (resize in, resize back)."""
        return self.method_hw != self.rgb_hw


def depth_grid(rgb_hw: tuple[int, int], depth_hw: tuple[int, int], scale: int) -> DepthGrid:
    """The grid a method with SR factor ``scale`` sees for an RGB of ``rgb_hw`` and a depth of ``depth_hw``.

    Raises:
        ValueError: the aspect ratios disagree (beyond ``ASPECT_TOLERANCE``): no resampling can make
            this depth describe this RGB.
    """
    (hh, ww), (h, w) = (int(rgb_hw[0]), int(rgb_hw[1])), (int(depth_hw[0]), int(depth_hw[1]))
    if hh % h == 0 and ww % w == 0 and hh // h == ww // w >= 2:
        return DepthGrid((hh, ww), (h, w), hh // h, "native")
    if abs((ww * h) / (hh * w) - 1.0) > ASPECT_TOLERANCE:
        raise ValueError(f"rgb {ww}x{hh} and depth {w}x{h} have different aspect ratios ({ww / hh:.3f} vs "
                         f"{w / h:.3f}): the depth cannot be put on this RGB's grid")
    grid = (max(1, round(hh / scale)), max(1, round(ww / scale)))
    return DepthGrid((hh, ww), grid, int(scale), "binned" if h >= hh and w >= ww else "resampled")


def support_mask(valid_grid: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """(h, w) grid validity -> (H, W): an output pixel is supported when the grid cell under its
    centre was valid (an integer ratio: each cell an r x r block)."""
    (h, w), (out_h, out_w) = valid_grid.shape, out_hw
    if out_h % h == 0 and out_w % w == 0 and out_h // h == out_w // w:
        r = out_h // h
        return np.repeat(np.repeat(valid_grid, r, axis=0), r, axis=1)
    rows = ((2 * np.arange(out_h) + 1) * h) // (2 * out_h)
    cols = ((2 * np.arange(out_w) + 1) * w) // (2 * out_w)
    return valid_grid[rows[:, None], cols[None]]


def normalisation_range(depth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(low, span) of the robust normalisation: the ``NORMALISATION_PERCENTILES`` of the valid depth."""
    low, high = np.percentile(depth[valid].astype(np.float64), NORMALISATION_PERCENTILES)
    return float(low), max(float(high - low), 1e-6)


def _resize_float(array: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float (h, w) map (pixel centres aligned), for the method's output."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
    return np.asarray(image.resize((out_hw[1], out_hw[0]), Image.Resampling.BILINEAR), dtype=np.float32)


@dataclass(frozen=True)
class PreparedFrame:
    """One depth frame on a method's grid, normalised and hole-filled, with the way back to metres.

    Attributes:
        grid: The method's grid (:class:`DepthGrid`).
        valid: (h, w) bool, the valid grid pixels.
        depth_grid_m: (h, w) float32 metres on the grid, NaN in holes (for confidence features).
        depth_min: The low end of the normalisation (m): the 1st percentile of the valid grid depth.
        span: The normalisation's span (m): 99th - 1st percentile, at least 1e-6.
        depth_norm: (h, w) float32 normalised grid depth, holes filled with their nearest valid value.
    """

    grid: DepthGrid
    valid: np.ndarray
    depth_grid_m: np.ndarray
    depth_min: float
    span: float
    depth_norm: np.ndarray

    @property
    def ratio(self) -> int:
        return self.grid.ratio

    def method_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """The RGB at the size the method works at (resized only off the native grid)."""
        if not self.grid.resized:
            return rgb
        from naima_ros.geometry import resize_rgb

        return resize_rgb(rgb, self.grid.method_hw[1], self.grid.method_hw[0])

    def to_metres(self, normalised: np.ndarray) -> np.ndarray:
        """The method's normalised output (at ``grid.method_hw``) -> float32 metres at the RGB's size,
        dense (holes are the predictor's decision: ``support`` and the confidence)."""
        depth = np.asarray(normalised, dtype=np.float32) * np.float32(self.span) + np.float32(self.depth_min)
        return _resize_float(depth, self.grid.rgb_hw) if self.grid.resized else depth

    @property
    def support(self) -> np.ndarray:
        """(H, W) bool: output pixels whose grid cell was valid."""
        return support_mask(self.valid, self.grid.rgb_hw)


def _depth_on_grid(depth_lr: np.ndarray, valid: np.ndarray, grid: DepthGrid) -> tuple[np.ndarray, np.ndarray]:
    from naima_ros.resample import bin_valid_median, resample_valid

    if grid.mode == "native":
        return np.where(valid, depth_lr, np.float32(np.nan)).astype(np.float32), valid
    if grid.mode == "binned":
        return bin_valid_median(depth_lr, valid, grid.grid_hw)
    return resample_valid(depth_lr, valid, grid.grid_hw)


def prepare_frame(rgb: np.ndarray, depth_lr: np.ndarray, min_depth: float | None = None,
                  max_depth: float | None = None, *, scale: int | None = None) -> PreparedFrame:
    """Steps 1-5 of the module docstring for one frame.

    Args:
        rgb: (H, W, 3) uint8.
        depth_lr: (h, w) float metres, any size with the RGB's aspect ratio.
        min_depth, max_depth: Valid range (m); None: unbounded.
        scale: The method's SR factor, for grids off the native case (default: 8 if needed).

    Raises:
        ValueError: bad shapes/dtypes, or aspect ratios that disagree.
        NoValidDepthError: no depth pixel is valid (before or after putting it on the grid).
    """
    check_frame(rgb, depth_lr)
    grid = depth_grid(rgb.shape[:2], depth_lr.shape, 8 if scale is None else scale)
    depth_lr = depth_lr.astype(np.float32, copy=False)
    valid = valid_depth_mask(depth_lr, min_depth, max_depth)
    no_valid = (f"depth frame {depth_lr.shape[0]}x{depth_lr.shape[1]} has no valid pixel "
                f"(all 0/NaN/inf or outside [{min_depth}, {max_depth}] m)")
    if not valid.any():
        raise NoValidDepthError(no_valid)
    depth_m, valid = _depth_on_grid(depth_lr, valid, grid)
    if not valid.any():
        raise NoValidDepthError(no_valid + f" on the {grid.grid_hw[0]}x{grid.grid_hw[1]} grid")
    low, span = normalisation_range(depth_m, valid)
    with np.errstate(invalid="ignore"):
        normalised = np.where(valid, (depth_m - low) / span, 0.0)
    return PreparedFrame(grid, valid, depth_m, low, span,
                         fill_invalid_nearest(normalised, valid).astype(np.float32))
