"""`naima-bag`: make, run, replay and evaluate recordings for the depth node (rosbag2 or ROS 1
.bag in, rosbag2 out).

  naima-bag make OUTPUT_BAG --source procedural:60 --source motorcycle [--tof-holes --tof-noise]
  naima-bag run INPUT_BAG OUTPUT_BAG [--checkpoint FILE]        offline, no DDS
  naima-bag replay INPUT_BAG OUTPUT_BAG [--rate 0.5]             online, over DDS, starts the node
  naima-bag eval OUTPUT_BAG --report DIR                         table + markdown + PNGs

An unregistered depth camera is registered as the node does (`--register-depth` with
`--depth-info-topic` and `--depth-to-rgb-translation/-rotation` for run and eval; `--param
register_depth:=true` for replay, which also publishes the bag's time on /clock and each topic with
the QoS its recording offered).

Every topic is renameable (`--rgb-topic`, `--depth-topic`, `--gt-topic`, ...). Errors (a missing
topic, an unknown encoding, a truncated bag, an existing output) are one line naming the topic or
file and exit code 2; whatever was written before stays a readable bag.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from naima_ros.bags.io import STORAGES, BagError, Topics
from naima_ros.contract import DEFAULTS as d
from naima_ros.contract import parameter
from naima_ros.options import BAG_DEFAULT_BASELINES, BASELINE_METHODS, METHODS, PRECISIONS

__all__ = ["main", "build_parser"]

EXIT_ERROR = 2
DESCRIPTION = ("Make, run, replay and evaluate recordings for the NAIMA depth node: rosbag2 "
               "(folder, .mcap, .db3) or ROS 1 .bag in, rosbag2 out.")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    return w, h


def _baselines(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if names == ("none",):
        return ()
    bad = [n for n in names if n not in BASELINE_METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown baseline(s) {', '.join(bad) or repr(text)}; choose from "
                                         f"{', '.join(BASELINE_METHODS)} or none")
    return names


def _add_topics(p: argparse.ArgumentParser, roles: list[str]) -> None:
    g = p.add_argument_group("topics (defaults as the node's, with a leading /)")
    defaults = Topics()
    for role in roles:
        g.add_argument(f"--{role.replace('_', '-')}-topic", dest=f"topic_{role}",
                       default=getattr(defaults, role), metavar="TOPIC",
                       help=f"default {getattr(defaults, role)}")


def _topics(args) -> Topics:
    values = {r: getattr(args, f"topic_{r}") for r in Topics.roles()
              if hasattr(args, f"topic_{r}")}
    return Topics(**values)


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", choices=list(STORAGES), default="mcap",
                   help="output storage plugin (default mcap)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output bag (never anything that is not a bag)")


def _add_node_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="NAIMA .safetensors ('{scale}' is replaced); default: "
                   "the node's default, the shipped model of the scale")
    p.add_argument("--scale", type=int, help="model scale (default: the bag's RGB/depth ratio)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="naima-bag", description=DESCRIPTION)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    common = argparse.ArgumentParser(add_help=False)  # also accepted after the subcommand
    common.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    all_roles = Topics.roles()

    from naima_ros.bags.make import SOURCES
    p = sub.add_parser("make", parents=[common],
                       help="write a sensor-like bag from datasets or procedural scenes")
    p.add_argument("output", type=Path, metavar="OUTPUT_BAG")
    p.add_argument("--source", action="append", required=True, metavar="NAME[:COUNT][@PATH]",
                   help=f"repeatable, concatenated in order; NAME is one of {', '.join(SOURCES)}; "
                   f"datasets come from --shared-data, or from the full dataset at PATH")
    p.add_argument("--frames", type=int, default=60,
                   help="frames of a procedural source without :COUNT (default 60)")
    p.add_argument("--size", type=_size, metavar="WxH",
                   help="frame size (default: the first frame's, cropped to the scale)")
    p.add_argument("--scale", type=int, default=d["scale"],
                   help=f"RGB / depth size ratio (default {d['scale']})")
    p.add_argument("--encoding", choices=("16UC1", "32FC1"), default="16UC1",
                   help="LR depth and ground truth encoding (default 16UC1 mm)")
    p.add_argument("--tof-holes", action="store_true",
                   help="ToF-like holes: blobs, depth edges, dark surfaces, beyond 8 m")
    p.add_argument("--tof-noise", action="store_true", help="ToF-like distance-dependent noise")
    p.add_argument("--tof-model", action="store_true",
                   help="the sensor protocol's ToF camera instead (naima_ros.data.tof: footprint means, "
                   "flying pixels, multipath, noise, dropouts, misregistration; one sensor per frame)")
    p.add_argument("--real-lr", action="store_true",
                   help="a frame's own sensor LR where it has one (the RGB-D-D real scenes' phone ToF "
                   "at 192x144), at its own size")
    p.add_argument("--rate", type=float, default=10.0, help="frame rate, Hz (default 10)")
    p.add_argument("--jitter-ms", type=float, default=2.0, help="stamp jitter sigma (default 2)")
    p.add_argument("--drop-rate", type=float, default=0.03,
                   help="probability a frame loses RGB, depth or both (default 0.03)")
    p.add_argument("--gap-s", type=float, default=0.0,
                   help="pause between two sources (s, default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shared-data", type=Path,
                   help="the shared data folder (default $NAIMA_SHARED_DATA or ../shared/data)")
    _add_output(p)
    _add_topics(p, ["rgb", "rgb_info", "depth", "gt"])

    p = sub.add_parser("run", parents=[common],
                       help="serve a bag offline as the node would (no DDS)")
    p.add_argument("input", type=Path, metavar="INPUT_BAG")
    p.add_argument("output", type=Path, metavar="OUTPUT_BAG")
    _add_node_model(p)
    p.add_argument("--method", choices=METHODS, default=d["method"],
                   help=f"the network or a classical baseline (default {d['method']})")
    p.add_argument("--device", default=d["device"], help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default=d["precision"], choices=PRECISIONS)
    p.add_argument("--output-encoding", choices=parameter("output_encoding").choices,
                   default=d["output_encoding"])
    p.add_argument("--stamp-source", choices=parameter("stamp_source").choices,
                   default=d["stamp_source"], help="outputs stamped like the depth (default) or "
                   "like the RGB image")
    p.add_argument("--no-points", action="store_true", help="do not write the point cloud")
    p.add_argument("--points-stride", type=int, default=d["points_stride"])
    p.add_argument("--points-xyz", action="store_true", help="XYZ cloud instead of XYZRGB")
    p.add_argument("--min-depth", type=float, default=d["min_depth"], help="m")
    p.add_argument("--max-depth", type=float, default=d["max_depth"], help="m")
    p.add_argument("--resize-rgb-to-multiple", action="store_true",
                   help="resize RGB to scale x depth when it is not exactly that")
    p.add_argument("--max-input-pixels", type=int, default=d["max_input_pixels"],
                   help="larger frames are dropped")
    p.add_argument("--slop", type=float, default=d["slop"], help="RGB/depth pairing slop, s")
    p.add_argument("--exact-sync", action="store_true", help="pair identical stamps only")
    _add_transports(p)
    _add_output(p)
    _add_registration(p)
    p.add_argument("--min-confidence", type=float, default=d["min_confidence"],
                   help="publish a filled hole from this confidence on (0: all, 1: none)")
    _add_topics(p, ["rgb", "rgb_info", "depth", "depth_info", "out_image", "out_confidence",
                    "out_info", "out_points"])

    p = sub.add_parser("replay", parents=[common],
                       help="start the node, play a bag to it over DDS, record it")
    p.add_argument("input", type=Path, metavar="INPUT_BAG")
    p.add_argument("output", type=Path, metavar="OUTPUT_BAG")
    _add_node_model(p)
    p.add_argument("--method", choices=METHODS, default=d["method"],
                   help=f"the node's method (default {d['method']}; a baseline needs no "
                   f"checkpoint)")
    p.add_argument("--rate", type=float, default=1.0,
                   help="playback speed factor (default 1: the recorded rate)")
    p.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="a node parameter (repeatable), e.g. device:=cpu")
    p.add_argument("--params-file", help="node parameters YAML, e.g. config/naima.yaml")
    p.add_argument("--no-node", action="store_true",
                   help="do not start the node: one is running on these topics already")
    p.add_argument("--node-name", default="naima")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="s")
    p.add_argument("--settle", type=float, default=3.0,
                   help="stop once no output arrived for this long after the end (s)")
    p.add_argument("--no-points", action="store_true", help="do not record the point cloud")
    p.add_argument("--no-clock", action="store_true",
                   help="do not publish the bag's time on /clock (default: publish it, as "
                   "`ros2 bag play --clock`)")
    _add_output(p)
    _add_topics(p, all_roles)

    p = sub.add_parser("eval", parents=[common],
                       help="score an output bag against its ground truth")
    p.add_argument("bag", type=Path, metavar="OUTPUT_BAG")
    p.add_argument("--report", type=Path, required=True, metavar="DIR",
                   help="folder for report.md, frames.csv and the PNG plots")
    p.add_argument("--min-depth", type=float, default=d["min_depth"], help="node's min_depth, m")
    p.add_argument("--max-depth", type=float, default=d["max_depth"], help="node's max_depth, m")
    p.add_argument("--slop", type=float, default=d["slop"], help="RGB/depth pairing slop, s")
    p.add_argument("--strip-frame", default="auto",
                   help="frame of the qualitative strip: auto (motorcycle, else the last "
                   "served), last, or an index")
    p.add_argument("--baselines", default=",".join(BAG_DEFAULT_BASELINES), type=_baselines,
                   help="comma-separated baseline predictors scored beside the node's output "
                   f"({', '.join(BASELINE_METHODS)}; default {','.join(BAG_DEFAULT_BASELINES)}; "
                   "none)")
    p.add_argument("--scale", type=int, help="the node's scale (default: ground-truth width / "
                   "depth width; set it with --register-depth)")
    _add_transports(p)
    _add_registration(p)
    p.add_argument("--min-confidence", type=float, default=d["min_confidence"],
                   help="the node's min_confidence, given to the baselines")
    _add_topics(p, ["rgb", "rgb_info", "depth", "depth_info", "gt", "out_image", "out_confidence",
                    "diagnostics"])
    return parser


def _make(args) -> int:
    from naima_ros.bags.make import LRConfig, TimingConfig, frames_from_source, make_bag

    width, height = args.size if args.size else (None, None)
    sources = [frames_from_source(spec, height=height, width=width, frames=args.frames,
                                  seed=args.seed + k, shared_data=args.shared_data)
               for k, spec in enumerate(args.source)]
    summary = make_bag(
        args.output, sources, size=args.size,
        lr=LRConfig(args.scale, args.encoding, args.tof_holes, args.tof_noise, args.tof_model, args.real_lr),
        timing=TimingConfig(rate_hz=args.rate, jitter_ms=args.jitter_ms,
                            drop_rate=args.drop_rate, gap_s=args.gap_s),
        topics=_topics(args), storage=args.storage, overwrite=args.overwrite, seed=args.seed,
        progress=not args.no_progress)
    w, h = summary.size
    depth = "each frame's own sensor LR where it has one" if args.real_lr else \
        f"depth {w // args.scale}x{h // args.scale}"
    print(f"wrote {args.output}: {summary.frames} frames {w}x{h} ({depth}, {args.encoding}), "
          f"{summary.duration_s:.1f} s; dropped "
          f"{summary.dropped_rgb} RGB and {summary.dropped_depth} depth frames")
    return 0


def _run(args) -> int:
    from naima_ros.bags.run import run_bag
    from naima_ros.contract import check_parameters
    from naima_ros.serving import ServeConfig

    config = ServeConfig(output_encoding=args.output_encoding, stamp_source=args.stamp_source,
                         publish_points=not args.no_points,
                         points_stride=args.points_stride, points_rgb=not args.points_xyz,
                         min_depth=args.min_depth, max_depth=args.max_depth,
                         resize_rgb_to_multiple=args.resize_rgb_to_multiple,
                         max_input_pixels=args.max_input_pixels, slop=args.slop,
                         exact_sync=args.exact_sync, rgb_transport=args.rgb_transport,
                         depth_transport=args.depth_transport, min_confidence=args.min_confidence,
                         **_registration(args))
    _check_min_confidence(args)
    reason = check_parameters({"min_depth": args.min_depth, "max_depth": args.max_depth}, {})
    if reason:
        raise BagError(reason)
    summary = run_bag(args.input, args.output, method=args.method, checkpoint=args.checkpoint,
                      scale=args.scale, device=args.device, precision=args.precision,
                      config=config, topics=_topics(args), storage=args.storage,
                      overwrite=args.overwrite, progress=not args.no_progress,
                      log=lambda m: print(m, file=sys.stderr))
    print(f"wrote {args.output}: {summary.line()}")
    return 0


def _replay(args) -> int:
    from naima_ros.bags.replay import parse_params, replay_bag

    summary = replay_bag(args.input, args.output, method=args.method,
                         checkpoint=args.checkpoint, scale=args.scale,
                         rate=args.rate, topics=_topics(args), params=parse_params(args.param),
                         params_file=args.params_file, start_node=not args.no_node,
                         node_name=args.node_name, startup_timeout=args.startup_timeout,
                         settle_s=args.settle, record_points=not args.no_points,
                         storage=args.storage, overwrite=args.overwrite, clock=not args.no_clock,
                         progress=not args.no_progress, log=lambda m: print(m, file=sys.stderr))
    print(f"wrote {args.output}: {summary.line()}")
    return 0


def _add_registration(p) -> None:
    """An unregistered depth camera, registered as the node's register_depth does."""
    g = p.add_argument_group("registration (the node's register_depth)")
    g.add_argument("--register-depth", action="store_true",
                   help="reproject the depth onto the RGB camera's grid with the depth "
                   "CameraInfo (--depth-info-topic) and the extrinsics below")
    g.add_argument("--depth-to-rgb-translation", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   default=d["depth_to_rgb_translation"],
                   help="t of p_rgb = R p_depth + t, metres (tf2_echo <rgb frame> <depth frame>)")
    g.add_argument("--depth-to-rgb-rotation", type=float, nargs=4, metavar=("X", "Y", "Z", "W"),
                   default=d["depth_to_rgb_rotation"], help="R as a quaternion x y z w")


def _registration(args) -> dict:
    """The registration fields of a ServeConfig from the options, checked as the node's."""
    from naima_ros.contract import check_parameters

    values = {"depth_to_rgb_translation": tuple(args.depth_to_rgb_translation),
              "depth_to_rgb_rotation": tuple(args.depth_to_rgb_rotation)}
    reason = check_parameters(values, {"min_depth": 0.0, "max_depth": 1.0})
    if reason:
        raise BagError(reason)
    return {"register_depth": args.register_depth, **values}


def _add_transports(p) -> None:
    """Input transports as the node subscribes them (image_transport naming)."""
    p.add_argument("--rgb-transport", choices=parameter("rgb_transport").choices,
                   default=d["rgb_transport"],
                   help="compressed: read CompressedImage from <rgb topic>/compressed")
    p.add_argument("--depth-transport", choices=parameter("depth_transport").choices,
                   default=d["depth_transport"],
                   help="compressedDepth: read <depth topic>/compressedDepth")


def _eval(args) -> int:
    from naima_ros.bags.evaluate import evaluate_bag
    from naima_ros.bags.report import write_report
    from naima_ros.serving import ServeConfig

    _check_min_confidence(args)
    ev = evaluate_bag(args.bag, topics=_topics(args), min_depth=args.min_depth,
                      max_depth=args.max_depth, slop=args.slop, strip_frame=args.strip_frame,
                      baselines=args.baselines, progress=not args.no_progress,
                      rgb_transport=args.rgb_transport, depth_transport=args.depth_transport,
                      registration=ServeConfig(**_registration(args)), scale=args.scale,
                      min_confidence=args.min_confidence)
    print(ev.table())
    print(f"report: {write_report(ev, args.report)}")
    return 0


def _check_min_confidence(args) -> None:
    """--min-confidence by the predictors' own check (`naima_ros.confidence`), as a bag-tool error."""
    from naima_ros.confidence import check_min_confidence

    try:
        check_min_confidence(args.min_confidence)
    except ValueError as exc:
        raise BagError(f"--{exc}".replace("min_confidence", "min-confidence", 1)) from exc


def _terminate(signum, frame):
    raise KeyboardInterrupt


COMMANDS = {"make": _make, "run": _run, "replay": _replay, "eval": _eval}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `naima-bag`; returns the exit code (0 ok, 2 error)."""
    from naima_ros.data.common import DatasetError
    try:
        from naima_ros.checkpoint import CheckpointError
    except ImportError:  # no torch (a baseline-only install): no checkpoint is ever read
        CheckpointError = BagError  # noqa: N806

    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # `kill` ends a run like Ctrl-C does: the node is stopped, the output bag finalised
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return COMMANDS[args.command](args)
    except (BagError, CheckpointError, DatasetError) as exc:
        print(f"naima-bag {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"naima-bag {args.command}: interrupted; the output bag keeps what was written",
              file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
