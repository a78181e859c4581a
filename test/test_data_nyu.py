"""NYU v2 loaders on tiny files written in the real formats (HDF5 v7.3 .mat; prepared .npy)."""

import h5py
import numpy as np
import pytest

from naima_ros.data import nyu
from naima_ros.data.common import DatasetError

W, H = 8, 6  # the real file is (1449, 3, 640, 480): MATLAB's column-major (C, W, H)


def _matlab_header() -> bytes:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    return text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def write_nyu_mat(path, count=1449, depth_dtype=np.float32):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 3, W, H), dtype=np.uint8)
    depths = rng.uniform(0.5, 9.0, size=(count, W, H)).astype(depth_dtype)
    depths[:, 0, 0] = 0.05   # below range: clipped to 0.1, invalid
    depths[:, 1, 0] = 12.0   # above range: clipped to 10, invalid
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("images", data=images)
        f.create_dataset("depths", data=depths)
        f.create_dataset("labels", data=np.zeros((count, W, H), dtype=np.uint16))
    with open(path, "r+b") as f:
        f.write(_matlab_header())
    return images, depths


def test_mat_split_transpose_clip_mask(tmp_path):
    path = tmp_path / "nyu_depth_v2_labeled.mat"
    images, depths = write_nyu_mat(path)
    test = nyu.load_nyu_mat(path, "test")
    train = nyu.load_nyu_mat(path, "train")
    assert len(train) == 1000 and len(test) == 449
    assert train.names[0] == "0" and test.names[0] == "1000" and test.names[-1] == "1448"
    frame = test[0]
    assert frame.rgb.shape == (H, W, 3) and frame.rgb.dtype == np.uint8
    # (C, W, H) -> (H, W, C): pixel (y, x) of channel c is images[i, c, x, y].
    for y, x, c in [(0, 0, 0), (5, 7, 2), (2, 3, 1)]:
        assert frame.rgb[y, x, c] == images[1000, c, x, y]
    assert frame.depth.shape == (H, W)
    assert frame.depth[0, 0] == pytest.approx(0.1) and not frame.valid[0, 0]
    assert frame.depth[0, 1] == pytest.approx(10.0) and not frame.valid[0, 1]
    assert frame.depth[3, 4] == pytest.approx(depths[1000, 4, 3]) and frame.valid[3, 4]
    assert frame.minmax == (pytest.approx(0.1), pytest.approx(10.0))
    assert frame.unit == "m" and frame.rmse_scale == 100.0 and frame.rmse_unit == "cm"
    assert frame.depth_norm.min() == pytest.approx(0.0) and frame.depth_norm.max() == pytest.approx(1.0)
    assert train[-1].name == "999"


def test_mat_float64_depths_accepted(tmp_path):
    path = tmp_path / "nyu.mat"
    write_nyu_mat(path, depth_dtype=np.float64)
    assert nyu.load_nyu_mat(path, "test")[1].depth.dtype == np.float32


def test_mat_errors_name_path_and_expectation(tmp_path):
    missing = tmp_path / "absent.mat"
    with pytest.raises(DatasetError, match="absent.mat.*nyu_depth_v2_labeled"):
        nyu.load_nyu_mat(missing)
    not_hdf5 = tmp_path / "old.mat"
    not_hdf5.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 200)
    with pytest.raises(DatasetError, match="old.mat.*HDF5"):
        nyu.load_nyu_mat(not_hdf5)
    short = tmp_path / "short.mat"
    write_nyu_mat(short, count=10)
    with pytest.raises(DatasetError, match=r"short.mat.*\(1449, 3, 640, 480\)"):
        nyu.load_nyu_mat(short)
    no_depths = tmp_path / "nodepth.mat"
    with h5py.File(no_depths, "w") as f:
        f.create_dataset("images", data=np.zeros((1449, 3, 2, 2), np.uint8))
    with pytest.raises(DatasetError, match="nodepth.mat.*depths"):
        nyu.load_nyu_mat(no_depths)
    with pytest.raises(ValueError, match="split"):
        nyu.load_nyu_mat(short, "val")


def write_prepared(root, split="test", count=3, h=6, w=8):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(count, 3, h, w), dtype=np.uint8)
    clipped = rng.uniform(0.1, 10.0, size=(count, h, w)).astype(np.float32)
    mask = rng.random((count, h, w)) > 0.1
    minmax = np.stack([clipped.reshape(count, -1).max(1), clipped.reshape(count, -1).min(1)], 1)  # [max, min]
    np.save(root / f"{split}_images_split.npy", images)
    np.save(root / f"{split}_images_norm_split.npy", images / np.float32(255))
    np.save(root / f"{split}_depths_clipped_split.npy", clipped)
    np.save(root / f"{split}_mask_split.npy", mask)
    np.save(root / f"{split}_minmax_split.npy", minmax.astype(np.float32))
    return images, clipped, mask, minmax


def test_prepared_layout_reads_max_min_order(tmp_path):
    images, clipped, mask, minmax = write_prepared(tmp_path)
    frames = nyu.load_prepared_split(tmp_path, "test")
    assert len(frames) == 3
    frame = frames[2]
    np.testing.assert_array_equal(frame.rgb, images[2].transpose(1, 2, 0))
    np.testing.assert_array_equal(frame.depth, clipped[2])
    np.testing.assert_array_equal(frame.valid, mask[2])
    assert frame.minmax == (pytest.approx(minmax[2, 1]), pytest.approx(minmax[2, 0]))  # (min, max)
    assert frame.minmax[0] < frame.minmax[1]


def test_prepared_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="test_images_split.npy"):
        nyu.load_prepared_split(tmp_path, "test")
    write_prepared(tmp_path)
    np.save(tmp_path / "test_mask_split.npy", np.ones((2, 6, 8), bool))
    with pytest.raises(DatasetError, match=r"test_mask_split.npy.*\(3, 6, 8\)"):
        nyu.load_prepared_split(tmp_path, "test")
    with pytest.raises(DatasetError, match="not-there"):
        nyu.load_prepared_split(tmp_path / "not-there")
