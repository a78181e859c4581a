"""The dataset registry: one spelling, facts from each dataset's module, loaders, clear errors."""

import pytest

from naima_ros.data import middlebury_lu, nyu, rgbdd, shared, tofdsr
from naima_ros.data.common import DatasetError
from naima_ros.data.registry import DATASETS, SHARED_SUBSET, dataset_names, open_dataset

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
