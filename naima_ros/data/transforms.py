"""Array transforms of the data pipeline: normalisation, modcrop, LR synthesis, training crops.

docs/model.md §3.2 (online training samples of the reference's ``ExtendedSRImplicitDownSampled``) and 3.3.
Parity quirks kept on purpose and commented where they occur: the crop offset drawn with
``random.randrange(0, dim - P)`` (the last offset is never drawn), torchvision's clamp of
standardised RGB to [0, 1] in brightness/contrast (only behind ``clamp_rgb``), and LR synthesised
from the normalised HR depth with antialiased bicubic and no clamping.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from naima_ros.frames import IMAGENET_MEAN, IMAGENET_STD, standardise_rgb
from naima_ros.resample import resize_bicubic_pil

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "standardise_rgb",
    "unstandardise_rgb",
    "modcrop",
    "LR_SYNTHESES",
    "synthesize_lr",
    "resize_bicubic_pil",
    "random_crop_offsets",
    "augment",
    "make_training_sample",
]

# torchvision's rgb_to_grayscale weights, used by adjust_contrast for the mean grey level.
_GREY_WEIGHTS = (0.2989, 0.587, 0.114)


def unstandardise_rgb(rgb_std: np.ndarray) -> np.ndarray:
    """(3, H, W) ImageNet-standardised float -> (H, W, 3) uint8 (for figures)."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    rgb = (np.asarray(rgb_std, dtype=np.float32) * std + mean) * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def modcrop(array: np.ndarray, scale: int) -> np.ndarray:
    """Crop the top-left (H - H % s) x (W - W % s) window of an (H, W, ...) array (docs/model.md §3.3)."""
    height, width = array.shape[:2]
    return array[: height - height % scale, : width - width % scale]


# How the LR depth is made from the normalised HR depth: "antialias" (the reference with a recent torchvision),
# "plain" (bicubic without antialiasing, an older torchvision: Table 1 reproduction) or "area" (each LR pixel the
# mean of its s x s footprint, as a ToF pixel integrates the light it receives; for robot models).
LR_SYNTHESES = ("antialias", "plain", "area")


def synthesize_lr(depth_norm, scale: int, *, method: str = "antialias"):
    """Low-resolution depth from normalised HR depth; by default exactly as the reference (docs/model.md §3.2, §6.14).

    ``antialias``: ``F.interpolate(mode="bicubic", antialias=True, align_corners=False)`` to (H // s, W // s), no
    clamping: what torchvision ``resize(..., BICUBIC)`` does on a float tensor (torchvision >= 0.17 antialiases
    tensors by default; older versions did not, and the reference's version is unknown, hence ``plain`` for Table 1
    reproduction). ``area``: the mean of each s x s footprint of the top-left (H // s * s, W // s * s) window.

    Args:
        depth_norm: (H, W), (C, H, W) or (B, C, H, W) numpy array or torch tensor, normalised depth.
        scale: Integer SR factor s.
        method: One of ``LR_SYNTHESES``.

    Returns:
        The same type and leading layout with spatial size (H // s, W // s), float32.
    """
    if method not in LR_SYNTHESES:
        raise ValueError(f"unknown LR synthesis {method!r}; expected one of {', '.join(LR_SYNTHESES)}")
    is_numpy = isinstance(depth_norm, np.ndarray)
    tensor = torch.as_tensor(np.asarray(depth_norm, dtype=np.float32)) if is_numpy else depth_norm.float()
    ndim = tensor.ndim
    if ndim < 2 or ndim > 4:
        raise ValueError(f"expected (H, W), (C, H, W) or (B, C, H, W) depth, got shape {tuple(tensor.shape)}")
    batched = tensor.reshape((-1, 1) + tuple(tensor.shape[-2:]))
    height, width = tensor.shape[-2:]
    if method == "area":
        lr = F.avg_pool2d(batched[..., : height // scale * scale, : width // scale * scale], scale)
    else:
        lr = F.interpolate(batched, size=(height // scale, width // scale), mode="bicubic",
                           antialias=method == "antialias", align_corners=False)
    lr = lr.reshape(tuple(tensor.shape[:-2]) + tuple(lr.shape[-2:]))
    return lr.numpy() if is_numpy else lr


def random_crop_offsets(height: int, width: int, patch_hw: tuple[int, int],
                        rng: np.random.Generator) -> tuple[int, int]:
    """Top-left offset of a training crop, as the reference draws it.

    Parity quirk: the reference uses ``random.randrange(0, dim - P)``, whose upper bound is
    exclusive, so offset ``dim - P`` (the crop touching the bottom/right border) is never drawn.
    Where ``dim == P`` the reference's randrange would raise; we return 0.

    Raises:
        ValueError: the patch is larger than the image.
    """
    ph, pw = patch_hw
    if ph > height or pw > width:
        raise ValueError(f"patch {ph}x{pw} does not fit in a {height}x{width} image")
    y = int(rng.integers(0, height - ph)) if height > ph else 0
    x = int(rng.integers(0, width - pw)) if width > pw else 0
    return y, x


def _adjust_brightness(rgb: torch.Tensor, factor: float, clamp: bool) -> torch.Tensor:
    out = rgb * factor
    return out.clamp(0.0, 1.0) if clamp else out


def _adjust_contrast(rgb: torch.Tensor, factor: float, clamp: bool) -> torch.Tensor:
    weights = torch.tensor(_GREY_WEIGHTS, dtype=rgb.dtype).view(3, 1, 1)
    mean = (rgb * weights).sum(0).mean()
    out = factor * rgb + (1.0 - factor) * mean
    return out.clamp(0.0, 1.0) if clamp else out


def augment(rgb: torch.Tensor, others: list[torch.Tensor], rng: np.random.Generator, *,
            clamp_rgb: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The reference's training augmentations, in order, each with p = 0.5 (docs/model.md §3.2).

    1. brightness x (1 + U(-0.1, 0.1)), RGB only; 2. contrast x (1 + U(-0.1, 0.1)) around the mean
    grey level, RGB only; 3. horizontal flip; 4. vertical flip; 5. transpose; 6. rot90 by +-90 deg
    (square patches only). Steps 3-6 apply identically to RGB and every array in ``others``.

    Args:
        rgb: (3, P, P) float tensor (standardised RGB).
        others: (C, P, P) tensors moved with the RGB (depth, mask, ...).
        rng: Source of every random draw.
        clamp_rgb: Reproduce the reference's quirk: torchvision clamps float images to [0, 1] in
            brightness and contrast, which clips ImageNet-standardised RGB (docs/model.md §6.10).

    Returns:
        (rgb, others) after augmentation.
    """
    if rng.random() < 0.5:
        rgb = _adjust_brightness(rgb, 1.0 + rng.uniform(-0.1, 0.1), clamp_rgb)
    if rng.random() < 0.5:
        rgb = _adjust_contrast(rgb, 1.0 + rng.uniform(-0.1, 0.1), clamp_rgb)
    arrays = [rgb] + list(others)
    if rng.random() < 0.5:
        arrays = [a.flip(-1) for a in arrays]
    if rng.random() < 0.5:
        arrays = [a.flip(-2) for a in arrays]
    if rng.random() < 0.5:
        arrays = [a.transpose(-1, -2) for a in arrays]
    if arrays[0].shape[-1] == arrays[0].shape[-2] and rng.random() < 0.5:
        k = 1 if rng.random() < 0.5 else -1
        arrays = [torch.rot90(a, k, dims=(-2, -1)) for a in arrays]
    arrays = [a.contiguous() for a in arrays]
    return arrays[0], arrays[1:]


def make_training_sample(rgb_std: np.ndarray, depth_norm: np.ndarray, valid: np.ndarray,
                         minmax: tuple[float, float], name: str, *, patch: int | tuple[int, int],
                         scale: int, rng: np.random.Generator, augmentation: bool = True,
                         clamp_rgb: bool = False, lr_synthesis: str = "antialias") -> dict:
    """One training sample as the reference builds it: crop, augment, synthesise LR (docs/model.md §3.2).

    Args:
        rgb_std: (3, H, W) float32 standardised RGB.
        depth_norm: (H, W) float32 depth normalised with the whole image's min/max.
        valid: (H, W) bool validity mask.
        minmax: (min, max) of the whole image, in the frame's depth unit.
        name: Frame name.
        patch: Patch side P (or (Ph, Pw)); each side a multiple of ``scale``.
        scale: SR factor s.
        rng: Source of the crop offset and every augmentation draw.
        augmentation: Apply the augmentations (off: crop only).
        clamp_rgb: The reference's [0, 1] clamp of standardised RGB (see :func:`augment`).
        lr_synthesis: How the LR is made (:func:`synthesize_lr`; the reference: ``antialias``).

    Returns:
        dict with ``rgb`` (3, P, P) float32 standardised, ``depth_hr`` (1, P, P) float32 normalised
        (the target; may not span [0, 1]), ``depth_lr`` (1, P/s, P/s) float32 normalised,
        ``valid`` (1, P, P) bool, ``minmax`` (2,) float32 [min, max] in the frame's unit,
        ``name`` str.
    """
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    if ph % scale or pw % scale:
        raise ValueError(f"patch {ph}x{pw} is not a multiple of scale {scale}")
    height, width = depth_norm.shape
    y, x = random_crop_offsets(height, width, (ph, pw), rng)
    rgb = torch.from_numpy(np.ascontiguousarray(rgb_std[:, y:y + ph, x:x + pw], dtype=np.float32))
    depth = torch.from_numpy(np.ascontiguousarray(depth_norm[y:y + ph, x:x + pw], dtype=np.float32))[None]
    mask = torch.from_numpy(np.ascontiguousarray(valid[y:y + ph, x:x + pw]))[None]
    if augmentation:
        rgb, (depth, mask) = augment(rgb, [depth, mask], rng, clamp_rgb=clamp_rgb)
    # LR from the normalised HR patch, so it is not re-normalised per patch (docs/model.md §3.2).
    depth_lr = synthesize_lr(depth, scale, method=lr_synthesis)
    return {
        "rgb": rgb,
        "depth_hr": depth,
        "depth_lr": depth_lr,
        "valid": mask,
        "minmax": torch.tensor(minmax, dtype=torch.float32),
        "name": name,
    }
