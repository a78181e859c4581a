"""RGB-D-D and TOFDSR loaders on tiny trees written in the real layouts (JPEG + uint16 mm PNG)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from naima_ros.data import rgbdd, tofdsr
from naima_ros.data.common import DatasetError

H, W = 8, 12


def write_frame(folder, stem, depth_mm, lr_mm=None):
    folder.mkdir(parents=True, exist_ok=True)
    rgb = np.full((H, W, 3), 128, np.uint8)
    Image.fromarray(rgb).save(folder / f"{stem}_RGB.jpg")
    Image.fromarray(depth_mm.astype(np.uint16)).save(folder / f"{stem}_HR_gt.png")
    if lr_mm is not None:
        Image.fromarray(lr_mm.astype(np.uint16)).save(folder / f"{stem}_LR_fill_depth.png")


def depth_with(value_mm, hole=True):
    depth = np.full((H, W), value_mm, np.uint16)
    depth[0, 0] = 0 if hole else value_mm
    depth[1, 1] = 7000  # beyond every category's range
    return depth


def make_rgbdd(root):
    for category, value in [("models", 1500), ("plants", 1000), ("portraits", 2000)]:
        for split in ("train", "test"):
            for k in range(2):
                stem = f"2020050{k}{category[:2]}{split}"
                lr = np.full((H // 4, W // 4), value, np.uint16) if category == "models" else None
                write_frame(root / category / f"{category}_{split}" / stem, stem, depth_with(value + k), lr)


def test_rgbdd_categories_clip_ranges_and_order(tmp_path):
    root = tmp_path / "RGBDD-Full"
    make_rgbdd(root)
    frames = rgbdd.load_rgbdd(root, "test")
    assert len(frames) == 6
    assert [n.split("/")[0] for n in frames.names] == ["models"] * 2 + ["plants"] * 2 + ["portraits"] * 2
    by_category = {name.split("/")[0]: frames[i] for i, name in enumerate(frames.names)}
    for category, (lo, hi) in rgbdd.CATEGORY_CLIP_M.items():
        frame = by_category[category]
        assert frame.rgb.shape == (H, W, 3) and frame.depth.shape == (H, W)
        assert frame.depth[0, 0] == pytest.approx(lo) and not frame.valid[0, 0]  # hole clips to the floor
        assert frame.depth[1, 1] == pytest.approx(hi) and not frame.valid[1, 1]
        assert frame.minmax == (pytest.approx(lo), pytest.approx(hi))
    models = by_category["models"]
    assert models.depth[4, 4] == pytest.approx(1.501) and models.valid[4, 4]  # mm -> m
    assert models.depth_lr.shape == (H // 4, W // 4) and models.depth_lr[0, 0] == pytest.approx(1.5)
    assert by_category["plants"].depth_lr is None
    assert len(rgbdd.load_rgbdd(root, "train")) == 6


def test_rgbdd_errors(tmp_path):
    with pytest.raises(DatasetError, match="nowhere.*RGBDD-Full"):
        rgbdd.load_rgbdd(tmp_path / "nowhere")
    root = tmp_path / "RGBDD-Full"
    make_rgbdd(root)
    (root / "plants" / "plants_test" / "broken").mkdir()
    with pytest.raises(DatasetError, match="broken.*HR_gt"):
        rgbdd.load_rgbdd(root, "test")
    assert len(rgbdd.load_rgbdd(root, "train", categories=("models",))) == 2
    shutil.rmtree(root / "portraits")
    with pytest.raises(DatasetError, match="portraits.*category folder"):
        rgbdd.load_rgbdd(root, "train")


def make_tofdsr(root, lines=None):
    for split in ("Train", "Test"):
        for k in range(3):
            base = root / split
            for sub in ("RGB", "GT", "LR"):
                (base / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(base / "RGB" / f"{k:05d}_rgb.jpg")
            depth = np.full((H, W), 2000 + k, np.uint16)
            depth[0, 0] = 0
            depth[1, 1] = 6500
            Image.fromarray(depth).save(base / "GT" / f"{k:05d}_gt.png")
            Image.fromarray(np.full((H // 2, W // 2), 2100, np.uint16)).save(base / "LR" / f"{k:05d}_lr.png")
    for split in ("Train", "Test"):
        text = lines if lines is not None else "\n".join(
            f"TOFDC_split/{split}/RGB/{k:05d}_rgb.jpg,TOFDC_split/{split}/GT/{k:05d}_gt.png,"
            f"TOFDC_split/{split}/LR/{k:05d}_lr.png" for k in range(3)) + "\n"
        (root / f"TOFDSR_{split}.txt").write_text(text)


def test_tofdsr_list_files(tmp_path):
    make_tofdsr(tmp_path)
    frames = tofdsr.load_tofdsr(tmp_path, "test")
    assert len(frames) == 3 and frames.names[0] == "00000_gt"
    frame = frames[2]
    assert frame.depth[4, 4] == pytest.approx(2.002)
    assert frame.depth[0, 0] == pytest.approx(0.1) and not frame.valid[0, 0]
    assert frame.depth[1, 1] == pytest.approx(6.0) and not frame.valid[1, 1]
    assert frame.depth_lr.shape == (H // 2, W // 2)
    assert len(tofdsr.load_tofdsr(tmp_path, "train")) == 3


def test_tofdsr_errors(tmp_path):
    with pytest.raises(DatasetError, match="TOFDSR_Test.txt"):
        tofdsr.load_tofdsr(tmp_path, "test")
    make_tofdsr(tmp_path, lines="a.jpg,b.png\n")
    with pytest.raises(DatasetError, match=r"TOFDSR_Test.txt:1.*rgb,gt,lr"):
        tofdsr.load_tofdsr(tmp_path, "test")
    make_tofdsr(tmp_path, lines="TOFDC_split/Test/RGB/x.jpg,TOFDC_split/Test/GT/missing.png,l.png\n")
    with pytest.raises(DatasetError, match="x.jpg"):
        tofdsr.load_tofdsr(tmp_path, "test")
