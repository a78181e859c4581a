"""The dataset registry: one spelling, facts from each dataset's module, loaders, clear errors."""

import dataclasses

import numpy as np
import pytest

from naima_ros.data import middlebury_lu, motorcycle, nyu, rgbdd, shared, tofdsr
from naima_ros.data.common import DatasetError
from naima_ros.data.registry import (DATASETS, PROCEDURAL, SHARED_SUBSET, bag_sources, canonical_name, dataset_names,
                                     open_dataset, path_flags, training_sources, validation_frames,
                                     validation_sources)

SHARED = shared.shared_data_root()
needs_shared = pytest.mark.skipif(not (SHARED / "gdsr_test").is_dir() or not (SHARED / "rgbdd_train360").is_dir(),
                                  reason=f"shared data not found at {SHARED}; set NAIMA_SHARED_DATA")


def test_names_by_use():
    assert dataset_names("train") == ("nyu", "rgbdd", "tofdsr", "rgbdd360")
    assert dataset_names("test", benchmark=True) == ("nyu", "rgbdd", "tofdsr", "middlebury", "lu")
    assert set(dataset_names()) == set(DATASETS)


def test_protocol_facts_come_from_the_dataset_modules():
    for name, module in (("nyu", nyu), ("rgbdd", rgbdd), ("tofdsr", tofdsr)):
        info = DATASETS[name]
        assert (info.title, info.paper_table, info.reference_rgb) == (module.TITLE, 1, "imagenet")
    for name, table in (("middlebury", 2), ("lu", 3)):
        info = DATASETS[name]
        assert info.paper_table == table == middlebury_lu.PAPER_TABLES[name]
        assert info.reference_rgb == "unit" == middlebury_lu.REFERENCE_RGB


def test_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'nyu_mat'"):
        open_dataset("nyu_mat")
    with pytest.raises(ValueError, match="dataset 'middlebury' has no 'train' split"):
        open_dataset("middlebury", "train")
    with pytest.raises(DatasetError, match="needs its path: the folder with TOFDSR_Train.txt"):
        open_dataset("tofdsr", "train")
    with pytest.raises(DatasetError, match="needs its path"):
        open_dataset("nyu", "train")
    # a path ending in .mat is the official file, anything else the prepared folder
    with pytest.raises(DatasetError, match="missing.mat"):
        open_dataset("nyu", "train", tmp_path / "missing.mat")
    with pytest.raises(DatasetError, match="npy"):
        open_dataset("nyu", "test", tmp_path)


@needs_shared
def test_shared_copies():
    frames, description = open_dataset("middlebury")
    assert len(frames) == 30 and description.startswith("30 images")
    frames, _ = open_dataset("lu", shared_root=SHARED)
    assert len(frames) == 6 and frames[0].unit == "8bit"
    frames, description = open_dataset("rgbdd360", "train")
    assert len(frames) == 360
    _, description = open_dataset("nyu")
    assert description.startswith(SHARED_SUBSET)
    frames, _ = open_dataset("middlebury", path=SHARED / "gdsr_test" / "Middlebury")
    assert len(frames) == 30


def test_motorcycle_is_one_metric_frame():
    pytest.importorskip("skimage")
    frames, _ = open_dataset("motorcycle")
    assert len(frames) == 1 and frames[0].unit == "m"


def test_uses_look_names_up_here():
    """Training, validation, naima-bag make and naima-eval take their names from the registry."""
    assert training_sources() == ("nyu", "rgbdd", "tofdsr", "rgbdd360", PROCEDURAL)
    assert validation_sources() == (PROCEDURAL, "middlebury", "lu", "motorcycle")
    assert bag_sources() == (PROCEDURAL,) + tuple(DATASETS)
    assert path_flags("nyu") == ("nyu_mat", "nyu_npy") and path_flags("middlebury") == ()
    assert [n for n, d in DATASETS.items() if d.needs_path] == ["tofdsr"]


def test_procedural_is_one_name_and_synthetic_an_alias():
    assert canonical_name("synthetic") == PROCEDURAL == canonical_name(PROCEDURAL)
    assert canonical_name("nyu") == "nyu"
    frames = validation_frames("synthetic", 2)
    assert [f.name for f in frames] == ["val_0", "val_1"] and frames[0].depth.shape == (240, 320)
    assert frames[0].intrinsics is not None and np.isfinite(frames[0].depth_m).all()
    with pytest.raises(ValueError, match="unknown validation set 'nyu'"):
        validation_frames("nyu", 1)


def test_frames_carry_their_units_and_intrinsics(tmp_path):
    """What naima-bag make needs from a frame comes from its dataset's module."""
    pytest.importorskip("skimage")
    (frame,), _ = open_dataset("motorcycle")
    assert frame.intrinsics == (motorcycle.FOCAL_PX, motorcycle.FOCAL_PX) + motorcycle.PRINCIPAL_POINT_PX
    np.testing.assert_array_equal(np.isnan(frame.depth_m), ~frame.valid)
    assert nyu.kinect_intrinsics(480, 640) == nyu.INTRINSICS and nyu.kinect_intrinsics(48, 64) is None
    rgb = np.zeros((4, 4, 3), np.uint8)
    from naima_ros.data.common import frame_from_metres
    eight_bit = dataclasses.replace(frame_from_metres("x", rgb, np.full((4, 4), 100.0)), unit="8bit",
                                    metres_per_unit=middlebury_lu.METRES_PER_UNIT)
    np.testing.assert_allclose(eight_bit.depth_m, 100.0 * middlebury_lu.METRES_PER_UNIT)
    inverse = dataclasses.replace(eight_bit, unit="1/m", metres_per_unit=None)
    with pytest.raises(ValueError, match="not a length"):
        inverse.depth_m
