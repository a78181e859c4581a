"""`naima-bag run`: the model over a bag offline, without DDS, as fast as the model goes.

Per pair this does what `NaimaNode._serve` does, with the same conversion code
(`naima_ros.depth_codec`, `naima_ros.geometry`): decode, check sizes and calibration, mask depth
outside [min_depth, max_depth], run the `Upsampler`, mask its output, and produce the node's three
messages (depth_registered/image_rect, camera_info, points), stamped with the depth header.

Pairing is the approximate-time rule of the node's synchroniser, streamed: a depth frame is paired
with the RGB frame nearest in stamp within `slop` (or the identical stamp with `exact_sync`) once
no closer RGB can still arrive. Every input message is copied into the output bag with its log
time; each output is logged at its pair's arrival + the measured processing time, so `eval`
reports compute latency for an offline run. A frame the node would drop (no match, size mismatch,
no CameraInfo, all-invalid depth, ...) is counted with the node's reason. An encoding the node
cannot decode stops the run with an error naming the topic: it concerns the whole topic.
"""
from __future__ import annotations

import collections
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from naima_ros.bags.io import (CAMERA_INFO, IMAGE, POINT_CLOUD, TYPESTORE, BagError, BagReader,
                               BagWriter, Topics, decode_depth_msg, decode_rgb_msg, deserialize,
                               depth_msg, stamp_ns)
from naima_ros.depth_codec import COLOR_ENCODINGS, DEPTH_ENCODINGS
from naima_ros.geometry import depth_to_points, image_size, output_intrinsics

__all__ = ["Drop", "PairMatcher", "RunSummary", "ServeConfig", "bag_scale", "default_checkpoint",
           "run_bag", "serve_pair"]

DEFAULT_CHECKPOINT = "checkpoints/naima_light_x{scale}_demo.safetensors"  # as the node's default


class Drop(Exception):
    """A pair the node would not serve: `reason` is its diagnostics counter name."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ServeConfig:
    """The node parameters that change what a served frame looks like (same names and defaults)."""

    output_encoding: str = "32FC1"
    publish_points: bool = True
    points_stride: int = 1
    points_rgb: bool = True
    min_depth: float = 0.1
    max_depth: float = 10.0
    slop: float = 0.02
    exact_sync: bool = False


def default_checkpoint(scale: int) -> Path:
    """The node's default checkpoint for `scale`, looked up where the node looks.

    Raises:
        BagError: not found (the demo checkpoint is not there yet, or not installed).
    """
    try:  # the node's own resolution (cwd, ament share, venv share, source tree)
        from naima_ros.ros.node import PARAMETERS, resolve_checkpoint
        template = next(p.default for p in PARAMETERS if p.name == "checkpoint")
        try:
            return resolve_checkpoint(template, scale)
        except (FileNotFoundError, ValueError) as exc:
            raise BagError(f"{exc}; pass --checkpoint") from exc
    except ImportError:  # no rclpy on this machine: the same places, without ament
        name = DEFAULT_CHECKPOINT.format(scale=scale)
        roots = [Path.cwd(), Path(sys.prefix) / "share" / "naima_ros",
                 Path(__file__).resolve().parents[2]]
        for root in roots:
            if (root / name).is_file():
                return root / name
        raise BagError(f"checkpoint {name!r} not found in {', '.join(map(str, roots))}; pass "
                       f"--checkpoint") from None


# ---------------------------------------------------------------------- one pair
def serve_pair(upsampler, rgb_msg, depth_msg_, info, config: ServeConfig, topics: Topics):
    """The node's per-pair work on `rosbags` messages.

    Returns:
        (depth_hr (H, W) float32 metres NaN invalid, [output messages (topic, msg)]).

    Raises:
        Drop: the node would drop this pair (reason and message as the node's).
        BagError: an encoding the node does not support (names the topic).
    """
    for name, msg, known, topic in (("rgb", rgb_msg, COLOR_ENCODINGS, topics.rgb),
                                    ("depth", depth_msg_, DEPTH_ENCODINGS, topics.depth)):
        if msg.encoding not in known:
            raise BagError(f"topic {topic}: {name} encoding {msg.encoding!r} is not supported "
                           f"(use one of {', '.join(known)})")
        if msg.height == 0 or msg.width == 0 or len(msg.data) == 0:
            raise Drop("empty_image", f"{name} image is {msg.width}x{msg.height} with "
                       f"{len(msg.data)} bytes")
    if info is None:
        raise Drop("missing_camera_info", f"no CameraInfo on {topics.rgb_info} before this pair")
    try:
        rgb = np.array(decode_rgb_msg(rgb_msg, topics.rgb))  # writable for torch
        depth_m, valid = decode_depth_msg(depth_msg_, topics.depth)
    except BagError as exc:
        raise Drop("malformed_image", str(exc)) from exc
    s = upsampler.scale
    (rgb_h, rgb_w), (h, w) = rgb.shape[:2], depth_m.shape
    if (rgb_h, rgb_w) != (s * h, s * w):
        raise Drop("size_mismatch", f"rgb {rgb_w}x{rgb_h} is not {s} x depth {w}x{h} "
                   f"(model scale {s})")
    roi = (info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height)
    info_size = image_size(info.width, info.height, binning_x=info.binning_x,
                           binning_y=info.binning_y, roi=roi)
    if info_size != (rgb_w, rgb_h):
        raise Drop("invalid_camera_info", f"{topics.rgb_info} describes a {info_size[0]}x"
                   f"{info_size[1]} image but rgb is {rgb_w}x{rgb_h}")
    try:
        intr = output_intrinsics(info.k, info.p, info.width, info.height, s * w, s * h,
                                 binning_x=info.binning_x, binning_y=info.binning_y, roi=roi)
    except ValueError as exc:
        raise Drop("invalid_camera_info", str(exc)) from exc
    with np.errstate(invalid="ignore"):
        valid &= (depth_m >= config.min_depth) & (depth_m <= config.max_depth)
    if not valid.any():
        raise Drop("all_invalid_depth", f"no depth pixel of the {w}x{h} frame is valid in "
                   f"[{config.min_depth}, {config.max_depth}] m")
    try:
        depth_hr = upsampler(rgb, np.where(valid, depth_m, np.float32(np.nan)))
    except Exception as exc:  # noqa: BLE001 (a model failure drops the frame, as in the node)
        raise Drop("inference_error", f"{type(exc).__name__}: {exc}") from exc
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(depth_hr) & (depth_hr >= config.min_depth) & \
            (depth_hr <= config.max_depth)
    depth_hr = np.where(ok, depth_hr, np.float32(np.nan)).astype(np.float32, copy=False)

    hdr = depth_msg_.header
    t = TYPESTORE.types
    out = [(topics.out_image, depth_msg(hdr, depth_hr, config.output_encoding)),
           (topics.out_info, t[CAMERA_INFO](
               header=hdr, height=s * h, width=s * w, distortion_model=info.distortion_model,
               d=np.asarray(info.d, dtype=np.float64), k=intr.k.reshape(-1), r=info.r,
               p=intr.p.reshape(-1), binning_x=0, binning_y=0,
               roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                         width=0, do_rectify=False)))]
    if config.publish_points:
        points = depth_to_points(depth_hr, intr.fx, intr.fy, intr.cx, intr.cy,
                                 rgb=rgb if config.points_rgb else None,
                                 stride=config.points_stride)
        names = ("x", "y", "z", "rgb") if config.points_rgb else ("x", "y", "z")
        point_fields = [t["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=7, count=1)
                        for n, o in zip(names, (0, 4, 8, 16))]
        ph, pw = points.shape
        out.append((topics.out_points, t[POINT_CLOUD](
            header=hdr, height=ph, width=pw, fields=point_fields, is_bigendian=False,
            point_step=points.itemsize, row_step=points.itemsize * pw,
            data=np.frombuffer(points.tobytes(), dtype=np.uint8), is_dense=False)))
    return depth_hr, out


# ---------------------------------------------------------------------- pairing
class PairMatcher:
    """Streamed approximate-time pairing of RGB and depth by header stamp.

    `add_rgb` / `add_depth` feed messages in arrival order; `ready()` yields the pairs that can
    no longer improve and `unmatched` depth frames; `flush()` resolves the rest at the end.
    """

    def __init__(self, slop_s: float, exact: bool = False, keep: int = 64):
        self.slop = 0 if exact else int(slop_s * 1e9)
        self.rgb: collections.deque = collections.deque(maxlen=keep)  # (stamp, msg, log)
        self.depth: collections.deque = collections.deque()  # (stamp, msg, log)
        self.used: set[int] = set()

    def add_rgb(self, stamp: int, msg, log_ns: int) -> None:
        self.rgb.append((stamp, msg, log_ns))

    def add_depth(self, stamp: int, msg, log_ns: int) -> None:
        self.depth.append((stamp, msg, log_ns))

    def _best(self, stamp: int):
        best = None
        for item in self.rgb:
            gap = abs(item[0] - stamp)
            if gap <= self.slop and item[0] not in self.used and (best is None or
                                                                   gap < abs(best[0] - stamp)):
                best = item
        return best

    def ready(self, final: bool = False):
        """Yield ("pair", depth, rgb) or ("unmatched", depth, None) for settled depth frames."""
        newest_rgb = self.rgb[-1][0] if self.rgb else None
        while self.depth:
            stamp = self.depth[0][0]
            settled = final or (newest_rgb is not None and newest_rgb > stamp + self.slop)
            if not settled:
                return
            depth = self.depth.popleft()
            best = self._best(stamp)
            if best is None:
                yield "unmatched", depth, None
            else:
                self.used.add(best[0])
                yield "pair", depth, best


# ---------------------------------------------------------------------- the run
@dataclass
class RunSummary:
    input_messages: int = 0
    pairs: int = 0
    served: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)
    model_s: list = field(default_factory=list)
    checkpoint: str = ""

    def line(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        mean = f"{1000 * np.mean(self.model_s):.0f} ms" if self.model_s else "n/a"
        return (f"{self.served} frames served of {self.pairs} pairs; dropped: {drops}; "
                f"mean processing {mean}")


def run_bag(input_bag: str | Path, output_bag: str | Path, *, upsampler=None,
            checkpoint: str | Path | None = None, scale: int | None = None, device: str = "auto",
            precision: str = "auto", config: ServeConfig = ServeConfig(),
            topics: Topics = Topics(), storage: str = "mcap", overwrite: bool = False,
            progress: bool = True, log=print) -> RunSummary:
    """Run the model over `input_bag`; write inputs + the node's outputs to `output_bag`.

    Args:
        input_bag: a bag with the RGB, CameraInfo and depth topics of `topics`.
        output_bag: the bag to create.
        upsampler: an `Upsampler` (or anything with its call API and `.scale`); default: load
            `checkpoint` (default: the node's default checkpoint for `scale`).
        scale: model scale when `checkpoint` is a `{scale}` template (default: the bag's
            RGB/depth width ratio).
        device, precision: for loading the checkpoint.
        config: the node parameters that shape the outputs.
        topics: topic names.
        storage, overwrite: of the output bag.
        progress: show a progress bar.
        log: where warnings go (one per drop reason, then counted).

    Returns:
        A `RunSummary`.

    Raises:
        BagError: a missing topic, an unsupported encoding, a truncated or corrupt input (the
            output bag then holds everything processed before, finalised).
    """
    from tqdm import tqdm

    summary = RunSummary()
    with BagReader(input_bag) as reader:
        reader.require({"rgb": topics.rgb, "rgb_info": topics.rgb_info, "depth": topics.depth},
                       {"rgb": IMAGE, "rgb_info": CAMERA_INFO, "depth": IMAGE})
        if upsampler is None:
            upsampler, summary.checkpoint = _load(reader, checkpoint, scale, device, precision,
                                                  topics)
        matcher = PairMatcher(config.slop, config.exact_sync)
        infos: collections.deque = collections.deque(maxlen=256)  # (log time, CameraInfo)

        def info_at(log_ns: int):
            """The newest CameraInfo logged by `log_ns`: what the node holds when the pair
            completes (pairs settle later here, once no closer RGB can come)."""
            return next((m for t, m in reversed(infos) if t <= log_ns), None)

        warned: set[str] = set()
        total = sum(reader.message_counts.values())
        with BagWriter(output_bag, storage, overwrite=overwrite,
                       custom_data=reader.custom_data) as writer, \
                tqdm(total=total, desc=f"run {Path(input_bag).name}", unit="msg",
                     disable=not progress) as bar:

            def settle(final: bool = False) -> None:
                for kind, (d_stamp, d_msg, d_log), rgb in list(matcher.ready(final)):
                    summary.pairs += kind == "pair"
                    try:
                        if kind == "unmatched":
                            raise Drop("sync_unmatched", f"no {topics.rgb} message within "
                                       f"{config.slop} s of depth stamp {d_stamp} ns")
                        t0 = time.perf_counter()
                        _, outputs = serve_pair(upsampler, rgb[1], d_msg,
                                                info_at(max(d_log, rgb[2])), config, topics)
                        elapsed = time.perf_counter() - t0
                    except Drop as drop:
                        summary.dropped[drop.reason] += 1
                        if drop.reason not in warned:
                            warned.add(drop.reason)
                            log(f"warning: dropped [{drop.reason}]: {drop} (further drops of "
                                f"this kind are counted, not shown)")
                        continue
                    t_out = max(d_log, rgb[2]) + int(elapsed * 1e9)
                    for topic, msg in outputs:
                        writer.write(topic, msg, t_out)
                    summary.served += 1
                    summary.model_s.append(elapsed)
                    bar.set_postfix(served=summary.served, dropped=sum(summary.dropped.values()))

            outputs = {topics.out_image: IMAGE, topics.out_info: CAMERA_INFO}
            if config.publish_points:
                outputs[topics.out_points] = POINT_CLOUD
            for topic, msgtype in outputs.items():  # listed even if no frame is served
                writer.declare(topic, msgtype)
            # the node's outputs of an earlier run are replaced, not copied next to new ones
            skip = {t for t in topics.outputs() if t in reader.topics}
            if skip:
                log(f"note: not copying {', '.join(sorted(skip))} from the input bag (the "
                    f"outputs are made fresh)")
            for conn, log_ns, raw in reader.raw_messages():
                summary.input_messages += 1
                bar.update()
                if conn.topic in skip:
                    continue
                try:
                    writer.write_raw(conn.topic, conn.msgtype, log_ns, raw, source=conn)
                except BagError as exc:  # a type rosbags cannot describe: leave that topic out
                    if conn.topic in (topics.rgb, topics.rgb_info, topics.depth):
                        raise
                    skip.add(conn.topic)
                    log(f"warning: not copying {conn.topic}: {exc}")
                if conn.topic == topics.rgb_info:
                    infos.append((log_ns, deserialize(raw, conn.msgtype, conn.topic,
                                                      reader.path)))
                elif conn.topic in (topics.rgb, topics.depth):
                    msg = deserialize(raw, conn.msgtype, conn.topic, reader.path)
                    if conn.topic == topics.rgb:
                        matcher.add_rgb(stamp_ns(msg), msg, log_ns)
                    else:
                        matcher.add_depth(stamp_ns(msg), msg, log_ns)
                    settle()
            settle(final=True)
    return summary


def _load(reader: BagReader, checkpoint, scale, device, precision, topics: Topics):
    from naima_ros.checkpoint import CheckpointError
    from naima_ros.inference import Upsampler

    if scale is None:
        scale = bag_scale(reader, topics) or 8
    if checkpoint is None:
        path = default_checkpoint(scale)
    else:
        path = Path(str(checkpoint).format(scale=scale))
        if not path.is_file():
            raise BagError(f"checkpoint {path} does not exist")
    try:
        return Upsampler.from_checkpoint(path, device=device, precision=precision), str(path)
    except (CheckpointError, ValueError, OSError) as exc:
        raise BagError(f"cannot load checkpoint {path}: {exc}") from exc


def bag_scale(reader: BagReader, topics: Topics) -> int | None:
    """RGB width / depth width of the first frame of each, if an integer."""
    widths: dict[str, int] = {}
    for topic, _, msg in reader.messages([topics.rgb, topics.depth]):
        widths.setdefault(topic, int(msg.width))
        if len(widths) == 2:
            break
    reader.read_count = 0  # the real pass reads from the start again
    if len(widths) == 2 and widths[topics.depth] and \
            widths[topics.rgb] % widths[topics.depth] == 0:
        return widths[topics.rgb] // widths[topics.depth]
    return None
