"""Classical guided depth upsampling baselines behind one call signature.

Every baseline is ``baseline(rgb_uint8, depth_lr, scale) -> depth_hr``:
    rgb_uint8: (H, W, 3) uint8 guide, with H = h * scale and W = w * scale (modcropped);
    depth_lr: (h, w) float depth in any unit (every baseline here is unit-free: linear in depth);
    returns (H, W) float32 depth in the unit of ``depth_lr``.
Everything here is numpy (no torch), so a predictor built on a baseline runs without torch.
Keyword parameters have per-scale defaults (``GUIDED_FILTER_DEFAULTS``, ``JBU_DEFAULTS``), chosen by a
grid search on 12-24 of the 360 RGB-D-D training frames (never on the test sets), RMSE at x4/x8/x16:
guided filter r in {1, 2, s/4, s/2, s, 2s}, eps in {1e-6 .. 1e-1}; JBU r in {1, 2, 3}, sigma_s in
{0.5, 1, 2} LR px, sigma_r in {0.03 .. 0.2} (best: r=1, sigma_s=0.5, sigma_r=0.1 at x4 and x8).
On those RGB-D-D frames (smooth depth, textured colour) JBU never beats bicubic and the guided
filter only does at x8/x16; on Middlebury both do at x8.

- Bicubic: torch's ``F.interpolate(bicubic, align_corners=False)`` kernel in numpy
  (``naima_ros.resample``), or PIL bicubic in float mode, the literature's "Bicubic" row protocol.
- Guided filter: K. He, J. Sun, X. Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013, colour
  guide version (3x3 covariance per window), applied to the bicubic-upsampled depth.
- Joint bilateral upsampling: J. Kopf, M. Cohen, D. Lischinski, M. Uyttendaele, SIGGRAPH 2007:
  each HR pixel is a weighted mean of LR depth samples in a (2r+1)^2 LR window; spatial Gaussian on
  the LR-grid distance, range Gaussian on the colour difference between the HR pixel and the guide
  at the LR sample (the guide's s x s block mean).
"""

from __future__ import annotations

import numpy as np

from naima_ros.resample import resize_bicubic_pil, upsample_bicubic

__all__ = [
    "GUIDED_FILTER_DEFAULTS",
    "JBU_DEFAULTS",
    "BASELINES",
    "box_mean",
    "bicubic",
    "bicubic_pil",
    "guided_filter_rgb",
    "guided_filter",
    "joint_bilateral_upsampling",
]

# scale -> (radius in HR px, eps on a [0, 1] guide's variance)
GUIDED_FILTER_DEFAULTS = {4: (1, 1e-4), 8: (2, 1e-4), 16: (8, 1e-4)}
# scale -> (radius in LR px, spatial sigma in LR px, range sigma on a [0, 1] guide)
JBU_DEFAULTS = {4: (1, 0.5, 0.1), 8: (1, 0.5, 0.1), 16: (1, 0.5, 0.1)}


def _check(rgb_uint8: np.ndarray, depth_lr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.asarray(rgb_uint8)
    depth = np.asarray(depth_lr, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB guide, got shape {rgb.shape}")
    if depth.ndim != 2:
        raise ValueError(f"expected an (h, w) LR depth, got shape {depth.shape}")
    if rgb.shape[:2] != (depth.shape[0] * scale, depth.shape[1] * scale):
        raise ValueError(f"RGB {rgb.shape[:2]} is not LR depth {depth.shape} x {scale}; modcrop the HR first")
    if not np.isfinite(depth).all():
        raise ValueError("LR depth has non-finite values; fill holes before a baseline")
    return rgb, depth


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window clipped to the image, on the first two axes (cumulative sums).

    Args:
        x: (H, W) or (H, W, C) array.
        radius: Window radius r in pixels.

    Returns:
        float64 array of x's shape: each value is the mean of the in-image pixels of its window.
    """
    x = np.asarray(x, dtype=np.float64)
    height, width = x.shape[:2]

    def window_sum(a: np.ndarray, axis: int, n: int) -> np.ndarray:
        c = np.cumsum(a, axis=axis)
        pad = [(0, 0)] * a.ndim
        pad[axis] = (1, 0)
        c = np.pad(c, pad)
        idx = np.arange(n)
        hi = np.minimum(idx + radius + 1, n)
        lo = np.maximum(idx - radius, 0)
        return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)

    sums = window_sum(window_sum(x, 0, height), 1, width)
    rows = np.minimum(np.arange(height) + radius + 1, height) - np.maximum(np.arange(height) - radius, 0)
    cols = np.minimum(np.arange(width) + radius + 1, width) - np.maximum(np.arange(width) - radius, 0)
    counts = np.outer(rows, cols).astype(np.float64)
    return sums / (counts if x.ndim == 2 else counts[:, :, None])


def bicubic(rgb_uint8: np.ndarray, depth_lr: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic upsampling as torch's (align_corners=False, A = -0.75); the RGB only sets the size."""
    rgb, depth = _check(rgb_uint8, depth_lr, scale)
    return upsample_bicubic(depth, rgb.shape[:2])


def bicubic_pil(rgb_uint8: np.ndarray, depth_lr: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic upsampling with PIL in float mode (the literature's "Bicubic" protocol)."""
    rgb, depth = _check(rgb_uint8, depth_lr, scale)
    return resize_bicubic_pil(depth, rgb.shape[:2])


def guided_filter_rgb(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a colour guide (TPAMI 2013, eq. 19-21).

    Per window w_k: a_k = (Sigma_k + eps U)^-1 cov_k(I, p), b_k = mean_k(p) - a_k . mean_k(I);
    output q_i = mean over windows containing i of (a_k . I_i + b_k). Windows are clipped at the
    border (box means over the in-image pixels).

    Args:
        guide: (H, W, 3) float guide, typically RGB in [0, 1].
        src: (H, W) float image to filter.
        radius: Window radius r (window (2r+1)^2).
        eps: Regularisation, in the guide's squared units.

    Returns:
        (H, W) float64 filtered image.
    """
    guide = np.asarray(guide, dtype=np.float64)
    src = np.asarray(src, dtype=np.float64)
    mean_i = box_mean(guide, radius)  # (H, W, 3)
    mean_p = box_mean(src, radius)
    cov_ip = box_mean(guide * src[:, :, None], radius) - mean_i * mean_p[:, :, None]
    outer = guide[:, :, :, None] * guide[:, :, None, :]  # (H, W, 3, 3)
    height, width = src.shape
    sigma = box_mean(outer.reshape(height, width, 9), radius).reshape(height, width, 3, 3)
    sigma -= mean_i[:, :, :, None] * mean_i[:, :, None, :]
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]  # (H, W, 3)
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    return np.einsum("hwc,hwc->hw", box_mean(a, radius), guide) + box_mean(b, radius)


def guided_filter(rgb_uint8: np.ndarray, depth_lr: np.ndarray, scale: int, *, radius: int | None = None,
                  eps: float | None = None) -> np.ndarray:
    """Guided-filter upsampling: bicubic to HR, then the colour guided filter with the RGB guide.

    Args:
        rgb_uint8: (H, W, 3) uint8 guide.
        depth_lr: (h, w) float depth.
        scale: SR factor (H = h * scale).
        radius: Window radius in HR pixels (default ``GUIDED_FILTER_DEFAULTS[scale]``).
        eps: Regularisation on the [0, 1] guide's variance (default per scale).

    Returns:
        (H, W) float32 depth in the unit of ``depth_lr``.
    """
    rgb, depth = _check(rgb_uint8, depth_lr, scale)
    default_radius, default_eps = GUIDED_FILTER_DEFAULTS.get(scale, (scale, 1e-3))
    radius = default_radius if radius is None else radius
    eps = default_eps if eps is None else eps
    # Filter in min-max normalised units so eps means the same for any depth unit.
    lo, hi = float(depth.min()), float(depth.max())
    span = hi - lo if hi > lo else 1.0
    up = upsample_bicubic(((depth - lo) / span).astype(np.float32), rgb.shape[:2])
    out = guided_filter_rgb(rgb.astype(np.float64) / 255.0, up, radius, eps)
    return (out * span + lo).astype(np.float32)


def joint_bilateral_upsampling(rgb_uint8: np.ndarray, depth_lr: np.ndarray, scale: int, *,
                               radius: int | None = None, sigma_spatial: float | None = None,
                               sigma_range: float | None = None) -> np.ndarray:
    """Joint bilateral upsampling (Kopf et al. 2007), vectorised over pixels, looped over the window.

    For HR pixel p at LR-grid position p' = ((y + 0.5) / s - 0.5, (x + 0.5) / s - 0.5) and LR
    samples q within ``radius`` of round(p'): weight = exp(-|p' - q|^2 / (2 sigma_spatial^2)) *
    exp(-|I_p - I~_q|^2 / (2 sigma_range^2)), where I is the RGB in [0, 1] and I~ its s x s block
    mean on the LR grid. Samples outside the LR image get weight 0.

    Args:
        rgb_uint8: (H, W, 3) uint8 guide.
        depth_lr: (h, w) float depth.
        scale: SR factor.
        radius: LR window radius (default ``JBU_DEFAULTS[scale]``).
        sigma_spatial: Spatial sigma in LR pixels.
        sigma_range: Range sigma on the [0, 1] colour (Euclidean over the 3 channels).

    Returns:
        (H, W) float32 depth in the unit of ``depth_lr``.
    """
    rgb, depth = _check(rgb_uint8, depth_lr, scale)
    d_radius, d_spatial, d_range = JBU_DEFAULTS.get(scale, (1, 0.5, 0.1))
    radius = d_radius if radius is None else radius
    sigma_spatial = d_spatial if sigma_spatial is None else sigma_spatial
    sigma_range = d_range if sigma_range is None else sigma_range
    h, w = depth.shape
    guide = rgb.astype(np.float64) / 255.0  # (H, W, 3)
    guide_lr = guide.reshape(h, scale, w, scale, 3).mean(axis=(1, 3))  # (h, w, 3)
    pos_y = (np.arange(h * scale) + 0.5) / scale - 0.5  # LR-grid coordinates of HR rows
    pos_x = (np.arange(w * scale) + 0.5) / scale - 0.5
    base_y, base_x = np.rint(pos_y).astype(int), np.rint(pos_x).astype(int)
    numerator = np.zeros(rgb.shape[:2])
    denominator = np.zeros(rgb.shape[:2])
    for dy in range(-radius, radius + 1):
        qy = base_y + dy
        inside_y = (qy >= 0) & (qy < h)
        qy_c = np.clip(qy, 0, h - 1)
        wy = np.exp(-((pos_y - qy) ** 2) / (2 * sigma_spatial**2)) * inside_y
        for dx in range(-radius, radius + 1):
            qx = base_x + dx
            inside_x = (qx >= 0) & (qx < w)
            qx_c = np.clip(qx, 0, w - 1)
            wx = np.exp(-((pos_x - qx) ** 2) / (2 * sigma_spatial**2)) * inside_x
            colour = guide_lr[qy_c[:, None], qx_c[None, :]]  # (H, W, 3)
            diff2 = np.sum((guide - colour) ** 2, axis=-1)
            weight = wy[:, None] * wx[None, :] * np.exp(-diff2 / (2 * sigma_range**2))
            numerator += weight * depth[qy_c[:, None], qx_c[None, :]]
            denominator += weight
    # Where every range weight underflows (tiny sigma_range), fall back to the nearest LR sample.
    nearest = depth[np.clip(base_y, 0, h - 1)[:, None], np.clip(base_x, 0, w - 1)[None, :]]
    safe = denominator > 1e-200
    out = np.where(safe, numerator / np.where(safe, denominator, 1.0), nearest)
    return out.astype(np.float32)


# The one spelling of each method: naima_ros.options.BASELINE_METHODS.
BASELINES = {
    "bicubic": bicubic,
    "guided_filter": guided_filter,
    "jbu": joint_bilateral_upsampling,
}
