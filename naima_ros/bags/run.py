"""`naima-bag run`: the node's serving path over a bag offline, without DDS, as fast as it goes.

Every pair goes through `naima_ros.serving.FrameServer`, the code the node runs: the same checks
in the same order, the same drop reasons, the same predictor call and output arrays; this module
only pairs, builds `rosbags` messages and writes them. Options default to the node's parameters
(`naima_ros.contract.PARAMETERS`).

Pairing is the approximate-time rule of the node's synchroniser, streamed: a depth frame is paired
with the RGB frame nearest in stamp within `slop` (or the identical stamp with `exact_sync`) once
no closer RGB can still arrive. Every input message is copied into the output bag with its log
time; each output is logged at its pair's arrival + the measured processing time, so `eval`
reports compute latency for an offline run. A pair the node would drop (an unsupported encoding,
a size mismatch, no CameraInfo, all-invalid depth, ...) is counted with the node's reason; a
depth frame with no RGB partner is `sync_unmatched`. Compressed inputs are read as the node
subscribes them (`config.rgb_transport` compressed: `<rgb topic>/compressed`, `depth_transport`
compressedDepth: `<depth topic>/compressedDepth`) and decoded in `serving`.
"""
from __future__ import annotations

import collections
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from naima_ros.bags.io import (CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, POINT_CLOUD, TYPESTORE, BagError, BagReader,
                               BagWriter, Topics, deserialize, header, image_msg)
from naima_ros.contract import DEFAULTS
from naima_ros.drops import Drop
from naima_ros.resources import resolve_checkpoint
from naima_ros.serving import FrameServer, ServeConfig, point_fields, stamp_ns


__all__ = ["PairMatcher", "RunSummary", "bag_scale", "default_checkpoint", "run_bag",
           "serve_pair"]


def default_checkpoint(scale: int) -> Path:
    """The node's default checkpoint for `scale`, looked up where the node looks.

    Raises:
        BagError: not found (the demo checkpoint is not there yet, or not installed).
    """
    try:
        return resolve_checkpoint(DEFAULTS["checkpoint"], scale)
    except (FileNotFoundError, ValueError) as exc:
        raise BagError(f"{exc}; pass --checkpoint") from exc


# ---------------------------------------------------------------------- one pair
def serve_pair(server: FrameServer, predictor, rgb_msg, depth_msg, info, config: ServeConfig,
               topics: Topics, depth_info=None):
    """The node's per-pair work on `rosbags` messages (`depth_info`: the depth CameraInfo, with
    `config.register_depth`).

    Returns:
        (the `ServedFrame`, [output messages (topic, msg)]).

    Raises:
        Drop: the node would drop this pair (reason and message as the node's).
    """
    frame = server.serve(predictor, rgb_msg, depth_msg, info, config, depth_info)
    t = TYPESTORE.types
    hdr = header(frame.stamp_ns, frame.frame_id)
    ci = frame.camera_info
    out = [(topic, image_msg(hdr, enc.data, enc.encoding, enc.height, enc.width, enc.step,
                             enc.is_bigendian))
           for topic, enc in ((topics.out_image, frame.image),
                              (topics.out_confidence, frame.confidence_image))]
    out.append((topics.out_info, t[CAMERA_INFO](
        header=hdr, height=ci.height, width=ci.width, distortion_model=ci.distortion_model,
        d=np.asarray(ci.d, dtype=np.float64), k=ci.k, r=ci.r, p=ci.p, binning_x=0, binning_y=0,
        roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))))
    if frame.points is not None:
        points = frame.points
        ph, pw = points.shape
        fields = [t["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=c)
                  for n, o, d, c in point_fields(points)]
        out.append((topics.out_points, t[POINT_CLOUD](
            header=hdr, height=ph, width=pw, fields=fields, is_bigendian=False,
            point_step=points.itemsize, row_step=points.itemsize * pw,
            data=np.frombuffer(points.tobytes(), dtype=np.uint8), is_dense=False)))
    return frame, out


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

    def add_rgb(self, stamp: int, msg, log_ns: int) -> None:
        self.rgb.append((stamp, msg, log_ns))

    def add_depth(self, stamp: int, msg, log_ns: int) -> None:
        self.depth.append((stamp, msg, log_ns))

    def _best(self, stamp: int):
        best = None
        for item in self.rgb:
            gap = abs(item[0] - stamp)
            if gap <= self.slop and (best is None or gap < abs(best[0] - stamp)):
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
                # each RGB frame pairs once; its stamp may come again (a bag loop, a restart)
                self.rgb = collections.deque((i for i in self.rgb if i is not best),
                                             maxlen=self.rgb.maxlen)
                yield "pair", depth, best


# ---------------------------------------------------------------------- the run
@dataclass
class RunSummary:
    input_messages: int = 0
    pairs: int = 0
    served: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)
    model_s: list = field(default_factory=list)
    events: collections.Counter = field(default_factory=collections.Counter)
    checkpoint: str = ""
    method: str = ""

    def line(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        mean = f"{1000 * np.mean(self.model_s):.0f} ms" if self.model_s else "n/a"
        return (f"{self.served} frames served of {self.pairs} pairs; dropped: {drops}; "
                f"mean processing {mean}")


def run_bag(input_bag: str | Path, output_bag: str | Path, *, predictor=None,
            method: str = DEFAULTS["method"], checkpoint: str | Path | None = None,
            scale: int | None = None, device: str = DEFAULTS["device"],
            precision: str = DEFAULTS["precision"], config: ServeConfig = ServeConfig(),
            topics: Topics = Topics(), storage: str = "mcap", overwrite: bool = False,
            progress: bool = True, log=print) -> RunSummary:
    """Serve `input_bag` as the node would; write inputs + the node's outputs to `output_bag`.

    Args:
        input_bag: a bag with the RGB, CameraInfo and depth topics of `topics`.
        output_bag: the bag to create.
        predictor: a predictor (`naima_ros.predictors`); default: load `method` as the node
            does, with `checkpoint` (default: the node's default checkpoint for `scale`).
        method: `naima` or a baseline (`naima_ros.options.METHODS`).
        scale: model scale, also for a `{scale}` template (default: the bag's RGB/depth width
            ratio).
        device, precision: for loading the checkpoint.
        config: the node parameters that shape the outputs.
        topics: topic names.
        storage, overwrite: of the output bag.
        progress: show a progress bar.
        log: where warnings go (one per drop reason, then counted).

    Returns:
        A `RunSummary`.

    Raises:
        BagError: a missing topic or checkpoint, a truncated or corrupt input (the output bag
            then holds everything processed before, finalised).
    """
    from tqdm import tqdm

    summary = RunSummary()
    # compressed inputs as the node subscribes them: <topic>/compressed[Depth] (image_transport)
    rgb_topic, depth_topic = (
        topic if transport == "raw" else f"{topic}/{transport}"
        for topic, transport in ((topics.rgb, config.rgb_transport),
                                 (topics.depth, config.depth_transport)))
    topics = dataclasses.replace(topics, rgb=rgb_topic, depth=depth_topic)
    with BagReader(input_bag) as reader:
        required = {"rgb": topics.rgb, "rgb_info": topics.rgb_info, "depth": topics.depth}
        if config.register_depth:
            required["depth_info"] = topics.depth_info
        reader.require(required,
                       {"rgb": IMAGE if config.rgb_transport == "raw" else COMPRESSED_IMAGE,
                        "rgb_info": CAMERA_INFO, "depth_info": CAMERA_INFO,
                        "depth": IMAGE if config.depth_transport == "raw" else COMPRESSED_IMAGE})
        for topic, why in reader.skipped.items():
            log(f"note: {topic} is left out of the ROS 1 bag: {why}")
        if predictor is None:
            predictor, summary.checkpoint = _load(reader, method, checkpoint, scale, device,
                                                  precision, topics)
        summary.method = getattr(predictor, "method", method)

        def on_event(name: str, message: str) -> None:
            summary.events[name] += 1
            log(f"warning: {message}")

        server = FrameServer(on_event=on_event)
        matcher = PairMatcher(config.slop, config.exact_sync)
        # (log time, CameraInfo) of the RGB camera and, with register_depth, the depth camera
        infos = {topics.rgb_info: collections.deque(maxlen=256)}
        if config.register_depth:
            infos[topics.depth_info] = collections.deque(maxlen=256)

        def info_at(topic: str, log_ns: int):
            """The newest CameraInfo on `topic` logged by `log_ns`: what the node holds when the
            pair completes (pairs settle later here, once no closer RGB can come)."""
            return next((m for t, m in reversed(infos.get(topic, ())) if t <= log_ns), None)

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
                        t_pair = max(d_log, rgb[2])
                        _, outputs = serve_pair(server, predictor, rgb[1], d_msg,
                                                info_at(topics.rgb_info, t_pair), config, topics,
                                                info_at(topics.depth_info, t_pair))
                        elapsed = time.perf_counter() - t0
                    except Drop as drop:
                        summary.dropped[drop.reason] += 1
                        if drop.reason not in warned:
                            warned.add(drop.reason)
                            log(f"warning: dropped [{drop.reason}] the pair of {topics.depth} "
                                f"stamp {d_stamp} ns: {drop} (further drops of this kind are "
                                f"counted, not shown)")
                        continue
                    t_out = max(d_log, rgb[2]) + int(elapsed * 1e9)
                    for topic, msg in outputs:
                        writer.write(topic, msg, t_out)
                    summary.served += 1
                    summary.model_s.append(elapsed)
                    bar.set_postfix(served=summary.served, dropped=sum(summary.dropped.values()))

            outputs = {topics.out_image: IMAGE, topics.out_confidence: IMAGE,
                       topics.out_info: CAMERA_INFO}
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
                    if conn.topic in (topics.rgb, topics.depth, *infos):
                        raise
                    skip.add(conn.topic)
                    log(f"warning: not copying {conn.topic}: {exc}")
                if conn.topic in infos:
                    infos[conn.topic].append((log_ns, deserialize(raw, conn.msgtype, conn.topic,
                                                                  reader.path)))
                elif conn.topic in (topics.rgb, topics.depth):
                    msg = deserialize(raw, conn.msgtype, conn.topic, reader.path)
                    if conn.topic == topics.rgb:
                        matcher.add_rgb(stamp_ns(msg.header.stamp), msg, log_ns)
                    else:
                        matcher.add_depth(stamp_ns(msg.header.stamp), msg, log_ns)
                    settle()
            settle(final=True)
    return summary


def _load(reader: BagReader, method, checkpoint, scale, device, precision, topics: Topics):
    """The predictor the node would load for these settings, and its checkpoint file."""
    from naima_ros import runtime
    from naima_ros.model_slot import ModelSlot, ModelSpec

    if scale is None:
        scale = bag_scale(reader, topics) or DEFAULTS["scale"]
    template = DEFAULTS["checkpoint"] if checkpoint is None else str(checkpoint)
    spec = ModelSpec(method, template, int(scale), device, precision)
    runtime.set_torch_threads(DEFAULTS["torch_threads"])  # the node's threads: the same bits
    try:
        model = ModelSlot().load(spec)
    except FileNotFoundError as exc:
        raise BagError(f"{exc}; pass --checkpoint" if checkpoint is None else str(exc)) from exc
    except (ValueError, OSError) as exc:  # CheckpointError is a ValueError
        raise BagError(f"cannot load {method} (checkpoint {template}, x{scale}): {exc}") from exc
    return model.predictor, str(model.path or "")


def bag_scale(reader: BagReader, topics: Topics) -> int | None:
    """RGB width / depth width of the first frame of each, if an integer."""
    widths: dict[str, int] = {}
    for topic, _, msg in reader.messages([topics.rgb, topics.depth]):
        if not hasattr(msg, "width"):  # a CompressedImage: its size is in its payload
            break
        widths.setdefault(topic, int(msg.width))
        if len(widths) == 2:
            break
    reader.read_count = 0  # the real pass reads from the start again
    if len(widths) == 2 and widths[topics.depth] and \
            widths[topics.rgb] % widths[topics.depth] == 0:
        return widths[topics.rgb] // widths[topics.depth]
    return None
