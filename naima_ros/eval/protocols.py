"""naima-eval's protocols: what each method gets from a test image, and how it is scored.

``deployed`` (default; evaluation = deployment)
    Modcrop to s; LR synthesised from the modcropped, normalised GT (antialiased bicubic) and handed,
    in the dataset's depth unit, to each method's predictor (``naima_ros.predictors``) exactly as
    the node hands a frame to it: uint8 RGB, per-frame normalisation by the LR's robust range (1st-99th percentile),
    nearest-valid fill, support mask, minimal edge padding. The prediction is scored after the
    6-px shave in the reported unit. The 8-bit sets hold 0 as a value and bicubic undershoots it,
    so their LR is shifted by a constant to stay positive (valid for the predictor); per-frame
    normalisation makes the result independent of that shift.
``reference`` (docs/model.md §4, reproduces the paper's Tables 1-3)
    Modcrop to s. RGB ImageNet-standardised (NYU / RGB-D-D / TOFDSR) or /255 only (Middlebury /
    Lu); GT normalised per image (min-max) or /255 (Middlebury / Lu). Zero-pad RGB and GT on the
    bottom and right to a square S x S, S the smallest of 112, 224, ..., 784 with S >= max(H, W);
    synthesise the LR from the *padded* GT (antialiased bicubic); run the network directly on the
    padded pair; crop the top-left H x W; shave 6 px; de-normalise (x100 cm for the metric sets,
    x255 8-bit units for Middlebury / Lu); RMSE per image, averaged over images. fp32 unless asked.
``corrected`` (docs/model.md §7)
    Standardised RGB everywhere, LR synthesised from the modcropped GT and given to the network as
    normalised by the GT's range (/255 for Middlebury / Lu), minimal edge padding, same shave and
    units.
``anchors`` (``shared/data/README.md``)
    As ``corrected`` without the shave: the protocol of the README's bicubic sanity anchors.
``sensor`` (``naima_ros.eval.sensor``)
    What a robot's ToF camera sends: simulated sensors (and a real one where a set has it) in metres.

Every protocol can synthesise the LR with plain (non-antialiased) bicubic instead
(``lr_synthesis="plain"``), for reproducing Table 1 with an older torchvision, or as footprint means
(``"area"``: what a ToF pixel measures).
Per-image RMSEs are reduced with ``naima_ros.eval.metrics.mean_over_images``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from naima_ros.data.common import RGBDFrame
from naima_ros.data.datasets import make_test_sample
from naima_ros.data.registry import DatasetInfo
from naima_ros.data.transforms import synthesize_lr
from naima_ros.eval import metrics
from naima_ros.frames import IMAGENET_MEAN

__all__ = ["DEFAULT_PROTOCOL", "PROTOCOLS", "REFERENCE_PAD_SIDES", "EvalError", "Protocol", "Sample",
           "prepare_sample", "reference_inputs", "reference_pad_side"]


class EvalError(ValueError):
    """Bad input to naima-eval (arguments, checkpoints, datasets): reported as one message."""


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    shave: int
    description: str
    default_precision: str = "auto"  # the network's precision unless --precision says otherwise


PROTOCOLS = {
    "deployed": Protocol("deployed", metrics.REFERENCE_SHAVE_PX,
                         "as deployed: every method is the node's predictor, normalising by the LR frame's own "
                         "robust range (1st-99th percentile); LR from the modcropped GT, minimal edge padding, "
                         "6-px shave"),
    "reference": Protocol("reference", metrics.REFERENCE_SHAVE_PX,
                          "docs/model.md §4: square zero padding to S in {112..784}, LR synthesised after padding, "
                          "Middlebury/Lu RGB /255 only, 6-px shave, fp32", default_precision="fp32"),
    "corrected": Protocol("corrected", metrics.REFERENCE_SHAVE_PX,
                          "standardised RGB everywhere, LR from the modcropped GT normalised by the GT's range, "
                          "minimal edge padding, 6-px shave"),
    "anchors": Protocol("anchors", 0,
                        "shared/data/README.md: as corrected, no shave (the bicubic sanity anchors' protocol)"),
    "sensor": Protocol("sensor", metrics.REFERENCE_SHAVE_PX,
                       "naima_ros.eval.sensor: the LR a simulated ToF camera sends (naima_ros.data.tof), every "
                       "method its predictor, scored in metres over valid ground truth, 6-px shave"),
}
DEFAULT_PROTOCOL = "deployed"
REFERENCE_PAD_SIDES = (112, 224, 336, 448, 560, 672, 784)  # multiples of lcm(14, 16) = 112
# uint8 colour whose ImageNet-standardised value is 0: the reference's zero padding, seen by the baselines.
_MEAN_COLOUR = tuple(int(round(255 * m)) for m in IMAGENET_MEAN)


def reference_pad_side(height: int, width: int) -> int:
    """The reference's square side: the smallest S in ``REFERENCE_PAD_SIDES`` with S >= max(height, width).

    Raises:
        EvalError: the image is larger than 784 (the reference would crash).
    """
    for side in REFERENCE_PAD_SIDES:
        if side >= max(height, width):
            return side
    raise EvalError(f"image {height}x{width} is larger than the reference protocol's largest square "
                    f"{REFERENCE_PAD_SIDES[-1]}; the reference code cannot evaluate it (use --protocol corrected)")


def reference_inputs(rgb_net: torch.Tensor, gt_norm: torch.Tensor, scale: int, *, lr_synthesis: str = "antialias"
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad and synthesise the LR exactly as the reference's ``GetInference`` does (docs/model.md §4).

    Args:
        rgb_net: (3, H, W) network RGB (standardised, or /255 for Middlebury/Lu).
        gt_norm: (H, W) normalised ground truth, H and W multiples of ``scale``.
        scale: SR factor s.
        lr_synthesis: ``transforms.synthesize_lr``'s method (the reference with a recent torchvision: antialias).

    Returns:
        (rgb (3, S, S), gt (S, S), lr (S/s, S/s)): RGB and GT zero-padded on the bottom and right,
        the LR synthesised from the padded GT (bicubic, no clamp).
    """
    height, width = gt_norm.shape
    side = reference_pad_side(height, width)
    rgb_pad = torch.zeros(3, side, side, dtype=torch.float32)
    rgb_pad[:, :height, :width] = rgb_net
    gt_pad = torch.zeros(side, side, dtype=torch.float32)
    gt_pad[:height, :width] = gt_norm
    return rgb_pad, gt_pad, synthesize_lr(gt_pad, scale, method=lr_synthesis)


@dataclasses.dataclass
class Sample:
    """One test image at one scale, prepared for a protocol.

    ``net_rgb`` / ``net_lr`` are what the network gets under ``reference`` / ``corrected`` /
    ``anchors`` (padded under ``reference``), ``base_rgb`` / ``base_lr`` what the baselines get (the
    same LR; the RGB as uint8), ``lr_source`` the normalised HR map the LR was made from (for
    ``bicubic_pil``). Under ``deployed`` every method gets ``rgb_uint8`` and ``lr_depth``, the LR in
    the dataset's unit (plus ``lr_shift``). Predictions are cropped to ``gt_norm``'s top-left (H, W).
    """

    name: str
    scale: int
    protocol: str
    gt_norm: np.ndarray  # (H, W)
    rgb_uint8: np.ndarray  # (H, W, 3)
    valid: np.ndarray  # (H, W) bool, for figures only (the protocols use no mask)
    minmax: tuple[float, float]
    rmse_scale: float
    unit: str
    net_rgb: torch.Tensor  # (1, 3, Hn, Wn)
    net_lr: torch.Tensor  # (1, 1, Hn/s, Wn/s)
    base_rgb: np.ndarray  # (Hn, Wn, 3) uint8
    base_lr: np.ndarray  # (Hn/s, Wn/s)
    lr_source: np.ndarray  # (Hn, Wn) normalised HR the LR came from
    padded: bool
    lr_depth: np.ndarray | None = None  # (H/s, W/s) float32 LR in the dataset's unit + lr_shift (deployed)
    lr_shift: float = 0.0

    def crop(self, prediction) -> np.ndarray:
        height, width = self.gt_norm.shape
        prediction = prediction.detach().cpu().numpy() if hasattr(prediction, "detach") else np.asarray(prediction)
        return np.asarray(prediction, dtype=np.float32).reshape(prediction.shape[-2:])[:height, :width]

    def normalise_depth(self, depth: np.ndarray) -> np.ndarray:
        """A prediction in the dataset's unit (+ ``lr_shift``) -> normalised like ``gt_norm``."""
        lo, hi = self.minmax
        return ((np.asarray(depth, np.float64) - self.lr_shift - lo) / max(hi - lo, 1e-12)).astype(np.float32)

    def to_unit(self, normalised: np.ndarray) -> np.ndarray:
        """Normalised depth -> the reported unit (cm, or 8-bit units)."""
        return metrics.denormalise(normalised, self.minmax) * self.rmse_scale


def prepare_sample(frame: RGBDFrame, scale: int, protocol: str, dataset: DatasetInfo, *,
                   lr_synthesis: str = "antialias") -> Sample:
    """Modcrop a frame and build every method's inputs under ``protocol`` (``make_test_sample`` underneath)."""
    if protocol not in PROTOCOLS:
        raise EvalError(f"unknown protocol {protocol!r}; expected one of {sorted(PROTOCOLS)}")
    if frame.rgb.shape[0] < scale or frame.rgb.shape[1] < scale:
        raise EvalError(f"image {frame.name} ({frame.rgb.shape[0]}x{frame.rgb.shape[1]}) is smaller than scale {scale}")
    rgb_mode = dataset.reference_rgb if protocol == "reference" else "imagenet"
    test = make_test_sample(frame, scale, rgb_mode, lr_synthesis=lr_synthesis)
    rgb_uint8 = test["rgb_uint8"].numpy()
    gt_norm = np.ascontiguousarray(test["depth_hr"][0].numpy(), dtype=np.float32)
    height, width = gt_norm.shape
    common = dict(name=frame.name, scale=scale, protocol=protocol, gt_norm=gt_norm, rgb_uint8=rgb_uint8,
                  valid=test["valid"][0].numpy(), minmax=tuple(float(v) for v in frame.minmax),
                  rmse_scale=float(frame.rmse_scale), unit=frame.rmse_unit)
    if protocol == "reference":
        rgb_pad, gt_pad, lr = reference_inputs(test["rgb"], torch.from_numpy(gt_norm), scale,
                                             lr_synthesis=lr_synthesis)
        side = rgb_pad.shape[-1]
        fill = _MEAN_COLOUR if dataset.reference_rgb == "imagenet" else (0, 0, 0)
        base_rgb = np.empty((side, side, 3), np.uint8)
        base_rgb[:] = np.asarray(fill, np.uint8)
        base_rgb[:height, :width] = rgb_uint8
        return Sample(**common, net_rgb=rgb_pad[None], net_lr=lr[None, None], base_rgb=base_rgb,
                      base_lr=lr.numpy(), lr_source=gt_pad.numpy(), padded=True)
    lr = test["depth_lr"]  # (1, h, w)
    sample = Sample(**common, net_rgb=test["rgb"][None], net_lr=lr[None], base_rgb=rgb_uint8,
                    base_lr=lr[0].numpy(), lr_source=gt_norm, padded=False)
    if protocol == "deployed":
        lo, hi = sample.minmax
        lr_depth = lr[0].double().numpy() * (hi - lo) + lo
        # Keep every LR pixel valid (> 0) for the predictor; its per-frame normalisation cancels the shift.
        sample.lr_shift = float(max(0.0, 1.0 - lr_depth.min())) if lr_depth.min() <= 0 else 0.0
        sample.lr_depth = (lr_depth + sample.lr_shift).astype(np.float32)
    return sample

