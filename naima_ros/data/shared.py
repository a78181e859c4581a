"""The real data shared with this project (``../shared/data``, see its README.md): read, never copied.

Layout:
    gdsr_test/Middlebury/{RGB,Depth}/       30 pairs, 8-bit (``middlebury_lu``)
    gdsr_test/Lu/{RGB,Depth}/               6 pairs, 8-bit, "ouput_color" spelling
    gdsr_test/NYUDepthv2_Test/RGB/NNNN.jpg, Depth/NNNN.npy   float32 metres, 480x640
    gdsr_test/RGBDD_Test_Realscene/RGB/<id>_RGB.jpg, Depth/<id>_HR_gt.png, DepthLR/<id>_LR_fill_depth.png
    rgbdd_train360/RGB/<id>_RGB.jpg, Depth/<id>_HR_gt.png   uint16 mm, 384x512 (training only)

The location is, in order of precedence: the ``root`` argument, the ``NAIMA_SHARED_DATA``
environment variable, ``../shared/data`` relative to the repository root (a source checkout) or to
the current folder (an installed package).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from naima_ros.data import middlebury_lu, nyu, rgbdd
from naima_ros.data.common import DatasetError, FrameList, RGBDFrame, metre_frame, read_rgb, require_dir

__all__ = ["ENV_VAR", "TEST_SETS", "shared_data_root", "load_test_set", "load_rgbdd_train360"]

ENV_VAR = "NAIMA_SHARED_DATA"
TEST_SETS = ("Middlebury", "Lu", "NYUDepthv2_Test", "RGBDD_Test_Realscene")
_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the shared data folder: argument, then ``$NAIMA_SHARED_DATA``, then ``../shared/data``.

    ``../shared/data`` is taken relative to the repository in a source checkout, and relative to the
    current folder for an installed package (whose own location, site-packages or a colcon install,
    says nothing about where the data is). The folder is not checked here; loaders raise
    DatasetError naming it if it is missing.
    """
    if root is not None:
        return Path(root)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    base = _REPO_ROOT if (_REPO_ROOT / "setup.py").is_file() else Path.cwd()
    return (base / ".." / "shared" / "data").resolve()


def _pairs(rgb_dir: Path, depth_dir: Path, rgb_suffix: str, depth_suffix: str) -> list[tuple[str, Path, Path]]:
    rgbs = {p.name[: -len(rgb_suffix)]: p for p in rgb_dir.iterdir() if p.name.endswith(rgb_suffix)}
    depths = {p.name[: -len(depth_suffix)]: p for p in depth_dir.iterdir() if p.name.endswith(depth_suffix)}
    if not rgbs or set(rgbs) != set(depths):
        missing = sorted(set(rgbs) ^ set(depths))[:5]
        raise DatasetError(f"{rgb_dir.parent}: expected matching RGB/<id>{rgb_suffix} and Depth/<id>{depth_suffix} "
                           f"files; found {len(rgbs)} and {len(depths)} (unpaired: {missing})")
    return [(key, rgbs[key], depths[key]) for key in sorted(rgbs)]


def _nyu_test(folder: Path) -> FrameList:
    pairs = _pairs(require_dir(folder / "RGB", "NYU RGB/NNNN.jpg"), require_dir(folder / "Depth", "NYU Depth/NNNN.npy"),
                   ".jpg", ".npy")

    def load(i: int) -> RGBDFrame:
        name, rgb_path, depth_path = pairs[i]
        try:
            depth_m = np.load(depth_path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DatasetError(f"{depth_path}: expected a float32 metres .npy ({error})") from error
        if depth_m.ndim != 2 or depth_m.dtype.kind != "f":
            raise DatasetError(f"{depth_path}: got {depth_m.dtype} {depth_m.shape}; expected (H, W) float metres")
        return metre_frame(name, read_rgb(rgb_path), depth_m.astype(np.float32), nyu.CLIP_M, path=depth_path,
                           intrinsics=nyu.kinect_intrinsics(*depth_m.shape))

    return FrameList([p[0] for p in pairs], load, f"NYU v2 test subset ({folder})")


def _rgbdd_folder(folder: Path, with_lr: bool) -> FrameList:
    """RGB/<id>_RGB.jpg + Depth/<id>_HR_gt.png (+ DepthLR/), category unknown, holes filled."""
    pairs = _pairs(require_dir(folder / "RGB", "RGB-D-D RGB/<id>_RGB.jpg"),
                   require_dir(folder / "Depth", "RGB-D-D Depth/<id>_HR_gt.png"), "_RGB.jpg", "_HR_gt.png")
    lr_dir = folder / "DepthLR"

    def load(i: int) -> RGBDFrame:
        name, rgb_path, depth_path = pairs[i]
        lr_path = lr_dir / f"{name}_LR_fill_depth.png"
        return rgbdd.rgbdd_frame(name, rgb_path, depth_path, rgbdd.UNCATEGORISED_CLIP_M,
                                 lr_path if with_lr and lr_path.is_file() else None, fill_holes=True)

    return FrameList([p[0] for p in pairs], load, f"RGB-D-D ({folder})")


def load_test_set(name: str, root: str | os.PathLike | None = None) -> FrameList:
    """One of the shared ``gdsr_test`` sets.

    Args:
        name: "Middlebury", "Lu", "NYUDepthv2_Test" or "RGBDD_Test_Realscene".
        root: Shared data folder (see :func:`shared_data_root`).

    Raises:
        DatasetError: the folder is missing or malformed.
    """
    if name not in TEST_SETS:
        raise ValueError(f"unknown test set {name!r}; expected one of {TEST_SETS}")
    folder = require_dir(shared_data_root(root) / "gdsr_test" / name,
                         f"the shared {name} test set (see shared/data/README.md; set ${ENV_VAR})")
    if name in ("Middlebury", "Lu"):
        return middlebury_lu.load_benchmark_pngs(folder, name)
    if name == "NYUDepthv2_Test":
        return _nyu_test(folder)
    return _rgbdd_folder(folder, with_lr=True)


def load_rgbdd_train360(root: str | os.PathLike | None = None) -> FrameList:
    """The 360 real RGB-D-D frames for training (``rgbdd_train360``), metres, category unknown.

    Clipped to ``rgbdd.UNCATEGORISED_CLIP_M``, holes filled with the nearest valid depth (a few
    frames have zeros) and marked invalid; these come from RGB-D-D's test split, so a model
    trained on them must not report RGB-D-D benchmark numbers.
    """
    folder = require_dir(shared_data_root(root) / "rgbdd_train360",
                         f"the shared rgbdd_train360 folder with RGB/ and Depth/ (set ${ENV_VAR})")
    return _rgbdd_folder(folder, with_lr=False)
