"""NYU Depth v2 (labeled set): the official ``nyu_depth_v2_labeled.mat`` and the prepared .npy layout.

docs/model.md §3.1 (GDSR-Data-Preperation): ``images`` (1449, 3, 640, 480) uint8 and ``depths``
(1449, 640, 480) float in the MATLAB v7.3 (HDF5) file are stored transposed and become 3x480x640
and 480x640. Split by index: 0-999 train, 1000-1448 test. Depth in metres clipped to [0.1, 10];
the mask marks 0.1 <= d <= 10 on the unclipped depth; no crop, no hole filling, no resizing.
RMSE in cm after de-normalising with the per-image min/max (docs/model.md §4).
"""

from __future__ import annotations

import os

import numpy as np

from naima_ros.data.common import DatasetError, FrameList, RGBDFrame, metre_frame, require_dir, require_file

__all__ = ["INTRINSICS", "PAPER_TABLE", "REFERENCE_RGB", "TITLE", "CLIP_M", "NUM_IMAGES", "TRAIN_COUNT",
           "kinect_intrinsics", "split_indices", "load_nyu_mat", "load_prepared_split"]

TITLE = "NYU v2"
CLIP_M = (0.1, 10.0)  # metres; also the validity range
REFERENCE_RGB = "imagenet"  # RGB normalisation of the reference protocol (docs/model.md §4)
PAPER_TABLE = 1  # the paper's table: metric sets, RMSE in cm
INTRINSICS = (518.8579, 519.4696, 325.5824, 253.7362)  # (fx, fy, cx, cy) px of NYU v2's Kinect at 480x640
NUM_IMAGES = 1449
TRAIN_COUNT = 1000  # indices 0-999 train, 1000-1448 test


def kinect_intrinsics(height: int, width: int) -> tuple[float, float, float, float] | None:
    """``INTRINSICS`` for a full 480x640 NYU frame, None for any other size (not calibrated)."""
    return INTRINSICS if (height, width) == (480, 640) else None


def split_indices(split: str) -> range:
    """Indices of the reference split: "train" -> 0-999, "test" -> 1000-1448."""
    if split == "train":
        return range(0, TRAIN_COUNT)
    if split == "test":
        return range(TRAIN_COUNT, NUM_IMAGES)
    raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")


def load_nyu_mat(path: str | os.PathLike, split: str = "test") -> FrameList:
    """Lazy frames of one split of ``nyu_depth_v2_labeled.mat`` (read with h5py).

    Args:
        path: The official labeled .mat file (MATLAB v7.3 = HDF5).
        split: "train" (indices 0-999) or "test" (1000-1448).

    Returns:
        FrameList of metric frames named by their index in the file ("1000", ...).

    Raises:
        DatasetError: the file is missing, not HDF5, or lacks ``images``/``depths`` of the real
            shapes (1449, 3, W, H) uint8 and (1449, W, H) float.
    """
    import h5py

    indices = list(split_indices(split))
    path = require_file(path, "nyu_depth_v2_labeled.mat (MATLAB v7.3 / HDF5)")
    expected = ("HDF5 datasets 'images' (1449, 3, 640, 480) uint8 and 'depths' (1449, 640, 480) float")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DatasetError(f"{path}: not readable as HDF5; expected {expected} ({error})") from error
    with handle:
        try:
            images, depths = handle["images"], handle["depths"]
        except KeyError as error:
            raise DatasetError(f"{path}: missing dataset {error}; expected {expected}") from error
        ok = (images.ndim == 4 and images.shape[:2] == (NUM_IMAGES, 3) and images.dtype == np.uint8
              and depths.ndim == 3 and depths.shape == (NUM_IMAGES,) + images.shape[2:]
              and depths.dtype.kind == "f")
        if not ok:
            shapes = f"images {images.shape} {images.dtype}, depths {depths.shape} {depths.dtype}"
            raise DatasetError(f"{path}: got {shapes}; expected {expected}")
    # Opened lazily once per process: an h5py handle must not cross a DataLoader worker fork.
    state: dict = {"pid": None, "file": None}

    def load(i: int) -> RGBDFrame:
        if state["pid"] != os.getpid():
            state["file"], state["pid"] = h5py.File(path, "r"), os.getpid()
        index = indices[i]
        # MATLAB stores column-major: (3, W, H) -> (H, W, 3) and (W, H) -> (H, W).
        rgb = np.ascontiguousarray(state["file"]["images"][index].transpose(2, 1, 0))
        depth_m = np.ascontiguousarray(state["file"]["depths"][index].T, dtype=np.float32)
        return metre_frame(str(index), rgb, depth_m, CLIP_M, path=path,
                           intrinsics=kinect_intrinsics(*depth_m.shape))

    return FrameList([str(i) for i in indices], load, f"NYU v2 {split} ({path})")


_PREPARED_ARRAYS = {
    "images": ("uint8", 4),
    "depths_clipped": ("float", 3),
    "mask": ("bool", 3),
    "minmax": ("float", 2),
}


def load_prepared_split(root: str | os.PathLike, split: str = "test", *, dataset: str = "NYU v2") -> FrameList:
    """Lazy frames from the prepared memory-mapped .npy layout of docs/model.md §3.1.

    Reads ``<split>_images_split.npy`` (N, 3, H, W) uint8, ``<split>_depths_clipped_split.npy``
    (N, H, W) metres, ``<split>_mask_split.npy`` (N, H, W) bool and ``<split>_minmax_split.npy``
    (N, 2) stored as **[max, min]**. The same preparation code writes NYU, RGB-D-D and TOFDSR, so
    this reads any of them; ``dataset`` only names it in messages.

    Args:
        root: Directory holding the .npy files.
        split: "train" or "test" (the file prefix).
        dataset: Name for messages and ``FrameList.description``.

    Raises:
        DatasetError: a file is missing or has the wrong dtype/shape/count.
    """
    root = require_dir(root, f"the prepared {dataset} .npy files ({split}_images_split.npy, ...)")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    arrays = {}
    for key, (kind, ndim) in _PREPARED_ARRAYS.items():
        path = require_file(root / f"{split}_{key}_split.npy", f"the prepared {dataset} array {key}")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DatasetError(f"{path}: not a readable .npy array ({error})") from error
        kind_ok = {"uint8": array.dtype == np.uint8, "float": array.dtype.kind == "f",
                   "bool": array.dtype == np.bool_}[kind]
        if not kind_ok or array.ndim != ndim:
            raise DatasetError(f"{path}: got {array.dtype} {array.shape}; expected {ndim}-D {kind}")
        arrays[key] = array
    count = arrays["images"].shape[0]
    height, width = arrays["images"].shape[2:]
    expected = {"images": (count, 3, height, width), "depths_clipped": (count, height, width),
                "mask": (count, height, width), "minmax": (count, 2)}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise DatasetError(f"{root / f'{split}_{key}_split.npy'}: got shape {arrays[key].shape}; "
                               f"expected {shape} to match {split}_images_split.npy")

    def load(i: int) -> RGBDFrame:
        rgb = np.ascontiguousarray(arrays["images"][i].transpose(1, 2, 0))
        maximum, minimum = (float(v) for v in arrays["minmax"][i])  # stored as [max, min]
        return RGBDFrame(name=str(i), rgb=rgb, depth=np.asarray(arrays["depths_clipped"][i], dtype=np.float32),
                         valid=np.asarray(arrays["mask"][i], dtype=bool), minmax=(minimum, maximum),
                         unit="m", rmse_scale=100.0, rmse_unit="cm",
                         intrinsics=kinect_intrinsics(height, width) if dataset == TITLE else None)

    return FrameList([str(i) for i in range(count)], load, f"{dataset} prepared {split} ({root})")
