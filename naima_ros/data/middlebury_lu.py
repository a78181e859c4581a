"""Middlebury (30) and Lu (6) benchmark test sets: 8-bit PNG pairs read as the reference reads them.

docs/model.md §3.3 (``BenchmarkSRImplicitDownSampled``): every file whose name contains ``output_color``
(RGB) or ``output_depth`` (GT), sorted; we also accept the widely shared ``ouput_color`` spelling
of the Lu set. Depth is single-channel 8-bit, RMSE is reported in these 0-255 units, and the
depth is normalised by /255 (``minmax = (0, 255)``), not min-max. Modcrop to a multiple of s is
done by the consumer (``transforms.modcrop``), as it depends on the scale. The reference feeds
their RGB /255 without ImageNet standardisation; that choice lives in ``standardise_rgb``.
Files may sit directly in ``root`` (the reference's ./MIDDLE, ./LU) or in ``root/RGB`` and
``root/Depth`` (the shared layout).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from naima_ros.data.common import DatasetError, FrameList, RGBDFrame, read_depth_png, read_rgb, require_dir

__all__ = ["METRES_PER_UNIT", "PAPER_TABLES", "REFERENCE_RGB", "TITLES", "COLOR_PATTERN", "DEPTH_PATTERN",
           "load_benchmark_pngs", "load_middlebury", "load_lu"]

TITLES = {"middlebury": "Middlebury", "lu": "Lu"}
PAPER_TABLES = {"middlebury": 2, "lu": 3}  # the paper's tables, RMSE in 8-bit units
REFERENCE_RGB = "unit"  # the reference feeds these sets' RGB /255 without ImageNet standardisation
# The 8-bit depth has no metric scale; the frames assume this one (naima-bag make writes bags in metres).
METRES_PER_UNIT = 0.02
COLOR_PATTERN = re.compile(r"(?:output|ouput)_color")  # "output_color" or the widespread "ouput_color"
DEPTH_PATTERN = re.compile(r"output_depth")


def _find(root: Path, pattern: re.Pattern) -> list[Path]:
    folders = [root] + [root / sub for sub in ("RGB", "Depth") if (root / sub).is_dir()]
    return sorted((p for folder in folders for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() == ".png" and pattern.search(p.name)),
                  key=lambda p: p.name)


def load_benchmark_pngs(root: str | os.PathLike, dataset: str) -> FrameList:
    """Lazy frames of an 8-bit Middlebury/Lu-style PNG test set.

    Args:
        root: Folder with the PNGs (directly, or in ``RGB/`` and ``Depth/``).
        dataset: Name for messages.

    Returns:
        FrameList of 8-bit frames (unit "8bit", minmax (0, 255), RMSE scale 1), named by the file
        stem before the pattern (e.g. "Middlebury_01").

    Raises:
        DatasetError: no pairs found, colour/depth counts or names do not match, or a file is not
            a 3-channel colour / single-channel 8-bit depth PNG.
    """
    root = require_dir(root, f"the {dataset} test set (*output_color.png and *output_depth.png)")
    colors, depths = _find(root, COLOR_PATTERN), _find(root, DEPTH_PATTERN)
    if not colors or len(colors) != len(depths):
        raise DatasetError(f"{root}: found {len(colors)} *output_color.png (or *ouput_color.png) and "
                           f"{len(depths)} *output_depth.png; expected equal, non-zero numbers of {dataset} pairs")
    names = []
    for color, depth in zip(colors, depths):
        key_c, key_d = COLOR_PATTERN.split(color.name)[0], DEPTH_PATTERN.split(depth.name)[0]
        if key_c != key_d:
            raise DatasetError(f"{root}: colour {color.name} and depth {depth.name} do not pair up; "
                               f"expected matching names before output_color/output_depth")
        names.append(key_c.rstrip("_") or color.stem)

    def load(i: int) -> RGBDFrame:
        rgb = read_rgb(colors[i])
        depth = read_depth_png(depths[i], bits=8)
        if rgb.shape[:2] != depth.shape:
            raise DatasetError(f"{depths[i]}: size {depth.shape} differs from {colors[i].name} {rgb.shape[:2]}")
        # No validity mask in the protocol; 0 is kept as a value (the sets are hole-free).
        return RGBDFrame(name=names[i], rgb=rgb, depth=depth.astype(np.float32),
                         valid=np.ones(depth.shape, dtype=bool), minmax=(0.0, 255.0), unit="8bit",
                         rmse_scale=1.0, rmse_unit="8bit", metres_per_unit=METRES_PER_UNIT)

    return FrameList(names, load, f"{dataset} ({root})")


def load_middlebury(root: str | os.PathLike) -> FrameList:
    """The 30-image Middlebury set (see :func:`load_benchmark_pngs`)."""
    return load_benchmark_pngs(root, "Middlebury")


def load_lu(root: str | os.PathLike) -> FrameList:
    """The 6-image Lu set (see :func:`load_benchmark_pngs`)."""
    return load_benchmark_pngs(root, "Lu")
