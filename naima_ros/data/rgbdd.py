"""RGB-D-D (``RGBDD-Full``): per-category folders of ``*RGB.jpg`` + ``*HR_gt.png`` (uint16 mm).

docs/model.md §3.1: ``RGBDD-Full/{models,plants,portraits}/{*_train,*_test}/<id>/`` each holding
``<id>_RGB.jpg`` and ``<id>_HR_gt.png`` at 384x512; depth mm / 1000 -> metres, clipped to the
category's range, which also sets the mask: models [0.6, 3], portraits [1, 5], plants [0.6, 1.5].
Train and test are each the concatenation of the three categories. The reference concatenates
in ``os.walk`` order, which is file-system dependent; we sort (category order models, plants,
portraits, then ids), which does not change a per-image-averaged metric.
The ``*_LR_fill_depth.png`` real LR depth, where present, is attached as ``depth_lr``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from naima_ros.data.common import DatasetError, FrameList, RGBDFrame, metre_frame, read_depth_png, read_rgb, require_dir

__all__ = ["PAPER_TABLE", "REFERENCE_RGB", "TITLE", "CATEGORY_CLIP_M", "UNCATEGORISED_CLIP_M", "load_rgbdd",
           "rgbdd_frame"]

TITLE = "RGB-D-D"
REFERENCE_RGB = "imagenet"  # RGB normalisation of the reference protocol (docs/model.md §4)
PAPER_TABLE = 1  # the paper's table: metric sets, RMSE in cm
CATEGORY_CLIP_M = {"models": (0.6, 3.0), "plants": (0.6, 1.5), "portraits": (1.0, 5.0)}
# For RGB-D-D frames whose category is unknown (the shared folders): the widest range the
# project uses, so no real RGB-D-D depth (0.5-3.5 m) is clipped.
UNCATEGORISED_CLIP_M = (0.1, 10.0)


def rgbdd_frame(name: str, rgb_path: Path, depth_path: Path, clip: tuple[float, float],
                lr_path: Path | None = None, *, fill_holes: bool = False) -> RGBDFrame:
    """Read one RGB-D-D frame: JPEG colour, uint16 millimetre depth (0 = hole), optional real LR.

    ``fill_holes=False`` is the reference's preparation (holes clip to the range floor);
    True fills them with the nearest valid depth first (see ``common.clip_depth``).
    """
    rgb = read_rgb(rgb_path)
    depth_m = read_depth_png(depth_path, bits=16).astype(np.float32) / 1000.0
    depth_lr = None
    if lr_path is not None:
        lr = read_depth_png(lr_path, bits=16).astype(np.float32) / 1000.0
        depth_lr = np.where(lr > 0, lr, np.nan).astype(np.float32)
    return metre_frame(name, rgb, depth_m, clip, path=depth_path, depth_lr=depth_lr, fill_holes=fill_holes)


def load_rgbdd(root: str | os.PathLike, split: str = "test",
               categories: tuple[str, ...] = ("models", "plants", "portraits")) -> FrameList:
    """Lazy frames of one RGB-D-D split.

    Args:
        root: The ``RGBDD-Full`` directory.
        split: "train" or "test" (the ``*_train`` / ``*_test`` sub-folders of each category).
        categories: Categories to concatenate, in this order.

    Raises:
        DatasetError: a category or split folder is missing, a frame folder lacks exactly one
            ``*RGB.jpg`` and one ``*HR_gt.png``, or no frame is found.
    """
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    root = require_dir(root, "the RGBDD-Full folder with models/, plants/, portraits/")
    entries = []  # (name, rgb, depth, lr, clip)
    for category in categories:
        if category not in CATEGORY_CLIP_M:
            raise ValueError(f"unknown RGB-D-D category {category!r}; expected one of {sorted(CATEGORY_CLIP_M)}")
        category_dir = require_dir(root / category, f"RGB-D-D category folder {category}/ with *_{split}/")
        split_dirs = sorted(p for p in category_dir.iterdir() if p.is_dir() and p.name.endswith(f"_{split}"))
        if not split_dirs:
            raise DatasetError(f"{category_dir}: no '*_{split}' folder; expected e.g. {category}_{split}/<id>/")
        for split_dir in split_dirs:
            for frame_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                rgbs = sorted(frame_dir.glob("*RGB.jpg"))
                gts = sorted(frame_dir.glob("*HR_gt.png"))
                if len(rgbs) != 1 or len(gts) != 1:
                    raise DatasetError(f"{frame_dir}: expected one *RGB.jpg and one *HR_gt.png, "
                                       f"found {len(rgbs)} and {len(gts)}")
                lrs = sorted(frame_dir.glob("*LR_fill_depth.png"))
                entries.append((f"{category}/{frame_dir.name}", rgbs[0], gts[0], lrs[0] if lrs else None,
                                CATEGORY_CLIP_M[category]))
    if not entries:
        raise DatasetError(f"{root}: no RGB-D-D {split} frames; expected <category>/*_{split}/<id>/*RGB.jpg")

    def load(i: int) -> RGBDFrame:
        name, rgb_path, depth_path, lr_path, clip = entries[i]
        return rgbdd_frame(name, rgb_path, depth_path, clip, lr_path)

    return FrameList([e[0] for e in entries], load, f"RGB-D-D {split} ({root})")
