"""torch ``Dataset`` classes: training patches (real frames + procedural scenes) and full test images.

Training follows docs/model.md §3.2 (``ExtendedSRImplicitDownSampled``, train=True): random P x P crop
(randrange quirk), brightness/contrast on RGB, flips/transpose/rot90 on everything, LR synthesised
from the normalised patch. Test samples follow docs/model.md §3.3 / §4 for the corrected protocol: the
HR image modcropped to a multiple of s and the LR synthesised from it; the reference protocol's
square padding before LR synthesis belongs to inference (``naima_ros.inference``), which can
rebuild the LR from ``depth_hr``.

Randomness is a pure function of (seed, epoch, index), so any worker layout and a resumed run
draw exactly the same crops and augmentations; call ``set_epoch`` at the start of each epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from naima_ros.data.common import RGBDFrame
from naima_ros.data.synthetic import generate_scene
from naima_ros.data.transforms import make_training_sample, modcrop, standardise_rgb, synthesize_lr

__all__ = ["TrainDataset", "TestDataset", "make_test_sample"]


class TrainDataset(Dataset):
    """Training patches from real frames and procedural scenes.

    Sources are indexed ``[0, len(frames))`` for the real frames, then ``synthetic_count``
    procedural scenes (scene ``j`` is ``generate_scene(synthetic_seed + j)``, the same every
    epoch); the dataset repeats them ``repeat`` times (the reference's epoch = 1000 x 2).

    Args:
        frames: Real frames (e.g. ``shared.load_rgbdd_train360()``), or None / empty.
        scale: SR factor s.
        patch: Patch side P (multiple of s; must fit the frames and ``synthetic_size``).
        repeat: Times each source appears per epoch.
        synthetic_count: Number of procedural scenes.
        synthetic_size: (H, W) of the procedural scenes.
        synthetic_seed: Seed of scene 0.
        seed: Seed of crops and augmentations.
        augmentation: Apply the docs/model.md §3.2 augmentations.
        clamp_rgb: The reference's clamp of standardised RGB to [0, 1] (docs/model.md §6.10); off by default.
        cache_synthetic: Keep rendered scenes in memory (~0.8 MB each at 384x512).
        lr_synthesis: How the LR is made (``transforms.LR_SYNTHESES``; the reference: ``antialias``).

    Each item is the dict of :func:`naima_ros.data.transforms.make_training_sample`:
    ``rgb`` (3, P, P) standardised, ``depth_hr`` (1, P, P) and ``depth_lr`` (1, P/s, P/s)
    normalised, ``valid`` (1, P, P) bool, ``minmax`` (2,) [min, max] metres, ``name``.
    """

    def __init__(self, frames: Sequence[RGBDFrame] | None, *, scale: int, patch: int, repeat: int = 1,
                 synthetic_count: int = 0, synthetic_size: tuple[int, int] = (384, 512), synthetic_seed: int = 0,
                 seed: int = 0, augmentation: bool = True, clamp_rgb: bool = False, cache_synthetic: bool = False,
                 lr_synthesis: str = "antialias"):
        self.frames = frames if frames is not None else []
        self.scale, self.patch, self.repeat = scale, patch, repeat
        self.synthetic_count, self.synthetic_size, self.synthetic_seed = synthetic_count, synthetic_size, synthetic_seed
        self.seed, self.augmentation, self.clamp_rgb, self.lr_synthesis = seed, augmentation, clamp_rgb, lr_synthesis
        self.epoch = 0
        self._cache: dict[int, RGBDFrame] | None = {} if cache_synthetic else None
        if patch % scale:
            raise ValueError(f"patch {patch} is not a multiple of scale {scale}")
        if self.num_sources == 0:
            raise ValueError("TrainDataset needs real frames or synthetic_count > 0")
        if synthetic_count and min(synthetic_size) < patch:
            raise ValueError(f"patch {patch} does not fit synthetic scenes of {synthetic_size}")

    @property
    def num_sources(self) -> int:
        return len(self.frames) + self.synthetic_count

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops and augmentations ``__getitem__`` draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_sources * self.repeat

    def source(self, index: int) -> RGBDFrame:
        """The full frame behind dataset index ``index`` (real, or a rendered scene)."""
        j = index % self.num_sources
        if j < len(self.frames):
            return self.frames[j]
        j -= len(self.frames)
        if self._cache is not None and j in self._cache:
            return self._cache[j]
        scene = generate_scene(self.synthetic_seed + j, *self.synthetic_size)
        frame = scene.to_frame(f"synthetic_{self.synthetic_seed + j}")
        if self._cache is not None:
            self._cache[j] = frame
        return frame

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        frame = self.source(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return make_training_sample(standardise_rgb(frame.rgb), frame.depth_norm, frame.valid, frame.minmax,
                                    frame.name, patch=self.patch, scale=self.scale, rng=rng,
                                    augmentation=self.augmentation, clamp_rgb=self.clamp_rgb,
                                    lr_synthesis=self.lr_synthesis)


def make_test_sample(frame: RGBDFrame, scale: int, rgb_normalisation: str = "imagenet", *,
                     lr_synthesis: str = "antialias") -> dict:
    """A full-image test sample: modcrop to a multiple of s, normalise, synthesise the LR.

    The one test-sample preparation: training's validation uses it as is, and ``naima-eval``'s
    protocols (``naima_ros.eval.protocols.prepare_sample``) build on it.

    Args:
        frame: Any loader's frame.
        scale: SR factor s.
        rgb_normalisation: "imagenet" (training, NYU/RGB-D-D/TOFDSR, corrected Middlebury/Lu) or
            "unit" (/255 only: the reference's Middlebury/Lu).
        lr_synthesis: How the LR is made (``transforms.synthesize_lr``: antialias, plain or area).

    Returns:
        dict with ``rgb`` (3, H, W) float32, ``rgb_uint8`` (H, W, 3) uint8, ``depth_hr`` (1, H, W)
        normalised GT, ``depth_lr`` (1, H/s, W/s) normalised (by default antialiased bicubic of ``depth_hr``),
        ``valid`` (1, H, W) bool, ``minmax`` (2,) [min, max] in ``unit``, ``unit`` ("m" / "8bit"),
        ``rmse_scale`` (unit -> reported unit: 100 for cm, 1 for 8-bit), ``rmse_unit``, ``name``.
        Score with ``metrics.reference_rmse(pred_norm, depth_hr, minmax, rmse_scale)``.
    """
    rgb_uint8 = np.array(modcrop(frame.rgb, scale))  # copies: torch needs writable arrays
    depth_norm = np.ascontiguousarray(modcrop(frame.depth_norm, scale))
    valid = np.array(modcrop(frame.valid, scale))
    depth_hr = torch.from_numpy(depth_norm)[None]
    return {
        "rgb": torch.from_numpy(standardise_rgb(rgb_uint8, rgb_normalisation)),
        "rgb_uint8": torch.from_numpy(rgb_uint8),
        "depth_hr": depth_hr,
        "depth_lr": synthesize_lr(depth_hr, scale, method=lr_synthesis),
        "valid": torch.from_numpy(valid)[None],
        "minmax": torch.tensor(frame.minmax, dtype=torch.float32),
        "unit": frame.unit,
        "rmse_scale": float(frame.rmse_scale),
        "rmse_unit": frame.rmse_unit,
        "name": frame.name,
    }


class TestDataset(Dataset):
    """Full test images of one dataset (see :func:`make_test_sample`); use batch size 1 (sizes vary).

    Args:
        frames: A loader's FrameList (or any sequence of frames).
        scale: SR factor s.
        rgb_normalisation: "imagenet" or "unit" (see :func:`make_test_sample`).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, frames: Sequence[RGBDFrame], scale: int, rgb_normalisation: str = "imagenet"):
        self.frames, self.scale, self.rgb_normalisation = frames, scale, rgb_normalisation

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict:
        return make_test_sample(self.frames[index], self.scale, self.rgb_normalisation)
