"""The one dataset registry: names, splits and loaders for training, ``naima-eval`` and ``naima-bag``.

Each dataset is spelled one way everywhere (``--dataset`` of training, ``--datasets`` of
naima-eval, ``--source`` of naima-bag make). Its protocol facts (title, units, clip range, RGB
normalisation of the reference protocol, the paper's table, intrinsics) live in its own module
(``nyu``, ``rgbdd``, ``tofdsr``, ``middlebury_lu``, ``shared``, ``motorcycle``); this module
only maps names to them.

``open_dataset(name, split, path)`` reads the full dataset at ``path`` when one is given, and
otherwise the copy in the shared data folder where there is one. A shared copy of a benchmark's
test split is a small stand-in, not the split: its description starts with ``SHARED_SUBSET``.
Procedural scenes (``naima_ros.data.synthetic``) are generated, not read, so they are not here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from naima_ros.data import middlebury_lu, motorcycle, nyu, rgbdd, shared, tofdsr
from naima_ros.data.common import DatasetError, RGBDFrame

__all__ = ["DATASETS", "SHARED_SUBSET", "DatasetInfo", "dataset_names", "open_dataset"]

SHARED_SUBSET = "SHARED SUBSET"  # descriptions of the shared stand-ins for a test split start with this


@dataclass(frozen=True)
class DatasetInfo:
    """What the tools need to know about one dataset (the facts come from its module).

    Attributes:
        name: The one spelling of the dataset.
        title: Human-readable name (tables).
        splits: Splits it can be opened with.
        paper_table: The paper's table it is scored in (1: metric sets in cm, 2: Middlebury,
            3: Lu), or None for a dataset that is not a benchmark.
        reference_rgb: RGB normalisation of the reference protocol: "imagenet" or "unit" (/255).
        path_help: What ``path`` names for this dataset.
        shared: The dataset (or a stand-in for its test split) is in the shared data folder.
    """

    name: str
    title: str
    splits: tuple[str, ...]
    paper_table: int | None
    reference_rgb: str
    path_help: str
    shared: bool


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("nyu", nyu.TITLE, ("train", "test"), nyu.PAPER_TABLE, nyu.REFERENCE_RGB,
                "nyu_depth_v2_labeled.mat, or the folder of prepared *_split.npy arrays", True),
    DatasetInfo("rgbdd", rgbdd.TITLE, ("train", "test"), rgbdd.PAPER_TABLE, rgbdd.REFERENCE_RGB,
                "the RGBDD-Full folder", True),
    DatasetInfo("tofdsr", tofdsr.TITLE, ("train", "test"), tofdsr.PAPER_TABLE, tofdsr.REFERENCE_RGB,
                "the folder with TOFDSR_Train.txt / TOFDSR_Test.txt", False),
    DatasetInfo("middlebury", middlebury_lu.TITLES["middlebury"], ("test",), middlebury_lu.PAPER_TABLES["middlebury"],
                middlebury_lu.REFERENCE_RGB, "a folder of *output_color.png / *output_depth.png", True),
    DatasetInfo("lu", middlebury_lu.TITLES["lu"], ("test",), middlebury_lu.PAPER_TABLES["lu"],
                middlebury_lu.REFERENCE_RGB, "a folder of *output_color.png / *output_depth.png", True),
    DatasetInfo("rgbdd360", "RGB-D-D 360 (shared training frames)", ("train",), None, rgbdd.REFERENCE_RGB,
                "the shared data folder (default $NAIMA_SHARED_DATA or ../shared/data)", True),
    DatasetInfo("motorcycle", "Middlebury 2014 Motorcycle (scikit-image)", ("test",), None, "imagenet",
                "nothing (scikit-image ships it)", False),
)}


def dataset_names(split: str | None = None, *, benchmark: bool = False) -> tuple[str, ...]:
    """Names of the datasets with ``split`` (any if None); ``benchmark``: only those the paper scores."""
    return tuple(n for n, d in DATASETS.items()
                 if (split is None or split in d.splits) and (not benchmark or d.paper_table is not None))


def _nyu(split: str, path: str) -> Sequence[RGBDFrame]:
    if str(path).endswith(".mat"):
        return nyu.load_nyu_mat(path, split)
    return nyu.load_prepared_split(path, split)


def open_dataset(name: str, split: str = "test", path: str | os.PathLike | None = None,
                 shared_root: str | os.PathLike | None = None) -> tuple[Sequence[RGBDFrame], str]:
    """(frames, description) of one split of one dataset.

    Args:
        name: One of ``DATASETS``.
        split: "train" or "test" (see ``DatasetInfo.splits``).
        path: The full dataset (``DatasetInfo.path_help``); None: the shared copy, if any.
        shared_root: The shared data folder (default ``$NAIMA_SHARED_DATA`` or ../shared/data).

    Raises:
        ValueError: unknown name or split.
        DatasetError: the dataset is missing or malformed, or needs a path.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    info = DATASETS[name]
    if split not in info.splits:
        raise ValueError(f"dataset {name!r} has no {split!r} split (it has {', '.join(info.splits)})")
    if name == "motorcycle":
        return [motorcycle.load_motorcycle()], "Middlebury 2014 Motorcycle (scikit-image, 1 image)"
    if name == "rgbdd360":
        frames = shared.load_rgbdd_train360(path if path is not None else shared_root)
        return frames, f"{len(frames)} images: {frames.description}"
    if path is not None:
        frames = {"nyu": lambda: _nyu(split, path),
                  "rgbdd": lambda: rgbdd.load_rgbdd(path, split),
                  "tofdsr": lambda: tofdsr.load_tofdsr(path, split),
                  "middlebury": lambda: middlebury_lu.load_middlebury(path),
                  "lu": lambda: middlebury_lu.load_lu(path)}[name]()
        layout = "prepared " if name == "nyu" and not str(path).endswith(".mat") else ""
        return frames, f"{info.title} {layout}{split} split ({len(frames)} images, {path})"
    if split == "test" and name in ("middlebury", "lu"):
        frames = shared.load_test_set(info.title, shared_root)
        return frames, f"{len(frames)} images: {frames.description}"
    if split == "test" and name == "nyu":
        frames = shared.load_test_set("NYUDepthv2_Test", shared_root)
        return frames, (f"{SHARED_SUBSET}: NYU v2, only the {len(frames)} shared test pairs, NOT the 449-image "
                        f"test split (give the path of {info.path_help}) ({frames.description})")
    if split == "test" and name == "rgbdd":
        frames = shared.load_test_set("RGBDD_Test_Realscene", shared_root)
        return frames, (f"{SHARED_SUBSET}: RGB-D-D, only the {len(frames)} shared real-scene pairs, NOT the "
                        f"405-image test split (give the path of {info.path_help}); LR synthesised from the GT "
                        f"({frames.description})")
    raise DatasetError(f"dataset {name!r} ({split} split) needs its path: {info.path_help}")
