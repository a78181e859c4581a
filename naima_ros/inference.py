"""Metres in, metres out: run a NAIMA checkpoint on one RGB frame and one LR depth frame.

``Upsampler`` owns everything between sensor arrays and the network:

1. Validation: RGB uint8 (H, W, 3) in RGB order, depth float metres (h, w); H/h and W/w must be
   the same integer ratio r (a non-integer ratio is an error naming both sizes).
2. Validity: LR pixels that are 0, NaN, ±inf or outside [min_depth, max_depth] are invalid.
3. Normalisation per frame from the LR's valid values: d_n = (d - min) / (max - min); the output is
   de-normalised with the same two numbers (a deployed node has no HR ground truth, SPEC.md 7).
4. Hole filling before the network: every invalid LR pixel takes the normalised value of its
   nearest valid LR pixel (exact Euclidean nearest, scipy's distance transform), so holes do not
   create artificial depth edges. After the network, HR pixels whose LR cell was invalid are NaN.
5. RGB is ImageNet-standardised; both inputs are padded bottom/right (edge replication) to the
   model's size multiple (and its minimum size), then the output is cropped back.
6. If r differs from the model's scale s, the RGB is resized to s·(h, w) for the network and the
   output is resized back to (H, W).
7. Precision: fp32 or bf16 autocast on CPU, fp16 autocast on CUDA (the onboard path; no TensorRT),
   under ``torch.inference_mode``. ``max_pixels`` bounds one forward pass: larger frames are
   processed in overlapping LR tiles blended with linear ramps.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from naima_ros.checkpoint import load_checkpoint
from naima_ros.data import transforms
from naima_ros.data.common import fill_invalid_nearest
from naima_ros.model.dinov2 import PATCH_SIZE
from naima_ros.model.naima import Naima

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class NoValidDepthError(ValueError):
    """The LR depth frame has no valid pixel: nothing to super-resolve."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a torch device (auto, cpu, cuda, cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: only cpu and cuda are supported")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    return precision


def standardise_rgb(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB → ImageNet-standardised float32 (1, 3, H, W), as in training."""
    return torch.from_numpy(transforms.standardise_rgb(rgb)).unsqueeze(0)


def valid_depth_mask(depth_m: np.ndarray, min_depth: float | None = None, max_depth: float | None = None) -> np.ndarray:
    """True where depth is finite, > 0 and inside the optional range."""
    valid = np.isfinite(depth_m) & (depth_m > 0)
    if min_depth is not None:
        valid &= depth_m >= min_depth
    if max_depth is not None:
        valid &= depth_m <= max_depth
    return valid


def check_frame(rgb, depth_lr) -> int:
    """Validate a frame pair; return the integer RGB/depth size ratio. Raises ValueError naming sizes."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be a numpy uint8 array (H, W, 3) in RGB order, got "
                         f"{type(rgb).__name__} {getattr(rgb, 'shape', '')}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8 (0-255), got dtype {rgb.dtype}")
    if not isinstance(depth_lr, np.ndarray) or depth_lr.ndim != 2:
        raise ValueError(f"depth_lr must be a 2-D numpy array of metres (h, w), got "
                         f"{type(depth_lr).__name__} {getattr(depth_lr, 'shape', '')}")
    if not np.issubdtype(depth_lr.dtype, np.floating):
        raise ValueError(f"depth_lr must be float metres, got dtype {depth_lr.dtype} (convert millimetres first)")
    (hh, ww), (h, w) = rgb.shape[:2], depth_lr.shape
    if min(hh, ww, h, w) == 0:
        raise ValueError(f"empty frame: rgb {hh}x{ww}, depth {h}x{w}")
    if hh % h or ww % w or hh // h != ww // w:
        raise ValueError(f"rgb {hh}x{ww} is not an integer multiple of depth {h}x{w} with the same ratio "
                         f"in both axes ({hh / h:.3f} x {ww / w:.3f})")
    return hh // h


def _ramp(n: int, overlap: int, first: bool, last: bool) -> torch.Tensor:
    w = torch.ones(n)
    if overlap > 0:
        ramp = torch.linspace(0, 1, overlap + 2)[1:-1]
        if not first:
            w[:overlap] = ramp
        if not last:
            w[-overlap:] = ramp.flip(0)
    return w


class Upsampler:
    """A loaded NAIMA model with the pre/post-processing of the module docstring. Thread-safe."""

    def __init__(self, model: Naima, metadata: dict | None = None, *, device="auto", precision="auto",
                 min_depth: float | None = None, max_depth: float | None = None, max_pixels: int | None = None,
                 tile_overlap: int = 8, checkpoint: str | None = None):
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        self.metadata = metadata or {}
        self.checkpoint = checkpoint
        if min_depth is not None and max_depth is not None and not 0 <= min_depth < max_depth:
            raise ValueError(f"need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}")
        self.min_depth, self.max_depth = min_depth, max_depth
        if max_pixels is not None and max_pixels < 64 * 64:
            raise ValueError(f"max_pixels must be at least 4096, got {max_pixels}")
        self.max_pixels = max_pixels
        self.tile_overlap = int(tile_overlap)
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device="auto", precision="auto", **kwargs) -> "Upsampler":
        """Load a naima_ros safetensors checkpoint (see ``naima_ros.checkpoint``)."""
        dev = resolve_device(device)
        model, meta = load_checkpoint(path, device=dev, expect_scale=kwargs.pop("expect_scale", None))
        return cls(model, meta, device=dev, precision=precision, checkpoint=str(path), **kwargs)

    @property
    def scale(self) -> int:
        return self.model.scale

    def describe(self) -> dict:
        return {"checkpoint": self.checkpoint, "preset": self.metadata.get("preset"), "scale": self.scale,
                "device": str(self.device), "precision": self.precision,
                "backbone": self.model.backbone_identity}

    # ---------------------------------------------------------------- network on tensors
    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    def _pad_target(self, height: int, width: int) -> tuple[int, int]:
        m = self.model.config.size_multiple
        min_side = math.ceil(self.model.config.token_kernel * PATCH_SIZE / self.model.config.dino_input_scale)
        return (max(math.ceil(height / m) * m, math.ceil(min_side / m) * m),
                max(math.ceil(width / m) * m, math.ceil(min_side / m) * m))

    def _forward_padded(self, rgb_std: torch.Tensor, depth_norm: torch.Tensor) -> torch.Tensor:
        """One forward pass with edge-replication padding to the model's size multiple; cropped back."""
        s = self.scale
        h, w = depth_norm.shape[-2:]
        ph, pw = self._pad_target(h * s, w * s)
        rgb_p = F.pad(rgb_std, (0, pw - w * s, 0, ph - h * s), mode="replicate")
        depth_p = F.pad(depth_norm, (0, pw // s - w, 0, ph // s - h), mode="replicate")
        with self._autocast():
            out = self.model(rgb_p.to(self.device), depth_p.to(self.device))
        return out.float()[..., : h * s, : w * s]

    def predict_normalised(self, rgb_std: torch.Tensor, depth_norm: torch.Tensor) -> torch.Tensor:
        """Network output for standardised RGB (1, 3, s·h, s·w) and normalised LR depth (1, 1, h, w).

        Pads as needed; tiles when the padded frame exceeds ``max_pixels``. Returns (1, 1, s·h, s·w) on CPU.
        """
        with self._lock, torch.inference_mode():
            h, w = depth_norm.shape[-2:]
            s = self.scale
            if self.max_pixels is None or (h * s) * (w * s) <= self.max_pixels:
                return self._forward_padded(rgb_std, depth_norm).cpu()
            return self._tiled(rgb_std, depth_norm).cpu()

    def _tiled(self, rgb_std: torch.Tensor, depth_norm: torch.Tensor) -> torch.Tensor:
        """Overlapping LR tiles (each ≤ max_pixels at HR), blended with linear ramps in the overlaps."""
        s, (h, w) = self.scale, depth_norm.shape[-2:]
        m_lr = max(self.model.config.size_multiple // s, 1)
        side = max(int(math.sqrt(self.max_pixels)) // s // m_lr * m_lr, m_lr)
        ov = min(self.tile_overlap, side // 4)
        step = max(side - ov, 1)
        out = torch.zeros(1, 1, h * s, w * s)
        weight = torch.zeros(1, 1, h * s, w * s)
        ys = list(range(0, max(h - side, 0) + 1, step)) or [0]
        xs = list(range(0, max(w - side, 0) + 1, step)) or [0]
        if ys[-1] + side < h:
            ys.append(h - side)
        if xs[-1] + side < w:
            xs.append(w - side)
        for y0 in ys:
            for x0 in xs:
                y1, x1 = min(y0 + side, h), min(x0 + side, w)
                tile = self._forward_padded(rgb_std[..., y0 * s: y1 * s, x0 * s: x1 * s],
                                            depth_norm[..., y0:y1, x0:x1]).cpu()
                wy = _ramp((y1 - y0) * s, ov * s, y0 == 0, y1 == h)
                wx = _ramp((x1 - x0) * s, ov * s, x0 == 0, x1 == w)
                wt = (wy[:, None] * wx[None, :])[None, None]
                out[..., y0 * s: y1 * s, x0 * s: x1 * s] += tile * wt
                weight[..., y0 * s: y1 * s, x0 * s: x1 * s] += wt
        return out / weight.clamp_min(1e-12)

    # ---------------------------------------------------------------- metres in, metres out
    def __call__(self, rgb: np.ndarray, depth_lr: np.ndarray) -> np.ndarray:
        """Super-resolve one frame.

        Args:
            rgb: uint8 (H, W, 3), RGB order.
            depth_lr: float metres (h, w); 0, NaN, ±inf and values outside [min_depth, max_depth] are invalid.

        Returns:
            float32 metres (H, W); NaN where the LR cell under an output pixel was invalid.

        Raises:
            ValueError: bad shapes/dtypes or a non-integer size ratio; NoValidDepthError if no LR pixel is valid.
        """
        ratio = check_frame(rgb, depth_lr)
        depth_lr = depth_lr.astype(np.float32, copy=False)
        valid = valid_depth_mask(depth_lr, self.min_depth, self.max_depth)
        if not valid.any():
            raise NoValidDepthError(f"depth frame {depth_lr.shape[0]}x{depth_lr.shape[1]} has no valid pixel "
                                    f"(all 0/NaN/inf or outside [{self.min_depth}, {self.max_depth}] m)")
        d_min, d_max = float(depth_lr[valid].min()), float(depth_lr[valid].max())
        span = max(d_max - d_min, 1e-6)
        depth_norm = fill_invalid_nearest(np.where(valid, (depth_lr - d_min) / span, 0.0), valid).astype(np.float32)
        h, w = depth_lr.shape
        s = self.scale
        rgb_std = standardise_rgb(rgb)
        if ratio != s:  # run the network at its own scale, then resize to the RGB size
            rgb_std = F.interpolate(rgb_std, size=(h * s, w * s), mode="bilinear", align_corners=False,
                                    antialias=ratio > s)
        out = self.predict_normalised(rgb_std, torch.from_numpy(depth_norm)[None, None])
        if ratio != s:
            out = F.interpolate(out, size=(h * ratio, w * ratio), mode="bilinear", align_corners=False,
                                antialias=ratio < s)
        depth_hr = out[0, 0].numpy() * span + d_min
        support = np.repeat(np.repeat(valid, ratio, axis=0), ratio, axis=1)
        return np.where(support, depth_hr, np.nan).astype(np.float32)

    def warmup(self, height: int, width: int, iterations: int = 1) -> None:
        """Run ``iterations`` dummy frames of the given HR size (allocator, kernels, autotuning)."""
        s = self.scale
        h, w = max(height // s, 1), max(width // s, 1)
        rgb = np.zeros((h * s, w * s, 3), np.uint8)
        depth = np.ones((h, w), np.float32)
        for _ in range(iterations):
            self(rgb, depth)
