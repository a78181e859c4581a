"""Middlebury/Lu PNG pairs, the shared data folder and the scikit-image Motorcycle scene."""

import numpy as np
import pytest
from PIL import Image

from naima_ros.data import middlebury_lu, motorcycle, shared
from naima_ros.data.common import DatasetError

SHARED = shared.shared_data_root()
needs_shared = pytest.mark.skipif(not (SHARED / "gdsr_test").is_dir(),
                                  reason=f"shared real data not found at {SHARED} (set NAIMA_SHARED_DATA)")


def write_pair(folder_rgb, folder_depth, stem, colour_word="output_color", size=(10, 14)):
    folder_rgb.mkdir(parents=True, exist_ok=True)
    folder_depth.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(len(stem)).integers(0, 256, size=size + (3,), dtype=np.uint8)
    depth = np.arange(size[0] * size[1], dtype=np.uint8).reshape(size)
    Image.fromarray(rgb).save(folder_rgb / f"{stem}_{colour_word}.png")
    Image.fromarray(depth).save(folder_depth / f"{stem}_output_depth.png")
    return rgb, depth


def test_flat_folder_and_ouput_spelling(tmp_path):
    rgb, depth = write_pair(tmp_path, tmp_path, "RGBD_02", "ouput_color")
    write_pair(tmp_path, tmp_path, "RGBD_01", "ouput_color")
    frames = middlebury_lu.load_lu(tmp_path)
    assert frames.names == ["RGBD_01", "RGBD_02"]
    frame = frames[1]
    np.testing.assert_array_equal(frame.rgb, rgb)
    np.testing.assert_array_equal(frame.depth, depth.astype(np.float32))
    assert frame.minmax == (0.0, 255.0) and frame.unit == "8bit" and frame.rmse_scale == 1.0
    np.testing.assert_allclose(frame.depth_norm, depth / 255.0, rtol=1e-6)
    assert frame.valid.all()


def test_rgb_depth_subfolders(tmp_path):
    for k in (3, 1, 2):
        write_pair(tmp_path / "RGB", tmp_path / "Depth", f"Middlebury_0{k}")
    frames = middlebury_lu.load_middlebury(tmp_path)
    assert frames.names == ["Middlebury_01", "Middlebury_02", "Middlebury_03"]


def test_benchmark_errors(tmp_path):
    with pytest.raises(DatasetError, match="output_color"):
        middlebury_lu.load_middlebury(tmp_path)
    write_pair(tmp_path, tmp_path, "A")
    write_pair(tmp_path, tmp_path, "B")
    (tmp_path / "B_output_depth.png").unlink()
    with pytest.raises(DatasetError, match="found 2 .*1 \\*output_depth"):
        middlebury_lu.load_middlebury(tmp_path)
    other = tmp_path / "grey"
    other.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(other / "X_output_color.png")
    Image.fromarray(np.zeros((4, 4), np.uint16) + 300).save(other / "X_output_depth.png")
    frames = middlebury_lu.load_middlebury(other)
    with pytest.raises(DatasetError, match="X_output_color.png.*3-channel"):
        frames[0]
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(other / "X_output_color.png")
    with pytest.raises(DatasetError, match="X_output_depth.png.*8-bit"):
        middlebury_lu.load_middlebury(other)[0]


def test_shared_root_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(shared.ENV_VAR, raising=False)
    default = shared.shared_data_root()
    assert default.parts[-2:] == ("shared", "data")
    monkeypatch.setenv(shared.ENV_VAR, str(tmp_path / "env"))
    assert shared.shared_data_root() == tmp_path / "env"
    assert shared.shared_data_root(tmp_path / "arg") == tmp_path / "arg"
    with pytest.raises(DatasetError, match="env/gdsr_test/Lu.*NAIMA_SHARED_DATA"):
        shared.load_test_set("Lu")
    with pytest.raises(DatasetError, match="arg/rgbdd_train360"):
        shared.load_rgbdd_train360(tmp_path / "arg")


def test_installed_package_looks_next_to_the_current_folder(tmp_path, monkeypatch):
    """Installed (no setup.py beside the package), the default follows the current folder, not site-packages."""
    monkeypatch.delenv(shared.ENV_VAR, raising=False)
    monkeypatch.setattr(shared, "_REPO_ROOT", tmp_path / "site-packages")
    work = tmp_path / "robot" / "ws"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert shared.shared_data_root() == tmp_path / "robot" / "shared" / "data"


def test_shared_layout_on_tiny_tree(tmp_path):
    folder = tmp_path / "gdsr_test" / "NYUDepthv2_Test"
    (folder / "RGB").mkdir(parents=True)
    (folder / "Depth").mkdir()
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(folder / "RGB" / "1000.jpg")
    depth = np.linspace(0.05, 12, 48, dtype=np.float32).reshape(6, 8)
    np.save(folder / "Depth" / "1000.npy", depth)
    frame = shared.load_test_set("NYUDepthv2_Test", tmp_path)[0]
    assert frame.minmax == (pytest.approx(0.1), pytest.approx(10.0))
    assert not frame.valid[0, 0] and not frame.valid[-1, -1] and frame.valid[2, 2]
    train = tmp_path / "rgbdd_train360"
    (train / "RGB").mkdir(parents=True)
    (train / "Depth").mkdir()
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(train / "RGB" / "7_RGB.jpg")
    mm = np.full((6, 8), 1200, np.uint16)
    mm[0, :3] = 0  # holes: filled with the nearest valid depth, marked invalid
    Image.fromarray(mm).save(train / "Depth" / "7_HR_gt.png")
    frame = shared.load_rgbdd_train360(tmp_path)[0]
    assert frame.name == "7" and frame.minmax == (pytest.approx(1.2), pytest.approx(1.2))
    assert frame.depth[0, 0] == pytest.approx(1.2) and not frame.valid[0, 0]
    (train / "Depth" / "7_HR_gt.png").rename(train / "Depth" / "8_HR_gt.png")
    with pytest.raises(DatasetError, match="unpaired"):
        shared.load_rgbdd_train360(tmp_path)


@needs_shared
def test_real_shared_data_counts_and_formats():
    expected = {"Middlebury": 30, "Lu": 6, "NYUDepthv2_Test": 3, "RGBDD_Test_Realscene": 3}
    for name, count in expected.items():
        frames = shared.load_test_set(name)
        assert len(frames) == count, name
        frame = frames[0]
        assert frame.rgb.dtype == np.uint8 and frame.rgb.shape[:2] == frame.depth.shape
        assert np.isfinite(frame.depth).all()
    assert shared.load_test_set("Lu")[0].depth.shape == (480, 640)
    assert shared.load_test_set("NYUDepthv2_Test")[0].unit == "m"
    assert shared.load_test_set("RGBDD_Test_Realscene")[0].depth_lr.shape == (144, 192)
    train = shared.load_rgbdd_train360()
    assert len(train) == 360 and train[0].depth.shape == (384, 512)


def test_motorcycle_depth_from_disparity():
    from skimage import data

    frame = motorcycle.load_motorcycle()
    _, _, disparity = data.stereo_motorcycle()
    assert frame.rgb.shape == (500, 741, 3) and frame.depth.shape == (500, 741)
    y, x = 250, 370
    assert np.isfinite(disparity[y, x])
    # Middlebury 2014: Z = baseline * f / (d + doffs), calibration of the x4-down-sampled images.
    assert frame.depth[y, x] == pytest.approx(0.193001 * 994.978 / (disparity[y, x] + 31.086), rel=1e-5)
    assert frame.valid.mean() > 0.85 and not frame.valid[~np.isfinite(disparity)].any()
    assert np.isfinite(frame.depth).all() and 1.5 < frame.minmax[0] < frame.minmax[1] < 6.0
    assert frame.unit == "m" and frame.rmse_unit == "cm"
