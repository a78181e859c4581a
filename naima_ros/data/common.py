"""Shared pieces of the dataset loaders: the frame record, the error type, image I/O, paths.

Every loader in ``naima_ros.data`` returns an :class:`RGBDFrame` per image, or a lazy
:class:`FrameList` of them; ``naima-bag make`` writes the same records. A frame carries its
dataset's facts with it (depth unit and its size in metres, normalisation range, the factor to the
reported RMSE unit, the camera's intrinsics where the dataset has them), so neither the metric code
nor the bag writer needs to know which dataset it handles (docs/model.md, "Data and protocols").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from naima_ros.frames import fill_invalid_nearest

__all__ = [
    "DatasetError",
    "RGBDFrame",
    "FrameList",
    "read_rgb",
    "read_depth_png",
    "clip_depth",
    "fill_invalid_nearest",
    "frame_from_metres",
    "metre_frame",
]


class DatasetError(RuntimeError):
    """A dataset is missing or malformed. The message names the path and what was expected."""


@dataclass(frozen=True)
class RGBDFrame:
    """One RGB-D frame with the protocol of the dataset it came from.

    Attributes:
        name: Identifier unique within the dataset (file stem or index).
        rgb: (H, W, 3) uint8 colour image.
        depth: (H, W) float32 depth in ``unit``, already clipped per the dataset's protocol and
            finite everywhere (holes hold the clip floor, as the reference's clipping leaves them,
            or the nearest valid value; ``valid`` says where they were).
        valid: (H, W) bool, True where the raw depth was measured and inside the clip range.
        minmax: (min, max) in ``unit`` used to normalise the depth to [0, 1]:
            ``depth_norm = (depth - min) / (max - min)``. Per-image min-max for NYU/RGB-D-D/TOFDSR,
            the fixed (0, 255) for the 8-bit Middlebury/Lu sets.
        unit: "m" (metres) or "8bit" (0-255 PNG units).
        rmse_scale: Factor from ``unit`` to the unit RMSE is reported in (100: m -> cm; 1: 8-bit).
        rmse_unit: Name of the reported RMSE unit ("cm" or "8bit").
        depth_lr: Optional (h, w) float32 real low-resolution depth in ``unit`` (RGB-D-D real
            scenes, TOFDSR), NaN where invalid. The reference ignores it and synthesises LR.
        intrinsics: (fx, fy, cx, cy) in pixels of this image, or None where the dataset ships no
            calibration.
        metres_per_unit: The length of one ``unit`` in metres (1 for "m"; Middlebury/Lu's 8-bit
            depth has an assumed one), None where the depth is not a length (inverse depth).
    """

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    minmax: tuple[float, float]
    unit: str
    rmse_scale: float
    rmse_unit: str
    depth_lr: np.ndarray | None = field(default=None)
    intrinsics: tuple[float, float, float, float] | None = None
    metres_per_unit: float | None = 1.0

    @property
    def depth_norm(self) -> np.ndarray:
        """(H, W) float32 depth min-max normalised with ``minmax`` (in [0, 1] when in range)."""
        lo, hi = self.minmax
        return ((self.depth - lo) / max(hi - lo, 1e-12)).astype(np.float32)

    @property
    def depth_m(self) -> np.ndarray:
        """(H, W) float32 depth in metres, NaN where invalid.

        Raises:
            ValueError: the depth is not a length (``metres_per_unit`` None).
        """
        if self.metres_per_unit is None:
            raise ValueError(f"frame {self.name}: depth in {self.unit} is not a length")
        return np.where(self.valid, self.depth.astype(np.float32) * np.float32(self.metres_per_unit),
                        np.float32(np.nan)).astype(np.float32)


class FrameList(Sequence):
    """A lazy, indexable list of frames: ``names[i]`` is decoded by ``load(i)`` on access.

    Args:
        names: One name per frame, in dataset order.
        load: Callable mapping an index in ``range(len(names))`` to an :class:`RGBDFrame`.
        description: Human-readable origin (dataset and path), used in ``repr``.
    """

    def __init__(self, names: Sequence[str], load: Callable[[int], RGBDFrame], description: str):
        self.names = list(names)
        self._load = load
        self.description = description

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"frame index {index} out of range for {len(self)} frames")
        return self._load(index)

    def __repr__(self) -> str:
        return f"FrameList({len(self)} frames from {self.description})"


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read a colour image as (H, W, 3) uint8; palette/RGBA are converted, grey is refused.

    Raises:
        DatasetError: the file is missing, unreadable or not a colour image.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode not in ("RGB", "RGBA", "P"):
                raise DatasetError(f"{path}: expected a 3-channel colour image, got mode {image.mode}")
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: expected a readable colour image ({error})") from error


def read_depth_png(path: str | os.PathLike, *, bits: int) -> np.ndarray:
    """Read a single-channel depth PNG as (H, W) uint16 (``bits=16``) or uint8 (``bits=8``).

    Raises:
        DatasetError: the file is missing, unreadable, or not single-channel of that depth.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: expected a readable {bits}-bit depth PNG ({error})") from error
    if array.ndim != 2:
        raise DatasetError(f"{path}: expected a single-channel {bits}-bit depth PNG, got shape {array.shape}")
    if bits == 8 and array.dtype != np.uint8:
        raise DatasetError(f"{path}: expected an 8-bit depth PNG, got dtype {array.dtype}")
    if bits == 16:
        if array.dtype.kind not in "ui" or array.max(initial=0) > 65535:
            raise DatasetError(f"{path}: expected a 16-bit depth PNG, got dtype {array.dtype}")
        array = array.astype(np.uint16)
    return array


def clip_depth(depth_m: np.ndarray, clip: tuple[float, float], *,
               fill_holes: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Apply a dataset's depth range as the reference preparation does (docs/model.md §3.1).

    The mask marks lo <= d <= hi on the unclipped depth; the depth is clipped to [lo, hi]; min and
    max are those of the clipped image (every pixel, as the reference does; holes clip to ``lo``).

    Args:
        depth_m: (H, W) raw depth in metres (0 or non-finite = hole).
        clip: (lo, hi) range in metres.
        fill_holes: Our choice for training data, not the reference's: fill invalid pixels with the
            nearest valid depth before clipping, so holes do not drag the minimum to ``lo``.

    Returns:
        (depth_clipped float32, valid bool, (min, max) of the clipped depth).
    """
    lo, hi = clip
    raw = np.asarray(depth_m, dtype=np.float32)
    finite = np.isfinite(raw)
    valid = finite & (raw >= lo) & (raw <= hi)
    if fill_holes and valid.any():
        raw = fill_invalid_nearest(raw, valid)
    clipped = np.clip(np.where(np.isfinite(raw), raw, lo), lo, hi).astype(np.float32)
    return clipped, valid, (float(clipped.min()), float(clipped.max()))


def metre_frame(name: str, rgb: np.ndarray, depth_m: np.ndarray, clip: tuple[float, float], *,
                path: Path, depth_lr: np.ndarray | None = None, fill_holes: bool = False,
                intrinsics: tuple[float, float, float, float] | None = None) -> RGBDFrame:
    """Build a metric frame (NYU / RGB-D-D / TOFDSR protocol: clip, min-max, RMSE in cm).

    ``fill_holes`` as in :func:`clip_depth` (False = the reference's preparation).

    Raises:
        DatasetError: RGB and depth sizes differ.
    """
    if rgb.shape[:2] != depth_m.shape:
        raise DatasetError(f"{path}: expected RGB and depth of the same size, got {rgb.shape[:2]} and {depth_m.shape}")
    depth, valid, minmax = clip_depth(depth_m, clip, fill_holes=fill_holes)
    return RGBDFrame(name=name, rgb=rgb, depth=depth, valid=valid, minmax=minmax, unit="m",
                     rmse_scale=100.0, rmse_unit="cm", depth_lr=depth_lr, intrinsics=intrinsics)


def frame_from_metres(name: str, rgb: np.ndarray, depth_m: np.ndarray,
                      intrinsics: tuple[float, float, float, float] | None = None) -> RGBDFrame:
    """A metric frame of depth as measured: valid where finite and > 0, no clipping; holes hold the
    nearest valid depth; per-image min-max of the valid depth; RMSE in cm."""
    depth_m = np.asarray(depth_m, dtype=np.float32)
    valid = np.isfinite(depth_m) & (depth_m > 0)
    depth = fill_invalid_nearest(depth_m, valid)
    minmax = (float(depth_m[valid].min()), float(depth_m[valid].max())) if valid.any() else (0.0, 1.0)
    return RGBDFrame(name=name, rgb=rgb, depth=depth, valid=valid, minmax=minmax, unit="m",
                     rmse_scale=100.0, rmse_unit="cm", intrinsics=intrinsics)


def require_dir(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or raise DatasetError naming it and ``what`` was expected there."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: directory not found; expected {what}")
    return path


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or raise DatasetError naming it and ``what`` was expected there."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found; expected {what}")
    return path
