"""Training throughput (samples/s) per preset: forward + loss + backward + Adam step (not a test).

    .venv/bin/python bench/bench_train.py                       # light @256² b8, naima/reference @112² b1, x8
    .venv/bin/python bench/bench_train.py --presets light --patch 256 --batch 8 --steps 5

Synthetic tensors of the training shapes (data loading is excluded: it is measured in the
training log's samples_per_s). Prints a table and writes bench/results/train_<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch

from naima_ros.model import build_model
from naima_ros.train import TrainConfig, training_loss

DEFAULTS = {"light": (256, 8), "naima": (112, 1), "reference": (112, 1), "naima_plus": (112, 1)}


def measure(preset: str, scale: int, patch: int, batch: int, steps: int, warmup: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(preset, scale, seed=0).train()
    cfg = TrainConfig(preset=preset, scale=scale, patch=patch, masked_loss=True)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    m = model.config.size_multiple
    side = max(patch // m, 1) * m
    g = torch.Generator().manual_seed(0)
    rgb = torch.randn(batch, 3, side, side, generator=g)
    depth_hr = torch.rand(batch, 1, side, side, generator=g)
    depth_lr = torch.nn.functional.interpolate(depth_hr, scale_factor=1 / scale, mode="area")
    valid = torch.ones_like(depth_hr, dtype=torch.bool)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = training_loss(model(rgb, depth_lr), depth_hr, cfg, valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    return {"preset": preset, "scale": scale, "patch": side, "batch": batch, "step_s": round(step, 3),
            "samples_per_s": round(batch / step, 3), "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="light,naima,reference")
    parser.add_argument("--scale", type=int, default=8)
    parser.add_argument("--patch", type=int, help="override every preset's patch side")
    parser.add_argument("--batch", type=int, help="override every preset's batch size")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'preset':<11}{'scale':>6}{'patch':>7}{'batch':>7}{'step s':>9}{'samples/s':>11}")
    for preset in args.presets.split(","):
        patch, batch = DEFAULTS.get(preset, (112, 1))
        row = measure(preset, args.scale, args.patch or patch, args.batch or batch, args.steps, args.warmup)
        rows.append(row)
        print(f"{preset:<11}{row['scale']:>6}{row['patch']:>7}{row['batch']:>7}{row['step_s']:>9.3f}"
              f"{row['samples_per_s']:>11.3f}", flush=True)
    out = args.output or Path(__file__).parent / "results" / f"train_{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "torch": torch.__version__, "threads": args.threads,
                               "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
