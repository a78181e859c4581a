"""The one-command demo: sample bag -> node over real DDS -> evaluation report.

    python -m naima_ros.demo --shared-data ../shared/data --out out/demo     (or: make demo)

1. `naima-bag make`: a procedural sequence (a camera panning through rendered rooms, ToF-like
   holes and noise, 16UC1 depth at 1/8 of the RGB size, 10 Hz with jitter and a few lost frames)
   followed, after a pause, by the real Middlebury 2014 Motorcycle frame (scikit-image).
2. `naima-bag replay`: start `naima_node` with its default x8 model (or `--checkpoint`), publish the bag to
   it over DDS (localhost only) at `--rate` x the recorded rate and record what it publishes.
3. `naima-bag eval`: NAIMA vs bicubic vs the guided filter on the served frames, latency, drops;
   the table is printed and the report (markdown, CSV, PNGs) written to `<out>/report/`.
The CPU default (`--rate 0.25`: the 10 Hz recording at 2.5 Hz) keeps the node's drop rate modest
on a 2-core machine; on a GPU use `--rate 1`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]

DEMO_SCALE = 8


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m naima_ros.demo",
                                description=__doc__.split("\n")[0])
    p.add_argument("--shared-data", type=Path,
                   help="the shared data folder (for dataset --source names; optional)")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--checkpoint", help="a .safetensors file or a name (shipped, sensor); default: the node's x8 "
                   "default (shipped)")
    p.add_argument("--frames", type=int, default=80, help="procedural frames (default 80)")
    p.add_argument("--size", default="320x240", help="RGB / output size WxH (default 320x240)")
    p.add_argument("--rate", type=float, default=0.25,
                   help="replay speed factor (default 0.25 of the recorded 10 Hz)")
    p.add_argument("--source", action="append",
                   help="override the bag's sources (naima-bag make --source syntax)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _local_ros_environment() -> None:
    """Keep the demo's DDS traffic on this machine and off other ROS users' domains."""
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")  # distros before Iron


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code (0 ok, 1 missing checkpoint, 2 a bag error)."""
    args = _parser().parse_args(argv)
    _local_ros_environment()
    from naima_ros.bags.evaluate import evaluate_bag
    from naima_ros.bags.io import BagError
    from naima_ros.bags.make import LRConfig, TimingConfig, frames_from_source, make_bag
    from naima_ros.bags.replay import replay_bag
    from naima_ros.bags.report import write_report
    from naima_ros.bags.run import default_checkpoint
    from naima_ros.resources import resolve_checkpoint

    progress = not args.no_progress
    t_start = time.monotonic()
    try:
        checkpoint = (resolve_checkpoint(args.checkpoint, DEMO_SCALE) if args.checkpoint
                      else default_checkpoint(DEMO_SCALE))
    except BagError as exc:
        print(f"demo: the node's default x{DEMO_SCALE} checkpoint is missing: {exc}\n"
              f"demo: pass --checkpoint FILE to use another x{DEMO_SCALE} NAIMA checkpoint", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"demo: checkpoint {args.checkpoint} does not exist: {exc}", file=sys.stderr)
        return 1
    width, height = (int(v) for v in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sample, recorded = out / "sample_bag", out / "replayed_bag"
    timings = {}
    try:
        t = time.monotonic()
        # the motorcycle: a static camera for 3 frames (one of them may be lost, as in a recording)
        specs = args.source or [f"procedural:{args.frames}", "motorcycle:3"]
        sources = [frames_from_source(spec, height=height, width=width, frames=args.frames,
                                      seed=k, shared_data=args.shared_data)
                   for k, spec in enumerate(specs)]
        made = make_bag(sample, sources, size=(width, height),
                        lr=LRConfig(DEMO_SCALE, "16UC1", tof_holes=True, tof_noise=True),
                        timing=TimingConfig(rate_hz=10.0, drop_rate=0.03, gap_s=2.0),
                        overwrite=True, progress=progress)
        timings["make"] = time.monotonic() - t
        print(f"[1/3] sample bag {sample}: {made.frames} frames {width}x{height}, depth "
              f"{width // DEMO_SCALE}x{height // DEMO_SCALE} 16UC1, {made.duration_s:.1f} s at "
              f"10 Hz ({timings['make']:.0f} s)")

        t = time.monotonic()
        replayed = replay_bag(sample, recorded, checkpoint=checkpoint, scale=DEMO_SCALE,
                              rate=args.rate, overwrite=True, progress=progress)
        timings["replay"] = time.monotonic() - t
        print(f"[2/3] replayed over DDS at x{args.rate:g} with {Path(checkpoint).name}: "
              f"{replayed.line()} ({timings['replay']:.0f} s)")

        t = time.monotonic()
        ev = evaluate_bag(recorded, progress=progress)
        report = write_report(ev, out / "report")
        timings["eval"] = time.monotonic() - t
        print(f"[3/3] evaluated {recorded} ({timings['eval']:.0f} s)\n")
    except BagError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    print(ev.table())
    print(f"\nreport: {report} (plots next to it); total {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
