"""Metres in, metres out: run a NAIMA checkpoint on one RGB frame and one LR depth frame.

``Upsampler`` is the network's predictor (``naima_ros.predictors``: the baselines answer the same
call). Validation, the method's grid (any depth size), validity and range masking, robust per-frame
normalisation and nearest-valid hole filling are ``naima_ros.frames.prepare_frame``; the confidence
and which pixels are published are ``naima_ros.confidence``; both are shared with the baselines.
What is the network's own:

1. RGB is ImageNet-standardised; both inputs are padded bottom/right (edge replication) to the
   model's size multiple and its minimum size (:func:`network_size`), then the output is cropped back.
2. If the grid's ratio r differs from the model's scale s, the RGB is resized to s·(h, w) for
   the network and the output is resized back.
3. A model with ``validity_input`` also gets the grid's validity (1 measured, 0 filled hole).
4. Precision: fp32 or bf16 autocast on CPU, fp16 autocast on CUDA (the onboard path; no TensorRT),
   under ``torch.inference_mode``.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from naima_ros.checkpoint import load_checkpoint
from naima_ros.confidence import (DEFAULT_MIN_CONFIDENCE, Prediction, calibration_for, check_min_confidence,
                                  finish_prediction)
from naima_ros.frames import NoValidDepthError, check_depth_range, prepare_frame, standardise_rgb
from naima_ros.model.dinov2 import PATCH_SIZE
from naima_ros.model.encoders import encoder_metadata
from naima_ros.model.naima import Naima, NaimaConfig
from naima_ros.options import PRECISIONS

__all__ = ["NoValidDepthError", "Upsampler", "network_size", "resolve_device", "resolve_precision"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def network_size(config: NaimaConfig, height: int, width: int) -> tuple[int, int]:
    """The HR size the network runs at for an output of ``height`` x ``width``.

    Each side rounded up to ``config.size_multiple`` and to the smallest side the token projector
    accepts (``token_kernel`` patches of the semantic encoder's input).
    """
    m = config.size_multiple
    min_side = math.ceil(config.token_kernel * PATCH_SIZE / config.dino_input_scale)
    floor = math.ceil(min_side / m) * m
    return max(math.ceil(height / m) * m, floor), max(math.ceil(width / m) * m, floor)


class Upsampler:
    """A loaded NAIMA model with the pre/post-processing of the module docstring. Thread-safe."""

    method = "naima"

    def __init__(self, model: Naima, metadata: dict | None = None, *, device="auto", precision="auto",
                 min_depth: float | None = None, max_depth: float | None = None, checkpoint: str | None = None,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        self.metadata = metadata or {}
        self.checkpoint = checkpoint
        check_depth_range(min_depth, max_depth)
        check_min_confidence(min_confidence)
        self.min_depth, self.max_depth, self.min_confidence = min_depth, max_depth, float(min_confidence)
        self.calibration = calibration_for(self.method, self.scale, self.metadata)
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
        """What runs: checkpoint, preset, scale, device, precision and the semantic encoder (for logs and
        diagnostics; ``semantic_encoder`` as checkpoints record it, also for checkpoints older than that)."""
        return {"method": self.method, "checkpoint": self.checkpoint, "preset": self.metadata.get("preset"),
                "scale": self.scale, "device": str(self.device), "precision": self.precision,
                "backbone": self.model.backbone_identity, "semantic_encoder": encoder_metadata(self.model)}

    # ---------------------------------------------------------------- network on tensors
    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    def _forward_padded(self, rgb_std: torch.Tensor, depth_norm: torch.Tensor,
                        valid: torch.Tensor | None) -> torch.Tensor:
        """One forward pass with edge-replication padding to the model's size multiple; cropped back."""
        s = self.scale
        h, w = depth_norm.shape[-2:]
        ph, pw = network_size(self.model.config, h * s, w * s)
        rgb_p = F.pad(rgb_std, (0, pw - w * s, 0, ph - h * s), mode="replicate")
        lr_pad = (0, pw // s - w, 0, ph // s - h)
        depth_p = F.pad(depth_norm, lr_pad, mode="replicate")
        valid_p = None
        if valid is not None and self.model.config.validity_input:
            valid_p = F.pad(valid.float(), lr_pad, mode="replicate").to(self.device)
        with self._autocast():
            out = self.model(rgb_p.to(self.device), depth_p.to(self.device), valid_p)
        return out.float()[..., : h * s, : w * s]

    def predict_normalised(self, rgb_std: torch.Tensor, depth_norm: torch.Tensor,
                           valid: torch.Tensor | None = None) -> torch.Tensor:
        """Network output for standardised RGB (1, 3, s·h, s·w), normalised LR depth (1, 1, h, w) and,
        optionally, its validity (1, 1, h, w) (a model without ``validity_input`` ignores it).

        Pads as needed. Returns (1, 1, s·h, s·w) on CPU.
        """
        with self._lock, torch.inference_mode():
            return self._forward_padded(rgb_std, depth_norm, valid).cpu()

    # ---------------------------------------------------------------- metres in, metres out
    def predict(self, rgb: np.ndarray, depth_lr: np.ndarray, min_confidence: float | None = None) -> Prediction:
        """Super-resolve one frame, with a per-pixel confidence.

        Args:
            rgb: uint8 (H, W, 3), RGB order.
            depth_lr: float metres (h, w), any size with the RGB's aspect ratio; 0, NaN, ±inf and values
                outside [min_depth, max_depth] are invalid.
            min_confidence: This call's ``min_confidence`` (None: the predictor's).

        Returns:
            ``Prediction``: (H, W) float32 metres (NaN where not published: ``naima_ros.confidence``) and
            (H, W) float32 confidence in [0, 1].

        Raises:
            ValueError: bad shapes/dtypes or aspect ratios that disagree; NoValidDepthError if no depth
            pixel is valid.
        """
        frame = prepare_frame(rgb, depth_lr, self.min_depth, self.max_depth, scale=self.scale)
        ratio, (h, w), s = frame.ratio, frame.depth_norm.shape, self.scale
        rgb_std = torch.from_numpy(standardise_rgb(frame.method_rgb(rgb)))[None]
        if ratio != s:  # run the network at its own scale, then resize to the method's size
            rgb_std = F.interpolate(rgb_std, size=(h * s, w * s), mode="bilinear", align_corners=False,
                                    antialias=ratio > s)
        out = self.predict_normalised(rgb_std, torch.from_numpy(frame.depth_norm)[None, None],
                                      torch.from_numpy(frame.valid)[None, None])
        if ratio != s:
            out = F.interpolate(out, size=(h * ratio, w * ratio), mode="bilinear", align_corners=False,
                                antialias=ratio < s)
        return finish_prediction(frame, frame.to_metres(out[0, 0].numpy()), self.calibration,
                                 self.min_confidence if min_confidence is None else min_confidence)

    def __call__(self, rgb: np.ndarray, depth_lr: np.ndarray) -> np.ndarray:
        """``predict(rgb, depth_lr).depth``: (H, W) float32 metres, NaN where not published."""
        return self.predict(rgb, depth_lr).depth

    def warmup(self, height: int, width: int, iterations: int = 1) -> None:
        """Run ``iterations`` dummy frames of the given HR size (allocator, kernels, autotuning)."""
        s = self.scale
        h, w = max(height // s, 1), max(width // s, 1)
        rgb = np.zeros((h * s, w * s, 3), np.uint8)
        depth = np.ones((h, w), np.float32)
        for _ in range(iterations):
            self(rgb, depth)
