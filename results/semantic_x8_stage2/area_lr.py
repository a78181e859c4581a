"""How much of the benchmark gain depends on bicubic LR? naima-eval's deployed protocol with the LR depth made
the way a ToF pixel sees the scene: the mean of each s x s footprint instead of antialiased bicubic.

A measurement, not a protocol: it swaps `synthesize_lr` where the test samples are made and runs naima-eval.
Usage (from the repository root):
    .venv/bin/python results/semantic_x8_stage2/area_lr.py \
        --checkpoint stage2=checkpoints/naima_semantic_x8.safetensors \
        --checkpoint light_demo_x8=checkpoints/naima_light_x8_demo.safetensors \
        --datasets middlebury,lu --scales 8 --protocol deployed --baselines bicubic --figures 0 --no-progress \
        --out results/semantic_x8_stage2/eval_area_lr
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

from naima_ros.data import datasets
from naima_ros.eval import run


def footprint_mean_lr(depth_norm, scale: int, *, antialias: bool = True):
    """`synthesize_lr`'s signature and layouts; each LR pixel is the mean of its s x s footprint (`antialias`
    is the replaced function's argument and has no meaning here)."""
    is_numpy = isinstance(depth_norm, np.ndarray)
    tensor = torch.as_tensor(np.asarray(depth_norm, dtype=np.float32)) if is_numpy else depth_norm.float()
    batched = tensor.reshape((-1, 1) + tuple(tensor.shape[-2:]))
    h, w = tensor.shape[-2:]
    lr = F.avg_pool2d(batched[..., : h // scale * scale, : w // scale * scale], scale)
    lr = lr.reshape(tuple(tensor.shape[:-2]) + tuple(lr.shape[-2:]))
    return lr.numpy() if is_numpy else lr


datasets.synthesize_lr = footprint_mean_lr
sys.exit(run.main(sys.argv[1:]))
