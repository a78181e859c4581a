"""The one dataset registry: names, splits and loaders for training, ``naima-eval`` and ``naima-bag``.

Each dataset is spelled one way everywhere (``--dataset`` and ``val_set`` of training,
``--datasets`` of naima-eval, ``--source`` of naima-bag make). Its facts (title, units and their
size in metres, clip range, intrinsics, splits, RGB normalisation of the reference protocol, the
paper's table) live in its own module (``nyu``, ``rgbdd``, ``tofdsr``, ``middlebury_lu``,
``shared``, ``motorcycle``) and travel on its frames (``RGBDFrame``); this module maps names to
them, and says which data each use may take: ``training_sources``, ``validation_sources`` (and
``validation_frames``), ``bag_sources``, ``path_flags`` (naima-eval's options for a full dataset).

``open_dataset(name, split, path)`` reads the full dataset at ``path`` when one is given, and
otherwise the copy in the shared data folder where there is one. A shared copy of a benchmark's
test split is a small stand-in, not the split: its description starts with ``SHARED_SUBSET``.
Procedural scenes (``naima_ros.data.synthetic``) are generated, not read: ``PROCEDURAL`` names
them where a use accepts them (``synthetic``, their older name, is accepted as an alias).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from naima_ros.data import middlebury_lu, motorcycle, nyu, rgbdd, shared, tofdsr
from naima_ros.data.common import DatasetError, RGBDFrame

__all__ = ["ALIASES", "DATASETS", "PROCEDURAL", "SHARED_SUBSET", "DatasetInfo", "bag_sources", "canonical_name",
           "dataset_names", "open_dataset", "path_flags", "training_sources", "validation_frames",
           "validation_sources"]

SHARED_SUBSET = "SHARED SUBSET"  # descriptions of the shared stand-ins for a test split start with this
PROCEDURAL = "procedural"  # the generated scenes of naima_ros.data.synthetic, as a source of frames
ALIASES = {"synthetic": PROCEDURAL}  # older spellings still accepted (training configs of earlier runs)
PROCEDURAL_VALIDATION_SIZE = (240, 320)  # (H, W) of the held-out procedural validation scenes


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
        path_help: What ``path`` names for this dataset; None: it takes none (scikit-image ships it).
        shared: The dataset (or a stand-in for its test split) is in the shared data folder.
        validates: May be training's ``val_set``: a small test set in the shared folder, scored during
            training to watch it (never to select a model).
        path_flags: naima-eval's options for the full test split: (flag, what it names), the flag
            spelled ``--<flag>``; none: the shared copy only.
    """

    name: str
    title: str
    splits: tuple[str, ...]
    paper_table: int | None
    reference_rgb: str
    path_help: str | None
    shared: bool
    validates: bool = False
    path_flags: tuple[tuple[str, str], ...] = ()

    @property
    def needs_path(self) -> bool:
        """Only the full dataset can be read: nothing shared, nothing shipped."""
        return not self.shared and self.path_help is not None


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("nyu", nyu.TITLE, ("train", "test"), nyu.PAPER_TABLE, nyu.REFERENCE_RGB,
                "nyu_depth_v2_labeled.mat, or the folder of prepared *_split.npy arrays", True,
                path_flags=(("nyu-mat", "nyu_depth_v2_labeled.mat: the 449-image test split"),
                            ("nyu-npy", "folder of the prepared test_*_split.npy arrays (docs/model.md)"))),
    DatasetInfo("rgbdd", rgbdd.TITLE, ("train", "test"), rgbdd.PAPER_TABLE, rgbdd.REFERENCE_RGB,
                "the RGBDD-Full folder", True,
                path_flags=(("rgbdd-root", "the RGBDD-Full folder: its 405-image test split"),)),
    DatasetInfo("tofdsr", tofdsr.TITLE, ("train", "test"), tofdsr.PAPER_TABLE, tofdsr.REFERENCE_RGB,
                "the folder with TOFDSR_Train.txt / TOFDSR_Test.txt", False,
                path_flags=(("tofdsr-root", "the folder with TOFDSR_Test.txt"),)),
    DatasetInfo("middlebury", middlebury_lu.TITLES["middlebury"], ("test",), middlebury_lu.PAPER_TABLES["middlebury"],
                middlebury_lu.REFERENCE_RGB, "a folder of *output_color.png / *output_depth.png", True,
                validates=True),
    DatasetInfo("lu", middlebury_lu.TITLES["lu"], ("test",), middlebury_lu.PAPER_TABLES["lu"],
                middlebury_lu.REFERENCE_RGB, "a folder of *output_color.png / *output_depth.png", True,
                validates=True),
    DatasetInfo("rgbdd360", "RGB-D-D 360 (shared training frames)", ("train",), None, rgbdd.REFERENCE_RGB,
                "the shared data folder (default $NAIMA_SHARED_DATA or ../shared/data)", True),
    DatasetInfo("motorcycle", "Middlebury 2014 Motorcycle (scikit-image)", ("test",), None, "imagenet",
                None, False, validates=True),
)}


def dataset_names(split: str | None = None, *, benchmark: bool = False) -> tuple[str, ...]:
    """Names of the datasets with ``split`` (any if None); ``benchmark``: only those the paper scores."""
    return tuple(n for n, d in DATASETS.items()
                 if (split is None or split in d.splits) and (not benchmark or d.paper_table is not None))


def canonical_name(name: str) -> str:
    """The one spelling of a dataset or source name (an alias in ``ALIASES`` becomes its name)."""
    return ALIASES.get(name, name)


def training_sources() -> tuple[str, ...]:
    """What training's ``dataset`` may be: a dataset with a train split, or procedural scenes only."""
    return dataset_names("train") + (PROCEDURAL,)


def validation_sources() -> tuple[str, ...]:
    """What training's ``val_set`` may be: held-out procedural scenes or a small shared test set."""
    return (PROCEDURAL,) + tuple(n for n, d in DATASETS.items() if d.validates)


def bag_sources() -> tuple[str, ...]:
    """What ``naima-bag make --source`` may name: procedural sequences or any dataset."""
    return (PROCEDURAL,) + tuple(DATASETS)


def path_flags(name: str) -> tuple[str, ...]:
    """naima-eval's options (argparse dests) that give the full dataset ``name``."""
    return tuple(flag.replace("-", "_") for flag, _ in DATASETS[name].path_flags)


def validation_frames(name: str, count: int, shared_root: str | os.PathLike | None = None) -> list[RGBDFrame]:
    """The first ``count`` frames of a validation set (one of ``validation_sources``).

    Procedural validation scenes come from their own seed range (``synthetic.VALIDATION_SEED0``), so a
    model is never validated on a scene it trained on.
    """
    name = canonical_name(name)
    if name not in validation_sources():
        raise ValueError(f"unknown validation set {name!r}; expected one of {', '.join(validation_sources())}")
    if name == PROCEDURAL:
        from naima_ros.data.synthetic import VALIDATION_SEED0, generate_scene

        return [generate_scene(VALIDATION_SEED0 + i, *PROCEDURAL_VALIDATION_SIZE).to_frame(f"val_{i}")
                for i in range(count)]
    frames, _ = open_dataset(name, "test", shared_root=shared_root)
    return [frames[i] for i in range(min(count, len(frames)))]


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
