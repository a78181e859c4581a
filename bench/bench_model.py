"""Benchmark of the network on CPU (not a test): latency, achieved GFLOP/s vs this machine's conv GFLOP/s.

For each preset and scale, at a 640x480 output (the Upsampler's padding included, as a node runs it):
- latency: median of --runs forward passes after --warmup ones (``Upsampler.predict_normalised``,
  ``torch.inference_mode``, fp32 and bf16 autocast);
- the whole predictor ("pred ms"): ``Upsampler.predict`` on uint8 RGB and metres with 5 % holes, as the
  node calls it (frame preparation, the network, the confidence and the published pixels);
- achieved GFLOP/s = FLOPs of that forward (``FlopCounterMode`` on the meta device, see
  ``naima_ros.info``) / median latency;
- ratio = achieved GFLOP/s / the GFLOP/s of one large 3x3 convolution (64->64 channels at 256x256,
  the best case for this CPU's kernels), measured in the same process at the same precision;
- peak RSS of the configuration (VmHWM, reset before each configuration) and minor page faults per
  forward pass;
- all of it twice: with glibc's default allocator settings and with raised malloc thresholds
  (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_). glibc reads them only at
  process start, so each allocator setting runs in a child process started with its environment.

Presets: light at x4/x8/x16 always; --big adds naima and reference at x8 (slow: ~5 TFLOP per
forward at 504x672, tens of seconds each on 2 cores).

Usage:
    .venv/bin/python bench/bench_model.py                       # light, x4/x8/x16, fp32+bf16, both allocators
    .venv/bin/python bench/bench_model.py --big                 # + naima/reference x8
    .venv/bin/python bench/bench_model.py --quick --scales 8    # a short look while developing
    .venv/bin/python bench/bench_model.py --presets light,light_guided --scales 8 --precisions fp32 --allocators tuned
    .venv/bin/python bench/bench_model.py --checkpoints A,B --scales 8 --precisions fp32 --interleave   # A/B ratios
Writes bench/results/model_<date>.json and prints a table. See bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from naima_ros.options import SCALES

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# Raised thresholds: big tensors come from (and go back to) the heap instead of fresh mmap/munmap
# pairs, so repeated forward passes stop paying page faults for every activation.
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
                "MALLOC_TOP_PAD_": str(1 << 30)}
ALLOCATORS = ("default", "tuned")
PRECISIONS = ("fp32", "bf16")
CONV_SHAPE = (64, 64, 256, 256)  # in channels, out channels, H, W; 3x3, stride 1, padding 1


# --------------------------------------------------------------------------------------- child side

def _peak_rss_reset() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False if not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # whole-process peak (KB on Linux)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _time(fn, runs: int, warmup: int) -> tuple[float, list[float], float]:
    """(median seconds, all times, minor page faults per timed run) of fn() after warm-up runs."""
    for _ in range(warmup):
        fn()
    times, faults = [], _minor_faults()
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, (_minor_faults() - faults) / max(runs, 1)


def conv_peak(precision: str, runs: int, warmup: int) -> dict:
    """GFLOP/s of one large 3x3 convolution: this machine's practical conv ceiling at a precision."""
    import torch

    cin, cout, height, width = CONV_SHAPE
    conv = torch.nn.Conv2d(cin, cout, 3, padding=1).eval()
    x = torch.randn(1, cin, height, width)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def step():
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=precision != "fp32"):
            conv(x)

    flops = 2 * cin * 9 * cout * height * width
    median, times, _ = _time(step, runs, warmup)
    return {"shape": f"conv3x3 {cin}->{cout} at {height}x{width}", "precision": precision, "flops": flops,
            "median_s": median, "gflops_per_s": flops / median / 1e9, "times_s": times}


def is_checkpoint(case_preset: str) -> bool:
    """A case names a preset (`light`) or a checkpoint file, timed as its own preset and overrides."""
    return case_preset.endswith(".safetensors")


def prepare_case(preset: str, scale: int, precision: str, height: int, width: int) -> tuple[dict, object, object]:
    """(the case's fields, network call, whole-predictor call) of one preset (or checkpoint file)/scale/precision."""
    import numpy as np
    import torch

    from naima_ros import info
    from naima_ros.checkpoint import load_checkpoint
    from naima_ros.inference import Upsampler
    from naima_ros.model import build_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: same cost
        if is_checkpoint(preset):
            model, meta = load_checkpoint(preset, expect_scale=scale)
            meta_model = info._build(meta["preset"], scale, "meta", **meta.get("overrides", {}))
        else:
            model = build_model(preset, scale, seed=0, warn_untrained=False)
            meta_model = info._build(preset, scale, "meta")
    net_h, net_w = info.network_size(model.config, height, width)
    flops = info.count_flops(meta_model, net_h, net_w, device="meta")["flops"]
    upsampler = Upsampler(model, meta if is_checkpoint(preset) else {}, device="cpu", precision=precision)
    rgb = torch.randn(1, 3, height // scale * scale, width // scale * scale)
    depth = torch.rand(1, 1, height // scale, width // scale)
    # the whole predictor as the node calls it: frame preparation, the network, confidence and holes
    rng = np.random.default_rng(0)
    rgb_u8 = rng.integers(0, 256, (height // scale * scale, width // scale * scale, 3), dtype=np.uint8)
    depth_m = (1.0 + rng.random((height // scale, width // scale))).astype(np.float32)
    depth_m[rng.random(depth_m.shape) < 0.05] = np.nan  # a sensor's holes
    fields = {"preset": preset, "scale": scale, "precision": precision, "output_size": [height, width],
              "network_size": [net_h, net_w], "flops": flops}
    return fields, lambda: upsampler.predict_normalised(rgb, depth), lambda: upsampler.predict(rgb_u8, depth_m)


def model_case(preset: str, scale: int, precision: str, height: int, width: int, runs: int, warmup: int) -> dict:
    """Latency, FLOPs and peak RSS of one preset (or checkpoint file)/scale/precision at height x width."""
    fields, network, predictor = prepare_case(preset, scale, precision, height, width)
    reset = _peak_rss_reset()
    median, times, faults = _time(network, runs, warmup)
    predictor_median, _, _ = _time(predictor, runs, warmup)
    return {**fields, "median_s": median, "times_s": times, "predictor_median_s": predictor_median,
            "gflops_per_s": fields["flops"] / median / 1e9, "peak_rss_mb": round(_peak_rss_mb(), 1),
            "peak_rss_scope": "this configuration (VmHWM reset after the model was built)" if reset
            else "whole process (VmHWM reset unsupported)", "minor_faults_per_forward": faults}


def interleaved_cases(specs: list[tuple[str, int, str]], height: int, width: int, runs: int, warmup: int) -> list:
    """Every case timed once per round, `runs` rounds: a loaded machine's drift hits every case alike, so the
    ratios between cases hold (timing one case after the other, ratios moved by 20 % under a trainer's load)."""
    prepared = [prepare_case(*spec, height, width) for spec in specs]
    for _, network, predictor in prepared:
        for _ in range(warmup):
            network()
            predictor()
    times, faults = [([], []) for _ in prepared], _minor_faults()
    for _ in range(runs):
        for (_, network, predictor), (net_times, pred_times) in zip(prepared, times):
            for call, into in ((network, net_times), (predictor, pred_times)):
                start = time.perf_counter()
                call()
                into.append(time.perf_counter() - start)
    faults = (_minor_faults() - faults) / max(2 * runs * len(prepared), 1)  # all cases together
    return [{**fields, "median_s": statistics.median(net), "times_s": net,
             "predictor_median_s": statistics.median(pred),
             "gflops_per_s": fields["flops"] / statistics.median(net) / 1e9, "peak_rss_mb": round(_peak_rss_mb(), 1),
             "peak_rss_scope": "whole process (interleaved)", "minor_faults_per_forward": faults}
            for (fields, _, _), (net, pred) in zip(prepared, times)]


def child(config: dict) -> dict:
    import torch

    if config["threads"]:
        torch.set_num_threads(config["threads"])
    result = {"allocator": config["allocator"],
              "malloc_env": {k: os.environ.get(k) for k in TUNED_MALLOC},
              "threads": torch.get_num_threads(), "conv": {}, "cases": []}
    for precision in config["precisions"]:
        result["conv"][precision] = conv_peak(precision, config["runs"], config["warmup"])
    specs = [(preset, scale, precision) for preset, scale in config["cases"] for precision in config["precisions"]]
    cases = (interleaved_cases(specs, config["height"], config["width"], config["runs"], config["warmup"])
             if config.get("interleave") else
             (model_case(*spec, config["height"], config["width"], config["runs"], config["warmup"]) for spec in specs))
    for case in cases:
        case["ratio_to_conv"] = case["gflops_per_s"] / result["conv"][case["precision"]]["gflops_per_s"]
        result["cases"].append(case)
        print(f"  [{config['allocator']}] {case['preset']} x{case['scale']} {case['precision']}: "
              f"{case['median_s'] * 1e3:.0f} ms, {case['gflops_per_s']:.1f} GFLOP/s", file=sys.stderr, flush=True)
    return result


# -------------------------------------------------------------------------------------- parent side

def run_child(allocator: str, config: dict) -> dict:
    """Start this script again with the allocator's environment; glibc reads it only at start-up."""
    env = {k: v for k, v in os.environ.items() if k not in TUNED_MALLOC}
    if allocator == "tuned":
        env.update(TUNED_MALLOC)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        command = [sys.executable, str(Path(__file__).resolve()),
                   "--child", json.dumps({**config, "allocator": allocator}), "--child-out", str(out)]
        subprocess.run(command, env=env, check=True)
        return json.loads(out.read_text())


def machine() -> dict:
    import torch

    cpu, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as handle:
            lines = handle.read().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
        flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "libc": " ".join(platform.libc_ver()),
            "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"})}


def table(results: dict) -> str:
    lines = [f"{'preset':<22}{'x':>3} {'prec':<5}{'alloc':<8}{'net size':>10}{'GFLOP':>8}{'ms':>9}"
             f"{'pred ms':>9}{'GFLOP/s':>9}{'conv':>8}{'ratio':>7}{'RSS MB':>9}{'faults':>9}"]
    for run in results["runs"]:
        for case in run["cases"]:
            conv = run["conv"][case["precision"]]["gflops_per_s"]
            name = Path(case["preset"]).stem if is_checkpoint(case["preset"]) else case["preset"]
            lines.append(f"{name:<22}{case['scale']:>3} {case['precision']:<5}{run['allocator']:<8}"
                         f"{'x'.join(map(str, case['network_size'])):>10}{case['flops'] / 1e9:>8.1f}"
                         f"{case['median_s'] * 1e3:>9.1f}{case.get('predictor_median_s', float('nan')) * 1e3:>9.1f}"
                         f"{case['gflops_per_s']:>9.1f}{conv:>8.1f}"
                         f"{case['ratio_to_conv']:>7.2f}{case['peak_rss_mb']:>9.0f}"
                         f"{case['minor_faults_per_forward']:>9.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    all_scales = ",".join(map(str, SCALES))
    parser.add_argument("--scales", default=all_scales, help=f"scales of the light presets (default {all_scales})")
    parser.add_argument("--presets", default="light", help="comma-separated light presets (light, light_guided)")
    parser.add_argument("--big", action="store_true", help="also naima and reference at x8 (slow)")
    parser.add_argument("--checkpoints", default="", help="comma-separated .safetensors files, timed as loaded "
                        "(their own preset and overrides; scale from --scales, which must match)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--allocators", default="default,tuned", help="comma-separated: default, tuned")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per configuration (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--quick", action="store_true", help="--runs 2 --warmup 1: a short look")
    parser.add_argument("--size", default="480x640", help="output HxW (default 480x640)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--interleave", action="store_true", help="time every configuration once per round "
                        "instead of one after the other: ratios that hold on a loaded machine (no per-case RSS)")
    parser.add_argument("--output", help="JSON path (default bench/results/model_<date>.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(json.loads(args.child))
        Path(args.child_out).write_text(json.dumps(result))
        return 0
    if args.quick:
        args.runs, args.warmup = 2, 1
    scales = [int(s) for s in args.scales.split(",")]
    precisions = [p for p in args.precisions.split(",") if p]
    allocators = [a for a in args.allocators.split(",") if a]
    if not (set(precisions) <= set(PRECISIONS) and set(allocators) <= set(ALLOCATORS) and set(scales) <= set(SCALES)):
        parser.error(f"precisions from {PRECISIONS}, allocators from {ALLOCATORS}, scales from {all_scales}")
    height, width = (int(v) for v in args.size.lower().split("x"))
    presets = [p for p in args.presets.split(",") if p]
    checkpoints = [c for c in args.checkpoints.split(",") if c]
    if not set(presets) <= {"light", "light_guided"}:
        parser.error("--presets from light, light_guided (--big adds naima and reference)")
    cases = ([(p, s) for p in presets for s in scales] + [(c, s) for c in checkpoints for s in scales]
             + ([("naima", 8), ("reference", 8)] if args.big else []))
    config = {"cases": cases, "precisions": precisions, "runs": args.runs, "warmup": args.warmup,
              "height": height, "width": width, "threads": args.threads, "interleave": args.interleave}
    started = time.perf_counter()
    results = {"tool": "bench/bench_model.py", "date": dt.datetime.now().isoformat(timespec="seconds"),
               "machine": machine(), "config": config, "tuned_malloc_env": TUNED_MALLOC, "runs": []}
    for allocator in allocators:
        print(f"allocator {allocator}: child process", file=sys.stderr, flush=True)
        results["runs"].append(run_child(allocator, config))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    text = table(results)
    print(text)
    print("ratio = achieved GFLOP/s of the model / GFLOP/s of a 64->64 3x3 conv at 256x256, same precision and "
          "allocator; faults = minor page faults per forward pass")
    output = Path(args.output) if args.output else RESULTS / f"model_{dt.date.today().isoformat()}.json"
    if not args.output and output.exists():
        output = RESULTS / f"model_{dt.datetime.now().strftime('%Y-%m-%d_%H%M%S')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {output} ({results['wall_s']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
