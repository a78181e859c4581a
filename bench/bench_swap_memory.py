"""Resident memory across model swaps through the node's model slot (`naima_ros.model_slot`).

The node swaps models on `scale`/`checkpoint` changes: `ModelSlot.swap` loads and warms up the
new predictor in the background while a worker thread keeps serving. This bench does the same
without ROS: one model slot, a persistent worker thread running a prediction after every swap,
and `--swaps` swaps alternating between two committed demo checkpoints (x8 and x16 by default),
each warmed up at the output size. RSS (VmRSS) is read after every swap; the issue's bound is
RSS after the last swap <= 1.1 x RSS after the first.

Each allocator setting runs in a fresh process: `default` (glibc as is), `node` (the node's own
start-up tuning, `naima_ros.runtime.tune_process`: mallopt incl. one arena) and any `NAME=VALUE`
environment given with --envs (e.g. `MALLOC_ARENA_MAX=1`).

Usage: .venv/bin/python bench/bench_swap_memory.py [--swaps 20] [--size 640x480]
       [--scales 8,16] [--envs default,node,MALLOC_ARENA_MAX=1]
Writes bench/results/swap_memory_<date>.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = "checkpoints/naima_light_x{scale}_demo.safetensors"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status")


def measure(swaps: int, width: int, height: int, scales: list[int], node_tuning: bool) -> dict:
    """In this process: start a slot, swap `swaps` times, RSS after each swap."""
    import numpy as np

    if node_tuning:  # what the node does first thing at start-up
        from naima_ros.runtime import tune_process
        print(f"tuning: {tune_process()}", flush=True)

    from naima_ros.model_slot import ModelSlot, ModelSpec

    os.chdir(REPO)  # the checkpoint parameter is relative, as in config/naima.yaml
    slot = ModelSlot(log_info=lambda message: None)
    warmup = (1, height, width)

    def spec(i: int) -> ModelSpec:
        return ModelSpec("naima", CHECKPOINT, scales[i % len(scales)], "cpu", "fp32")

    slot.start(spec(0), warmup)
    jobs: queue.Queue = queue.Queue()

    def worker():  # the node's worker thread: serves whatever model the slot holds
        while (job := jobs.get()) is not None:
            model = slot.model
            s = model.scale
            rgb = np.full((height // s * s, width // s * s, 3), 100, np.uint8)
            depth = np.full((height // s, width // s), 2.0, np.float32)
            model.predictor(rgb, depth)
            job.set()

    serving = threading.Thread(target=worker, name="worker", daemon=True)
    serving.start()

    def serve_one():
        done = threading.Event()
        jobs.put(done)
        done.wait()

    serve_one()
    rss = [rss_mb()]  # index 0: after start-up and one served frame
    for i in range(1, swaps + 1):
        failures = []
        slot.swap(spec(i), warmup, on_failure=lambda kept, failed: failures.append(failed)).join()
        if failures:
            raise RuntimeError(f"swap {i} failed: {slot.state}")
        serve_one()
        rss.append(rss_mb())
        print(f"swap {i:2d} -> x{slot.model.scale}: RSS {rss[-1]:.0f} MB", flush=True)
    jobs.put(None)
    serving.join()
    return {"rss_mb": rss, "after_first_swap_mb": rss[1], "after_last_swap_mb": rss[-1],
            "ratio_last_to_first_swap": rss[-1] / rss[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--size", default="640x480", help="output WxH of warm-up and frames")
    parser.add_argument("--scales", default="8,16", help="scales the swaps alternate between")
    parser.add_argument("--envs", default="default,node,MALLOC_ARENA_MAX=1",
                        help="allocator settings, one process each")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--node-tuning", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    scales = [int(s) for s in args.scales.split(",")]
    if args.child:
        print("RESULT " + json.dumps(measure(args.swaps, width, height, scales, args.node_tuning)), flush=True)
        return
    results = {}
    for setting in args.envs.split(","):
        env = dict(os.environ)
        if setting not in ("default", "node"):
            name, _, value = setting.partition("=")
            env[name] = value
        cmd = [sys.executable, __file__, "--child", "--swaps", str(args.swaps), "--size",
               args.size, "--scales", args.scales] + (["--node-tuning"] if setting == "node" else [])
        print(f"--- {setting}", flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        print(proc.stdout, end="", flush=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{setting}: child failed:\n{proc.stderr[-3000:]}")
        results[setting] = r = json.loads(line[len("RESULT "):])
        # a crash after the measurement (at interpreter exit) is recorded, not hidden
        r["exit_code"] = proc.returncode
        if proc.returncode:
            r["stderr_tail"] = proc.stderr[-500:]
            print(f"{setting}: exit code {proc.returncode} after measuring: "
                  f"{proc.stderr.strip()[-200:]}", flush=True)
        print(f"{setting}: RSS after swap 1 {r['after_first_swap_mb']:.0f} MB, after swap "
              f"{args.swaps} {r['after_last_swap_mb']:.0f} MB "
              f"(x{r['ratio_last_to_first_swap']:.2f})", flush=True)
    out = Path(args.out) / f"swap_memory_{datetime.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "swaps": args.swaps,
                               "size": args.size, "scales": scales, "results": results},
                              indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
