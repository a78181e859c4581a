"""Qualitative figures as PNG (the paper's Figs. 4, 5, 8, 9): RGB | methods | GT, and error maps.

All depth panels share one colormap and one value range (from the GT), so colours compare across
methods; error maps share one range too. Uses matplotlib's object API with the Agg canvas, so it
never touches a display or the global pyplot backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["depth_range", "save_comparison_strip", "save_error_map"]


def depth_range(gt: np.ndarray, valid: np.ndarray | None = None, percentiles: tuple[float, float] = (1.0, 99.0)):
    """(vmin, vmax) for a shared colormap: GT percentiles over valid, finite pixels."""
    values = np.asarray(gt, dtype=np.float64)
    mask = np.isfinite(values) if valid is None else (np.asarray(valid, dtype=bool) & np.isfinite(values))
    if not mask.any():
        return 0.0, 1.0
    lo, hi = np.percentile(values[mask], percentiles)
    return float(lo), float(hi if hi > lo else lo + 1e-6)


def _new_figure(rows: int, cols: int, aspect: float, panel_inches: float = 3.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(cols * panel_inches, rows * panel_inches * aspect + 0.4 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return figure, axes


def _save(figure, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight", format="png")
    return path


def save_comparison_strip(path: str | os.PathLike, rgb_uint8: np.ndarray, predictions: Mapping[str, np.ndarray],
                          gt: np.ndarray, *, valid: np.ndarray | None = None, error_maps: bool = True,
                          cmap: str = "turbo", error_cmap: str = "inferno", error_max: float | None = None,
                          unit: str = "", title: str | None = None, dpi: int = 100) -> Path:
    """Save a strip RGB | prediction 1 | ... | GT, with a row of |error| maps under the predictions.

    Args:
        path: Output PNG path (parent folders are created).
        rgb_uint8: (H, W, 3) uint8 guide.
        predictions: Ordered {label: (H, W) depth}, e.g. {"Bicubic": ..., "GF": ..., "JBU": ...,
            "NAIMA": ...}, in the GT's unit.
        gt: (H, W) ground-truth depth.
        valid: Optional (H, W) bool mask; invalid pixels are left out of the range and the errors.
        error_maps: Add the error row.
        cmap: Shared depth colormap.
        error_cmap: Shared error colormap.
        error_max: Upper end of the error colour range (default: 99th percentile over all methods).
        unit: Unit label for the titles (e.g. "cm", "8bit").
        title: Figure title.
        dpi: Output resolution.

    Returns:
        The written path.
    """
    gt = np.asarray(gt, dtype=np.float64)
    mask = np.isfinite(gt) if valid is None else (np.asarray(valid, dtype=bool) & np.isfinite(gt))
    vmin, vmax = depth_range(gt, mask)
    labels = list(predictions)
    errors = {k: np.where(mask, np.abs(np.asarray(v, dtype=np.float64) - gt), np.nan) for k, v in predictions.items()}
    if error_max is None:
        pooled = np.concatenate([e[np.isfinite(e)] for e in errors.values()]) if errors else np.zeros(1)
        error_max = float(np.percentile(pooled, 99)) if pooled.size else 1.0
        error_max = error_max if error_max > 0 else 1.0
    rows = 2 if error_maps and labels else 1
    figure, axes = _new_figure(rows, len(labels) + 2, gt.shape[0] / gt.shape[1])
    axes[0, 0].imshow(rgb_uint8)
    axes[0, 0].set_title("RGB")
    for col, label in enumerate(labels, start=1):
        axes[0, col].imshow(np.asarray(predictions[label], dtype=np.float64), cmap=cmap, vmin=vmin, vmax=vmax)
        rmse = float(np.sqrt(np.nanmean(errors[label] ** 2)))
        axes[0, col].set_title(f"{label} ({rmse:.2f}{' ' + unit if unit else ''})")
        if rows == 2:
            axes[1, col].imshow(errors[label], cmap=error_cmap, vmin=0.0, vmax=error_max)
            axes[1, col].set_title(f"|error| {label}")
    image = axes[0, -1].imshow(np.where(mask, gt, np.nan), cmap=cmap, vmin=vmin, vmax=vmax)
    axes[0, -1].set_title("GT")
    figure.colorbar(image, ax=axes[0, -1], fraction=0.046, pad=0.04)
    if title:
        figure.suptitle(title)
    return _save(figure, path, dpi)


def save_error_map(path: str | os.PathLike, prediction: np.ndarray, gt: np.ndarray, *,
                   valid: np.ndarray | None = None, cmap: str = "inferno", error_max: float | None = None,
                   unit: str = "", title: str | None = None, dpi: int = 100) -> Path:
    """Save one |prediction - GT| map with a colour bar.

    Args:
        path: Output PNG path.
        prediction: (H, W) depth.
        gt: (H, W) ground truth, same unit.
        valid: Optional (H, W) bool mask (invalid pixels are blank).
        cmap: Colormap.
        error_max: Upper end of the colour range (default: 99th percentile).
        unit: Unit label for the colour bar.
        title: Title.
        dpi: Output resolution.

    Returns:
        The written path.
    """
    gt = np.asarray(gt, dtype=np.float64)
    error = np.abs(np.asarray(prediction, dtype=np.float64) - gt)
    if valid is not None:
        error = np.where(np.asarray(valid, dtype=bool), error, np.nan)
    finite = error[np.isfinite(error)]
    if error_max is None:
        error_max = float(np.percentile(finite, 99)) if finite.size else 1.0
        error_max = error_max if error_max > 0 else 1.0
    figure, axes = _new_figure(1, 1, gt.shape[0] / gt.shape[1], panel_inches=5.0)
    image = axes[0, 0].imshow(error, cmap=cmap, vmin=0.0, vmax=error_max)
    colorbar = figure.colorbar(image, ax=axes[0, 0], fraction=0.046, pad=0.04)
    if unit:
        colorbar.set_label(f"|error| ({unit})")
    if title:
        axes[0, 0].set_title(title)
    return _save(figure, path, dpi)
