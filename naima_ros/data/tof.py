"""A time-of-flight camera model: the LR depth a ToF sensor sends for a scene's true depth.

The sensor protocol of ``naima-eval`` and the sensor-aware training both make their inputs here, so
a network is trained on the degradations it is scored on. One call, :func:`simulate_tof`, takes a
true HR depth in metres (with its validity), the RGB seen by the colour camera and an LR size
(an integer fraction of the HR), draws one sensor from ``TOF_RANGES`` and applies, in this order:

1. ``misregistration``: the depth camera is off by up to ±1 LR pixel against the RGB (a calibration
   or synchronisation error): the true depth is shifted by a whole number of HR pixels before
   sampling, and the RGB and the ground truth stay where they are.
2. ``footprint``: each LR pixel is the mean of the true depth over its footprint (valid pixels
   only; a footprint less than half valid is a hole). Without ``flying``, the plain area mean.
3. ``flying``: a ToF pixel sums the returns of its footprint as phasors, so where the footprint
   straddles a depth discontinuity (a jump above 5 % of the depth between neighbouring HR pixels)
   the reading is amplitude-weighted (albedo / z², the near and bright surface wins), and with
   probability ``flying_prob`` a random blend of the footprint's nearest and farthest depth (a
   flying pixel); with probability ``edge_drop_prob`` such a pixel is dropped instead (the
   sensor's own mixed-pixel filter).
4. ``multipath``: light bouncing between surfaces lengthens paths in concave corners: a positive
   bias of up to ``multipath`` × z where the smoothed depth is concave (zero on planes and convex
   shapes, and at discontinuities).
5. ``noise``: Gaussian, sigma = noise_rel · z + noise_quad · z² (shot noise grows with distance).
6. ``dark_dropout``: too little light comes back from dark, distant surfaces: where the grey
   level of the footprint / z² (z in m) is below ``dark_signal``, the pixel is lost with
   probability ``dark_drop_prob``.
7. ``random_dropout``: isolated lost pixels (``random_drop``) and blobs (``blob_drop``:
   specular, absorbing or out-of-range patches).
8. ``quantisation``: 1 mm steps, as a 16UC1 driver sends them.

Each parameter is drawn uniformly from its documented range in ``TOF_RANGES`` for every frame, so
one evaluation covers a family of sensors rather than one. ``CONDITIONS`` names the component sets
the sensor protocol reports (the clean footprint mean, + noise, + faults, the whole sensor without its
misregistration, and the whole sensor).
Everything here is numpy + scipy; draws come from the generator passed in (seeded runs repeat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["COMPONENTS", "CONDITIONS", "TOF_RANGES", "ToFDraw", "draw_sensor", "simulate_tof"]

COMPONENTS = ("misregistration", "footprint", "flying", "multipath", "noise", "dark_dropout", "random_dropout",
              "quantisation")

# Parameter ranges, drawn uniformly per frame (what they mean: the module docstring).
TOF_RANGES: dict[str, tuple[float, float]] = {
    "shift_y_lr_px": (-1.0, 1.0),  # misregistration, in LR pixels
    "shift_x_lr_px": (-1.0, 1.0),
    "noise_rel": (0.005, 0.03),  # noise sigma per metre of depth (0.5-3 %)
    "noise_quad": (0.0, 0.004),  # noise sigma per square metre of depth (1/m)
    "flying_prob": (0.2, 0.8),  # share of mixed pixels that read a random blend of their depths
    "edge_drop_prob": (0.2, 0.7),  # share of mixed pixels the sensor drops
    "dark_signal": (0.004, 0.02),  # grey / z² under which the return is too weak
    "dark_drop_prob": (0.5, 1.0),  # share of those weak pixels lost
    "random_drop": (0.0, 0.02),  # share of isolated lost pixels
    "blob_drop": (0.0, 0.03),  # share of pixels lost in blobs
    "multipath": (0.0, 0.03),  # relative bias at the most concave corners
}
QUANTUM_M = 0.001
DISCONTINUITY_REL = 0.05  # an HR neighbour jump above this share of the depth is a discontinuity
MIN_FOOTPRINT_COVERAGE = 0.5  # a footprint with less valid ground truth is a hole
CONCAVITY_REF = 0.02  # relative concavity (per LR px²) that receives the full multipath bias

CONDITIONS: dict[str, tuple[str, ...]] = {
    "footprint": ("footprint",),
    "noise": ("footprint", "noise", "quantisation"),
    "faults": ("footprint", "flying", "dark_dropout", "random_dropout"),
    # the whole sensor registered to the RGB, as a driver's aligned depth or a well-calibrated rig sends it
    "aligned": tuple(c for c in COMPONENTS if c != "misregistration"),
    "tof": COMPONENTS,
}


@dataclass(frozen=True)
class ToFDraw:
    """One sensor drawn from ``TOF_RANGES`` (a value per key) and the components applied."""

    values: dict
    components: tuple[str, ...]

    def __getitem__(self, key: str) -> float:
        return self.values[key]


def draw_sensor(rng: np.random.Generator, components=COMPONENTS,
                ranges: dict[str, tuple[float, float]] = TOF_RANGES) -> ToFDraw:
    """Draw every parameter of ``ranges`` (all of them, whatever the components: seeded draws stay
    aligned across conditions), for the ``components`` named."""
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown ToF component(s) {unknown}; expected some of {', '.join(COMPONENTS)}")
    values = {key: float(rng.uniform(lo, hi)) for key, (lo, hi) in ranges.items()}
    return ToFDraw(values, tuple(c for c in COMPONENTS if c in components))


def _grey(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114])


def _shift(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``array`` moved by (dy, dx) pixels, the border replicated."""
    h, w = array.shape
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return array[rows[:, None], cols[None]]


def _blocks(array: np.ndarray, r: int) -> np.ndarray:
    """(H, W) -> (h, w, r·r): the footprint of each LR pixel."""
    h, w = array.shape[0] // r, array.shape[1] // r
    return array[: h * r, : w * r].reshape(h, r, w, r).transpose(0, 2, 1, 3).reshape(h, w, r * r)


def _concavity(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Relative concavity -∇²(smoothed z) / z, >= 0, at LR (0 where undefined)."""
    from scipy import ndimage

    from naima_ros.frames import fill_invalid_nearest

    pad = 8  # odd reflection continues a plane linearly, so borders add no curvature
    filled = np.pad(fill_invalid_nearest(depth, valid).astype(np.float64), pad, mode="reflect", reflect_type="odd")
    smooth = ndimage.gaussian_filter(filled, 1.5)
    laplacian = ndimage.laplace(smooth)[pad:-pad, pad:-pad]
    return np.clip(-laplacian / np.maximum(smooth[pad:-pad, pad:-pad], 1e-3), 0.0, None)


def simulate_tof(depth_m: np.ndarray, valid: np.ndarray, rgb: np.ndarray, lr_hw: tuple[int, int],
                 rng: np.random.Generator, components=COMPONENTS, *, sensor: ToFDraw | None = None
                 ) -> tuple[np.ndarray, ToFDraw]:
    """The LR depth a ToF camera drawn from ``TOF_RANGES`` sends for a scene (module docstring).

    Args:
        depth_m: (H, W) true depth in metres.
        valid: (H, W) bool, where the true depth is known.
        rgb: (H, W, 3) uint8 colour image of the scene (dark surfaces return less light).
        lr_hw: (h, w) of the sensor; H and W must be the same integer multiple r of h and w.
        rng: Source of every draw.
        components: Which degradations to apply (``COMPONENTS``; ``CONDITIONS`` has named sets);
            ``footprint`` is always applied (it is how a pixel measures).
        sensor: A sensor drawn before (``draw_sensor``); None draws one from ``rng``.

    Returns:
        ((h, w) float32 metres, NaN where the sensor returns nothing; the sensor drawn).
    """
    depth_m, valid = np.asarray(depth_m, dtype=np.float64), np.asarray(valid, dtype=bool)
    (hh, ww), (h, w) = depth_m.shape, (int(lr_hw[0]), int(lr_hw[1]))
    if hh % h or ww % w or hh // h != ww // w:
        raise ValueError(f"simulate_tof needs an integer ratio: depth {hh}x{ww} is not a multiple of {h}x{w}")
    if rgb.shape[:2] != (hh, ww):
        raise ValueError(f"rgb {rgb.shape[:2]} and depth {depth_m.shape} differ in size")
    r = hh // h
    sensor = sensor or draw_sensor(rng, components)
    on = set(sensor.components)
    grey = _grey(rgb)
    if "misregistration" in on:
        dy, dx = int(round(sensor["shift_y_lr_px"] * r)), int(round(sensor["shift_x_lr_px"] * r))
        depth_m, valid, grey = (_shift(a, dy, dx) for a in (depth_m, valid, grey))

    blocks_z, blocks_v, blocks_g = _blocks(depth_m, r), _blocks(valid, r), _blocks(grey, r)
    count = blocks_v.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        area_mean = np.where(blocks_v, blocks_z, 0.0).sum(axis=-1) / np.maximum(count, 1)
        grey_lr = blocks_g.mean(axis=-1)
    lr_valid = count >= MIN_FOOTPRINT_COVERAGE * r * r
    out = area_mean

    if "flying" in on:
        jump = np.zeros_like(depth_m, dtype=bool)  # HR discontinuities between valid neighbours
        for axis in (0, 1):
            a, b = (depth_m[1:], depth_m[:-1]) if axis == 0 else (depth_m[:, 1:], depth_m[:, :-1])
            va, vb = (valid[1:], valid[:-1]) if axis == 0 else (valid[:, 1:], valid[:, :-1])
            big = va & vb & (np.abs(a - b) > DISCONTINUITY_REL * np.minimum(a, b))
            if axis == 0:
                jump[1:] |= big
                jump[:-1] |= big
            else:
                jump[:, 1:] |= big
                jump[:, :-1] |= big
        mixed = _blocks(jump, r).any(axis=-1) & lr_valid
        with np.errstate(invalid="ignore", divide="ignore"):
            amplitude = np.where(blocks_v, np.maximum(blocks_g, 0.02) / np.maximum(blocks_z, 1e-3) ** 2, 0.0)
            weighted = (amplitude * np.where(blocks_v, blocks_z, 0.0)).sum(-1) / np.maximum(amplitude.sum(-1), 1e-12)
        near = np.where(blocks_v, blocks_z, np.inf).min(axis=-1)
        far = np.where(blocks_v, blocks_z, -np.inf).max(axis=-1)
        blend = rng.random((h, w))
        flying = mixed & (rng.random((h, w)) < sensor["flying_prob"])
        out = np.where(mixed, weighted, out)
        out = np.where(flying, blend * np.where(mixed, near, 0.0) + (1.0 - blend) * np.where(mixed, far, 0.0), out)
        lr_valid &= ~(mixed & ~flying & (rng.random((h, w)) < sensor["edge_drop_prob"]))
    else:
        mixed = np.zeros((h, w), dtype=bool)

    if "multipath" in on:
        concave = np.clip(_concavity(area_mean, lr_valid) / CONCAVITY_REF, 0.0, 1.0)
        out = out + np.where(mixed, 0.0, sensor["multipath"] * area_mean * concave)
    if "noise" in on:
        sigma = sensor["noise_rel"] * out + sensor["noise_quad"] * out**2
        out = out + rng.normal(size=(h, w)) * sigma
    if "dark_dropout" in on:
        weak = grey_lr / np.maximum(out, 0.05) ** 2 < sensor["dark_signal"]
        lr_valid &= ~(weak & (rng.random((h, w)) < sensor["dark_drop_prob"]))
    if "random_dropout" in on:
        from scipy import ndimage

        lr_valid &= rng.random((h, w)) >= sensor["random_drop"]
        if sensor["blob_drop"] > 0:
            field = ndimage.gaussian_filter(rng.normal(size=(h, w)), sigma=max(h, w) / 25.0)
            lr_valid &= field < np.quantile(field, 1.0 - sensor["blob_drop"])
    if "quantisation" in on:
        out = np.round(out / QUANTUM_M) * QUANTUM_M
    lr_valid &= np.isfinite(out) & (out > 0)
    return np.where(lr_valid, out, np.nan).astype(np.float32), sensor
