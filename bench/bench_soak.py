"""Soak: the node served by a 15 Hz camera for a long time; its RSS after warm-up must stay flat.

Two processes, as on a robot: the node (`python -m naima_ros.ros.node`, `method:=bicubic` by
default; `--method naima --checkpoint PATH` soaks the network) and bench_delivery's camera (RGB
bgr8 W x H + depth 16UC1 W/8 x H/8 + CameraInfo at 15 Hz, SensorDataQoS). The node's VmRSS is
read from /proc every `--sample` seconds. Reported: RSS at the end of the warm-up, at the end,
the peak, the growth after warm-up in % (issue 10's goal: <= 5 %), the camera pairs sent.
Writes bench/results/soak_<date>_<method>.json.

Usage: .venv/bin/python bench/bench_soak.py [--duration 600] [--warmup 60] [--size 640x480]
       [--method bicubic | --method naima --checkpoint PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_delivery import RATE_HZ, START_TIMEOUT_S  # noqa: E402
from camera_graph import Proc, node_command  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float | None:
    """VmRSS of a process in MiB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="camera seconds")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds not counted")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS reads")
    parser.add_argument("--size", default="640x480", help="RGB (= output) size")
    parser.add_argument("--method", default="bicubic")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    domain_id = 150 + os.getpid() % 50
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    tmp = Path(f"/tmp/naima_soak_{os.getpid()}")
    tmp.mkdir(exist_ok=True)
    go = tmp / "go"
    node_cmd = node_command(args.method, args.checkpoint, width, height)
    camera = str(Path(__file__).resolve().parent / "camera_graph.py")
    node = Proc(node_cmd, env)
    cam = None
    samples = []  # (seconds since the camera started, RSS MiB)
    try:
        node.wait_for("ready", START_TIMEOUT_S)
        cam = Proc([sys.executable, camera, "camera", str(width), str(height), str(RATE_HZ),
                    str(args.duration), str(go)], env)
        go.touch()
        t0 = time.monotonic()
        while cam.proc.poll() is None:
            rss = rss_mb(node.proc.pid)
            if rss is None:
                raise RuntimeError("the node exited:\n" + "\n".join(node.lines[-30:]))
            samples.append((round(time.monotonic() - t0, 1), round(rss, 1)))
            time.sleep(args.sample)
        sent = json.loads(cam.wait_for('"sent"', 60))["sent"]
    finally:
        for proc in (cam, node):
            if proc is not None:
                proc.stop()
    after = [rss for t, rss in samples if t >= args.warmup]
    if not after:
        raise SystemExit(f"no sample after the {args.warmup} s warm-up: run longer")
    result = {
        "size": args.size, "method": args.method, "duration_s": args.duration,
        "warmup_s": args.warmup, "pairs_sent": sent, "rss_after_warmup_mb": after[0],
        "rss_end_mb": after[-1], "rss_peak_mb": max(after),
        "growth_after_warmup_pct": round(100.0 * (after[-1] - after[0]) / after[0], 2),
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"soak_{datetime.date.today().isoformat()}_{args.method}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
