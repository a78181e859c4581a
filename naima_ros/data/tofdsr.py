"""TOF-DSR ("TOFDSRD" in the paper): list files ``TOFDSR_Train.txt`` / ``TOFDSR_Test.txt``.

docs/model.md §3.1: each line is comma-separated ``rgb, gt, lr`` paths; the reference strips the prefix
``TOFDC_split`` with ``str.lstrip`` (a character-set strip that happens to work because a "/"
follows); we remove the literal prefix, which gives the same path for these lines. RGB and GT at
384x512; GT uint16 mm / 1000 -> metres, clipped to [0.1, 6.0] (also the mask). The real LR column
is attached as ``depth_lr`` but the benchmark ignores it and synthesises LR, like NYU.
"""

from __future__ import annotations

import os
from pathlib import Path

from naima_ros.data.common import DatasetError, FrameList, RGBDFrame, require_dir, require_file
from naima_ros.data.rgbdd import rgbdd_frame

__all__ = ["PAPER_TABLE", "REFERENCE_RGB", "TITLE", "CLIP_M", "LIST_FILES", "load_tofdsr", "parse_list"]

TITLE = "TOFDSR"
REFERENCE_RGB = "imagenet"  # RGB normalisation of the reference protocol (docs/model.md §4)
PAPER_TABLE = 1  # the paper's table: metric sets, RMSE in cm
CLIP_M = (0.1, 6.0)
LIST_FILES = {"train": "TOFDSR_Train.txt", "test": "TOFDSR_Test.txt"}
_PREFIX = "TOFDC_split"


def parse_list(list_path: Path) -> list[tuple[str, str, str]]:
    """Parse a TOFDSR list file into (rgb, gt, lr) relative paths, prefix removed.

    Raises:
        DatasetError: a non-blank line does not have three comma-separated fields.
    """
    rows = []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or not all(fields):
            raise DatasetError(f"{list_path}:{number}: expected 'rgb,gt,lr' (three comma-separated paths), "
                               f"got {line!r}")
        rows.append(tuple(f.removeprefix(_PREFIX).lstrip("/\\") for f in fields))
    return rows


def load_tofdsr(root: str | os.PathLike, split: str = "test", *, check_files: bool = True) -> FrameList:
    """Lazy frames of one TOFDSR split.

    Args:
        root: Folder holding ``TOFDSR_Train.txt`` / ``TOFDSR_Test.txt``; listed paths are relative
            to it (after removing ``TOFDC_split``).
        split: "train" or "test".
        check_files: Verify up front that every listed RGB and GT file exists.

    Raises:
        DatasetError: the list file is missing or malformed, lists nothing, or a listed file is
            missing.
    """
    if split not in LIST_FILES:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    root = require_dir(root, f"the TOFDSR folder with {LIST_FILES[split]}")
    list_path = require_file(root / LIST_FILES[split], "the TOFDSR list file of lines 'rgb,gt,lr'")
    rows = parse_list(list_path)
    if not rows:
        raise DatasetError(f"{list_path}: lists no frames; expected lines 'rgb,gt,lr'")
    if check_files:
        for rgb, gt, _ in rows:
            for relative in (rgb, gt):
                require_file(root / relative, f"a file listed in {list_path.name}")

    def load(i: int) -> RGBDFrame:
        rgb, gt, lr = rows[i]
        lr_path = root / lr if (root / lr).is_file() else None
        return rgbdd_frame(Path(gt).stem, root / rgb, root / gt, CLIP_M, lr_path)

    return FrameList([Path(r[1]).stem for r in rows], load, f"TOFDSR {split} ({list_path})")
