"""Depth super-resolution metrics: pure functions with explicit masks, border shave and reduction.

docs/model.md §4 (reference protocol, ``Utilities/Evaluation.py``): per image, shave 6 px on every side,
de-normalise prediction and GT with the image's [min, max] (``x * (max - min) + min``), convert to
the reported unit (x100 m -> cm for NYU / RGB-D-D / TOFDSR; Middlebury / Lu are 8-bit with
[min, max] = [0, 255], i.e. x255 of the /255-normalised depth), RMSE over all remaining pixels
without a validity mask, then the mean of the per-image RMSEs. The sanity anchors of
``shared/data/README.md`` use the same per-image mean with no shave.
Protocol constants (units, range) live with the datasets (``RGBDFrame.minmax / rmse_scale``);
this module only computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "REFERENCE_SHAVE_PX",
    "shave_border",
    "denormalise",
    "squared_error_sum",
    "rmse",
    "mae",
    "rmse_over_images",
    "mean_over_images",
    "reference_rmse",
]

REFERENCE_SHAVE_PX = 6


def _as_float64(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def shave_border(x: np.ndarray, pixels: int) -> np.ndarray:
    """Drop ``pixels`` rows/columns on every side of the last two axes (0 = unchanged).

    Raises:
        ValueError: nothing would remain.
    """
    if pixels == 0:
        return x
    if pixels < 0 or 2 * pixels >= min(x.shape[-2:]):
        raise ValueError(f"cannot shave {pixels} px from an image of size {x.shape[-2:]}")
    return x[..., pixels:-pixels, pixels:-pixels]


def denormalise(x_norm, minmax: Sequence[float]) -> np.ndarray:
    """Undo min-max normalisation: ``x * (max - min) + min`` (float64, unit of ``minmax``)."""
    lo, hi = float(minmax[0]), float(minmax[1])
    return _as_float64(x_norm) * (hi - lo) + lo


def _prepare(pred, target, valid, shave: int) -> tuple[np.ndarray, np.ndarray | None]:
    pred, target = _as_float64(pred), _as_float64(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    diff = shave_border(pred - target, shave)
    mask = None
    if valid is not None:
        valid = np.asarray(valid.detach().cpu().numpy() if hasattr(valid, "detach") else valid, dtype=bool)
        if valid.shape != pred.shape:
            raise ValueError(f"mask {valid.shape} and prediction {pred.shape} differ in shape")
        mask = shave_border(valid, shave)
    return diff, mask


def squared_error_sum(pred, target, valid=None, *, shave: int = 0) -> tuple[float, int]:
    """(sum of squared errors, number of pixels) over valid, un-shaved pixels of one image."""
    diff, mask = _prepare(pred, target, valid, shave)
    if mask is not None:
        diff = diff[mask]
    return float(np.sum(diff * diff)), int(diff.size)


def rmse(pred, target, valid=None, *, shave: int = 0) -> float:
    """Root-mean-square error of one image, pooled over its pixels.

    Args:
        pred: (H, W) (or any shape) prediction, numpy or torch, in the unit to report.
        target: Same shape as ``pred``.
        valid: Optional bool mask of the same shape; only True pixels count.
        shave: Border pixels dropped on every side of the last two axes before scoring.

    Returns:
        RMSE in the unit of the inputs; NaN if no pixel counts (e.g. an all-invalid mask).
    """
    total, count = squared_error_sum(pred, target, valid, shave=shave)
    return float(np.sqrt(total / count)) if count else float("nan")


def mae(pred, target, valid=None, *, shave: int = 0) -> float:
    """Mean absolute error of one image (same conventions as :func:`rmse`)."""
    diff, mask = _prepare(pred, target, valid, shave)
    if mask is not None:
        diff = diff[mask]
    return float(np.mean(np.abs(diff))) if diff.size else float("nan")


def mean_over_images(values: Sequence[float]) -> float:
    """The papers' reduction of per-image scores: their mean, skipping images that scored NaN
    (no valid pixel). NaN if none counts."""
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def rmse_over_images(preds: Sequence, targets: Sequence, valids: Sequence | None = None, *, shave: int = 0,
                     reduction: str = "per_image_mean") -> float:
    """RMSE over a set of images of possibly different sizes.

    Args:
        preds: Per-image predictions, in the unit to report.
        targets: Per-image targets, same shapes.
        valids: Optional per-image bool masks.
        shave: Border pixels dropped per image.
        reduction: "per_image_mean" (the papers' and the reference's: mean of per-image RMSEs;
            images with no valid pixel are skipped) or "pooled" (one RMSE over all pixels).

    Returns:
        The reduced RMSE; NaN if nothing counts.
    """
    if len(preds) != len(targets) or (valids is not None and len(valids) != len(preds)):
        raise ValueError("preds, targets and valids must have the same number of images")
    masks = valids if valids is not None else [None] * len(preds)
    sums = [squared_error_sum(p, t, v, shave=shave) for p, t, v in zip(preds, targets, masks)]
    if reduction == "per_image_mean":
        return mean_over_images([np.sqrt(s / n) for s, n in sums if n])
    if reduction == "pooled":
        count = sum(n for _, n in sums)
        return float(np.sqrt(sum(s for s, _ in sums) / count)) if count else float("nan")
    raise ValueError(f"unknown reduction {reduction!r}; expected 'per_image_mean' or 'pooled'")


def reference_rmse(pred_norm, target_norm, minmax: Sequence[float], rmse_scale: float, *,
                   shave: int = REFERENCE_SHAVE_PX, valid=None) -> float:
    """RMSE of one image under the reference protocol (docs/model.md §4), in the reported unit.

    De-normalise prediction and GT with the image's [min, max], multiply by ``rmse_scale``,
    shave, pool over the image. Pass the frame's own values: NYU / RGB-D-D / TOFDSR have
    ``minmax`` in metres and ``rmse_scale=100`` (cm); Middlebury / Lu have ``minmax=(0, 255)`` and
    ``rmse_scale=1`` (8-bit units, i.e. x255 of the /255 depth). ``shave=0`` gives the protocol
    of the README anchors. The reference uses no mask and does not clamp the prediction.

    Args:
        pred_norm: (H, W) normalised prediction (numpy or torch).
        target_norm: (H, W) normalised ground truth.
        minmax: (min, max) of the image in the depth's unit.
        rmse_scale: Factor from the depth's unit to the reported unit.
        shave: Border shave in pixels (reference: 6).
        valid: Optional mask (the corrected protocol; the reference passes None).
    """
    pred = denormalise(pred_norm, minmax) * rmse_scale
    target = denormalise(target_norm, minmax) * rmse_scale
    return rmse(pred, target, valid, shave=shave)
