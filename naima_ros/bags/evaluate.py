"""`naima-bag eval`: score the node's outputs in a bag against its ground-truth topic.

Frames are the depth frames of the input topic; a frame is served when an output image carries
its stamp (the node stamps every output with the depth header). Per served frame, for the node's
output ("naima", or whichever method the node served) and, on the same frame, for the baseline
predictors (`naima_ros.predictors`: "bicubic" and "guided_filter" by default):
- RMSE and MAE in the bag's units (millimetres for a 16UC1 ground truth, metres for 32FC1) over
  pixels valid in both the ground truth and the method's output (`naima_ros.eval.metrics`);
- coverage: the share of valid ground-truth pixels the method gives a valid depth for;
- beyond tolerance: the share of those pixels off by more than `confidence.TOLERANCE`
  (2 cm + 2 % of the depth): how often a published pixel is wrong.
The baselines are predictors like the node's model: metres in, metres out, with the same range
mask [min_depth, max_depth], grid, fill, normalisation and `min_confidence`
(`naima_ros.frames`, `naima_ros.confidence`). Means are over frames (per-frame mean, the papers'
reduction, `naima_ros.eval.metrics.mean_over_images`). Where the bag holds the node's confidence
topic (and for every baseline), the scored pixels are also pooled per confidence bin: RMSE and the
share within tolerance per bin (a reliability plot: a calibrated confidence has that share at the
bin's confidence).

Latency is the output's log time minus the depth frame's log time in the same bag: for a `replay`
bag, from the moment the frame was published to the node until its output was received
(stamp-to-publish for a live sensor, whose stamps are its publish times); for a `run` bag, the
offline processing time. Dropped frames: depth frames without an output. Frames the recording
itself lost are counted from the frame list `make` stores in the bag, and otherwise estimated from
gaps in the depth stamps. The node's own drop reasons come from the last /diagnostics message, if
the bag recorded it.

Memory stays bounded by a few frames whatever the bag's length: a first pass reads only stamps
and log times (from the CDR header bytes), a second decodes just the messages of served frames
and scores each frame as soon as its parts are in.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from naima_ros.bags.io import (CAMERA_INFO, COMPRESSED_IMAGE, DIAGNOSTIC_ARRAY, IMAGE, BagError, BagReader,
                               Topics, decode_depth_msg, decode_rgb_msg, deserialize, raw_stamp_ns,
                               unit_of)
from naima_ros.eval import metrics
from naima_ros.confidence import add_to_bins, bin_stats, bin_table, within_tolerance
from naima_ros.frames import depth_grid, valid_depth_mask
from naima_ros.contract import DEFAULTS
from naima_ros.drops import Drop
from naima_ros.image_transport import decode_compressed_color, decode_compressed_depth
from naima_ros.options import BAG_DEFAULT_BASELINES, BASELINE_METHODS, SCALES
from naima_ros.predictors import load_predictor
from naima_ros.serving import FrameServer, ServeConfig, stamp_ns

__all__ = ["NODE_OUTPUT", "Evaluation", "FrameScore", "baseline_predictions",
           "evaluate_bag"]

MAX_PIXELS = DEFAULTS["max_input_pixels"]  # compressed inputs: the node's decompression-bomb bound
NODE_OUTPUT = "naima"  # the method name the node's output images are scored under


@dataclass
class FrameScore:
    """One depth frame of the bag."""

    index: int
    stamp: int
    name: str
    served: bool
    has_rgb: bool = True  # an RGB frame within slop exists in the bag
    latency_ms: float = float("nan")
    rmse: dict = field(default_factory=dict)  # method -> value in the bag's unit
    mae: dict = field(default_factory=dict)
    coverage: dict = field(default_factory=dict)  # method -> fraction in [0, 1]
    beyond: dict = field(default_factory=dict)  # method -> share of scored pixels beyond tolerance


@dataclass
class Evaluation:
    bag: str
    unit: str
    scale: int
    frames: list[FrameScore]
    recording_lost: int
    recording_lost_source: str
    node_drops: dict | None  # the node's drops by reason (last /diagnostics); None: no diagnostics recorded
    strip: dict | None  # arrays of one frame for the qualitative figure
    min_depth: float
    max_depth: float
    methods: tuple[str, ...] = (NODE_OUTPUT,) + BAG_DEFAULT_BASELINES
    # method -> (bins, 3): per confidence bin, pixels, sum of squared error (unit²), within tolerance
    confidence_bins: dict = field(default_factory=dict)

    def confidence_rows(self) -> list[dict]:
        """Per method and confidence bin: pixels, RMSE in the bag's unit, share within tolerance."""
        return [{"method": method, "bin": name, "pixels": pixels, "rmse": rmse, "within_tolerance": within}
                for method, table in self.confidence_bins.items() for name, pixels, rmse, within in bin_stats(table)]

    @property
    def served(self) -> list[FrameScore]:
        return [f for f in self.frames if f.served]

    def count(self, method: str) -> int:
        """Served frames scored for `method` (a baseline needs the frame's RGB)."""
        return sum(method in f.rmse for f in self.served)

    def mean(self, what: str, method: str) -> float:
        """Mean over served frames of one score ("rmse", "mae" or "coverage") of one method."""
        return metrics.mean_over_images([getattr(f, what).get(method, np.nan) for f in self.served])

    @property
    def no_rgb(self) -> int:
        return sum(not f.has_rgb for f in self.frames)

    def latencies_ms(self) -> np.ndarray:
        return np.array([f.latency_ms for f in self.served if np.isfinite(f.latency_ms)])

    def table(self) -> str:
        """The summary as a plain-text table (what the CLI and the demo print)."""
        n, served = len(self.frames), len(self.served)
        lines = [f"{'method':<14} {'frames':>6} {'RMSE ' + self.unit:>10} {'MAE ' + self.unit:>10}"
                 f" {'coverage':>9}"]
        for m in self.methods:
            lines.append(f"{m:<14} {self.count(m):>6} {self.mean('rmse', m):>10.3f} "
                         f"{self.mean('mae', m):>10.3f} {100 * self.mean('coverage', m):>8.1f}%")
        lat = self.latencies_ms()
        if lat.size:
            lines.append(f"latency (ms): p50 {np.percentile(lat, 50):.0f}, p95 "
                         f"{np.percentile(lat, 95):.0f}, max {lat.max():.0f} over {lat.size} "
                         f"frames")
        lines.append(f"frames: {n} depth frames in the bag, {served} served, {n - served} "
                     f"dropped by the node ({100 * (n - served) / max(n, 1):.0f}%); "
                     f"{self.no_rgb} without an RGB frame within slop; "
                     f"{self.recording_lost} lost in the recording ({self.recording_lost_source})")
        if self.node_drops:
            lines.append("node drop reasons (diagnostics): " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.node_drops.items())))
        if lost := self.never_reached():
            lines.append(lost)
        return "\n".join(lines)

    def never_reached(self) -> str:
        """A line when frames went unserved that the node's own diagnostics never counted as dropped."""
        unexplained = (len(self.frames) - len(self.served) - self.no_rgb - sum(self.node_drops.values())
                       if self.node_drops is not None else 0)
        return (f"{unexplained} unserved frame(s) the node never counted as a drop: lost between processes? "
                f"(large images need the Fast DDS profile, docs/robot.md)") if unexplained > 0 else ""


def _score(pred: np.ndarray, gt: np.ndarray, gt_valid: np.ndarray, factor: float):
    ok = np.isfinite(pred) & gt_valid
    cov = float(ok.sum() / max(gt_valid.sum(), 1))
    if not ok.any():
        return float("nan"), float("nan"), cov, float("nan")
    return (metrics.rmse(pred * factor, gt * factor, ok), metrics.mae(pred * factor, gt * factor, ok), cov,
            float(1.0 - within_tolerance(pred[ok], gt[ok]).mean()))


def baseline_scale(rgb_hw: tuple[int, int], depth_hw: tuple[int, int]) -> int:
    """The scale a baseline is configured with for a bag: the RGB/depth ratio where it is one of
    ``SCALES``, else the nearest of them (it decides the grid of other size ratios)."""
    ratio = rgb_hw[1] / max(depth_hw[1], 1)
    return min(SCALES, key=lambda s: abs(s - ratio))


def baseline_predictions(rgb: np.ndarray, depth_lr: np.ndarray, methods=BAG_DEFAULT_BASELINES, *,
                         min_depth: float | None = None, max_depth: float | None = None, scale: int | None = None,
                         min_confidence: float = DEFAULTS["min_confidence"]) -> dict:
    """The baseline predictors on one frame: {method: ``Prediction``} (metres in, metres out)."""
    scale = scale or baseline_scale(rgb.shape[:2], depth_lr.shape)
    return {m: load_predictor(m, scale=scale, min_depth=min_depth, max_depth=max_depth,
                              min_confidence=min_confidence).predict(rgb, depth_lr)
            for m in methods}


def _recording_lost(names: dict[int, str], depth_stamps: list[int]) -> tuple[int, str]:
    if names:
        return len(set(names) - set(depth_stamps)), "frames listed by make without a depth message"
    if len(depth_stamps) < 3:
        return 0, "too few frames to estimate"
    gaps = np.diff(sorted(depth_stamps)).astype(np.float64)
    period = float(np.median(gaps))
    lost = int(sum(max(round(g / period) - 1, 0) for g in gaps if g > 1.5 * period))
    return lost, "estimated from gaps in the depth stamps"


def _diagnostics_drops(msg) -> dict | None:
    for status in msg.status:
        values = {kv.key: kv.value for kv in status.values}
        drops = {k.split(".", 1)[1]: int(float(v)) for k, v in values.items()
                 if k.startswith("dropped.")}
        if drops or "frames_published" in values or "dropped_total" in values:
            return drops
    return None


def evaluate_bag(bag: str | Path, *, topics: Topics = Topics(), min_depth: float = 0.1,
                 max_depth: float = 10.0, slop: float = 0.02, strip_frame: str = "auto",
                 baselines=BAG_DEFAULT_BASELINES, progress: bool = True, rgb_transport: str = "raw",
                 depth_transport: str = "raw", registration: ServeConfig | None = None,
                 scale: int | None = None, min_confidence: float = DEFAULTS["min_confidence"]) -> Evaluation:
    """Score a bag holding inputs, ground truth and the node's output images.

    Args:
        bag: an output bag of `run` or `replay` (or any recording with these topics).
        topics: topic names.
        min_depth, max_depth: the node's valid depth range (m), applied to the baselines' input.
        slop: largest RGB/depth stamp difference of a pair (s), as the node's `slop`.
        strip_frame: frame for the qualitative strip: "auto" (a frame named motorcycle, else
            the last served), "last" or a frame index (served, with an RGB match).
        baselines: baseline methods scored beside the node's output (``BASELINE_METHODS``).
        progress: show a progress bar.
        rgb_transport, depth_transport: "raw", or the inputs were recorded image_transport-style as
            the node subscribes them: "compressed" on `<rgb>/compressed`, "compressedDepth" on
            `<depth>/compressedDepth` (decoded with the node's decoders).
        registration: for an unregistered depth camera, the node's registration settings
            (`register_depth`, `depth_to_rgb_*`): the baselines get the depth registered as the
            node does, with the newest `rgb_info` and `depth_info` CameraInfo before the frame.
        scale: the node's scale (default: ground-truth width / depth width; set it with
            registration, where the depth camera's size need not be the LR grid's).
        min_confidence: the node's `min_confidence`, given to the baselines.

    Raises:
        BagError: a missing topic, an unknown encoding, a truncated or corrupt bag.
    """
    from tqdm import tqdm

    if strip_frame not in ("auto", "last") and not strip_frame.isdigit():
        raise BagError(f"--strip-frame must be auto, last or a frame index, got {strip_frame!r}")
    baselines = tuple(dict.fromkeys(baselines))
    unknown = [m for m in baselines if m not in BASELINE_METHODS]
    if unknown:
        raise BagError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINE_METHODS)}")
    inputs = _Inputs.of(topics, rgb_transport, depth_transport)
    with BagReader(bag) as reader:
        required = {"rgb": inputs.rgb, "depth": inputs.depth, "gt": topics.gt,
                    "out_image": topics.out_image}
        registering = registration is not None and registration.register_depth
        infos = [topics.rgb_info, topics.depth_info] if registering else []
        if registering:
            required.update(rgb_info=topics.rgb_info, depth_info=topics.depth_info)
        reader.require(required, {"rgb": inputs.rgb_type, "depth": inputs.depth_type, "gt": IMAGE,
                                  "out_image": IMAGE, "rgb_info": CAMERA_INFO,
                                  "depth_info": CAMERA_INFO})
        names = reader.frame_names()
        wanted = [inputs.rgb, inputs.depth, topics.gt, topics.out_image]
        has_confidence = reader.topics.get(topics.out_confidence) == IMAGE
        has_diag = reader.topics.get(topics.diagnostics) == DIAGNOSTIC_ARRAY
        total = sum(c for t, c in reader.message_counts.items() if t in wanted)

        # pass 1: stamps and log times only (read from the CDR header, no image decoded)
        logs: dict[str, dict[int, int]] = {t: {} for t in wanted}
        unit = None
        for conn, log_ns, raw in tqdm(reader.raw_messages(wanted), total=total, unit="msg",
                                      desc=f"index {Path(bag).name}", disable=not progress):
            logs[conn.topic].setdefault(raw_stamp_ns(raw, conn.topic, reader.path), log_ns)
            if unit is None and conn.topic == topics.gt:  # the bag's unit: the GT's encoding
                gt = deserialize(raw, conn.msgtype, conn.topic, reader.path)
                unit = unit_of(gt.encoding, topics.gt)
        depth_logs, out_logs = logs[inputs.depth], logs[topics.out_image]
        if not depth_logs:
            raise BagError(f"bag {bag}: no message on {inputs.depth}")
        if not logs[topics.gt]:
            raise BagError(f"bag {bag}: no message on the ground-truth topic {topics.gt}")
        rgb_stamps = np.array(sorted(logs[inputs.rgb]), dtype=np.int64)
        confidence_stamps = {raw_stamp_ns(raw, topics.out_confidence, reader.path) for _, _, raw in
                             reader.raw_messages([topics.out_confidence])} if has_confidence else set()
        frames: list[FrameScore] = []
        need: dict[tuple[str, int], list[int]] = {}  # (topic, stamp) -> frames that use it
        for i, stamp in enumerate(sorted(depth_logs)):
            score = FrameScore(i, stamp, names.get(stamp, ""), stamp in out_logs)
            frames.append(score)
            j = np.searchsorted(rgb_stamps, stamp)
            near = [int(r) for r in rgb_stamps[max(j - 1, 0):j + 1]
                    if abs(int(r) - stamp) <= slop * 1e9]
            score.has_rgb = bool(near)
            if not score.served:
                continue
            score.latency_ms = (out_logs[stamp] - depth_logs[stamp]) / 1e6
            if stamp not in logs[topics.gt]:
                raise BagError(f"bag {bag}: no {topics.gt} message stamped {stamp} ns (the "
                               f"ground truth must carry its depth frame's stamp)")
            parts = [(inputs.depth, stamp), (topics.gt, stamp), (topics.out_image, stamp)]
            if has_confidence and stamp in confidence_stamps:
                parts.append((topics.out_confidence, stamp))
            if near:
                parts.append((inputs.rgb, min(near, key=lambda r: abs(r - stamp))))
            for key in parts:
                need.setdefault(key, []).append(i)
        parts_of = collections.Counter(i for users in need.values() for i in users)

        # pass 2: decode only what served frames use; score a frame once its parts are in
        ctx = _Scoring(topics, inputs, min_depth, max_depth, strip_frame, baselines, *unit,
                       registration=registration if registering else None, scale=scale,
                       min_confidence=min_confidence)
        pending: dict[int, dict] = {}
        last_diag = None
        stream = reader.raw_messages(wanted + infos + ([topics.diagnostics] if has_diag else [])
                                     + ([topics.out_confidence] if has_confidence else []))
        with tqdm(total=len(need), unit="msg", desc="score", disable=not progress) as bar:
            for conn, _, raw in stream:
                if conn.topic == topics.diagnostics:
                    last_diag = (raw, conn.msgtype)
                    continue
                if conn.topic in infos:  # the newest before the frames after it, as the node's
                    ctx.infos[conn.topic] = deserialize(raw, conn.msgtype, conn.topic, reader.path)
                    continue
                key = (conn.topic, raw_stamp_ns(raw, conn.topic, reader.path))
                users = need.pop(key, None)
                if users is None:
                    continue
                bar.update()
                msg = deserialize(raw, conn.msgtype, conn.topic, reader.path)
                for i in users:
                    got = pending.setdefault(i, {})
                    got[conn.topic] = msg
                    if len(got) == parts_of[i]:
                        ctx.score(frames[i], pending.pop(i))
    if pending:
        missing = sorted(pending)[0]
        raise BagError(f"bag {bag}: parts of frame {missing} disappeared between two reads")
    lost, how = _recording_lost(names, list(depth_logs))
    diag = deserialize(last_diag[0], last_diag[1], topics.diagnostics) if last_diag else None
    return Evaluation(str(bag), ctx.unit, ctx.scale, frames, lost, how,
                      _diagnostics_drops(diag) if diag is not None else None, ctx.strip,
                      min_depth, max_depth, (NODE_OUTPUT, *baselines), dict(ctx.bins))


def _same_aspect(gt_hw: tuple[int, int], lr_hw: tuple[int, int]) -> bool:
    try:
        depth_grid(gt_hw, lr_hw, 8)
    except ValueError:
        return False
    return True


class _Inputs(NamedTuple):
    """The input topics as recorded: raw `Image`s, or image_transport's compressed variants."""

    rgb: str
    depth: str
    rgb_transport: str
    depth_transport: str

    @classmethod
    def of(cls, topics: Topics, rgb_transport: str, depth_transport: str) -> _Inputs:
        if rgb_transport not in ("raw", "compressed") or depth_transport not in ("raw", "compressedDepth"):
            raise BagError(f"transports must be raw|compressed (RGB) and raw|compressedDepth (depth), got "
                           f"{rgb_transport!r} and {depth_transport!r}")
        return cls(topics.rgb + ("/compressed" if rgb_transport == "compressed" else ""),
                   topics.depth + ("/compressedDepth" if depth_transport == "compressedDepth" else ""),
                   rgb_transport, depth_transport)

    @property
    def rgb_type(self) -> str:
        return IMAGE if self.rgb_transport == "raw" else COMPRESSED_IMAGE

    @property
    def depth_type(self) -> str:
        return IMAGE if self.depth_transport == "raw" else COMPRESSED_IMAGE

    def decode_depth(self, msg) -> tuple[np.ndarray, np.ndarray]:
        if self.depth_transport == "raw":
            return decode_depth_msg(msg, self.depth)
        return _decode_compressed(decode_compressed_depth, msg, self.depth)

    def decode_rgb(self, msg) -> np.ndarray:
        if self.rgb_transport == "raw":
            return decode_rgb_msg(msg, self.rgb)
        return _decode_compressed(decode_compressed_color, msg, self.rgb)


def _decode_compressed(decode, msg, topic: str):
    """A compressed message through `decode`; a transport error becomes a BagError naming topic and stamp."""
    try:
        return decode(bytes(msg.data), msg.format, max_input_pixels=MAX_PIXELS)
    except Drop as exc:
        raise BagError(f"topic {topic} (stamp {stamp_ns(msg.header.stamp)} ns): {exc}") from exc


class _Scoring:
    """Scores one served frame at a time; keeps the arrays of the strip's frame only."""

    def __init__(self, topics: Topics, inputs: _Inputs, min_depth: float, max_depth: float,
                 strip_frame: str, baselines: tuple[str, ...], unit: str, factor: float, *,
                 registration: ServeConfig | None = None, scale: int | None = None,
                 min_confidence: float = DEFAULTS["min_confidence"]):
        self.topics, self.inputs, self.min_depth, self.max_depth = topics, inputs, min_depth, max_depth
        self.min_confidence = min_confidence
        self.bins = collections.defaultdict(bin_table)
        self.baselines = baselines
        self.strip_frame = strip_frame
        self.unit, self.factor, self.scale = unit, factor, scale or 0
        self.fixed_scale, self.registration = scale, registration
        self.infos: dict[str, object] = {}  # topic -> newest CameraInfo (with registration)
        self.strip, self.strip_locked = None, False

    def score(self, frame: FrameScore, msgs: dict) -> None:
        t = self.topics
        if unit_of(msgs[t.gt].encoding, t.gt)[0] != self.unit:
            raise BagError(f"topic {t.gt} changes encoding at stamp {frame.stamp} "
                           f"({msgs[t.gt].encoding}): one unit per bag")
        gt, gt_valid = decode_depth_msg(msgs[t.gt], t.gt)
        pred, _ = decode_depth_msg(msgs[t.out_image], t.out_image)
        lr, lr_valid = self.inputs.decode_depth(msgs[self.inputs.depth])
        if pred.shape != gt.shape:
            raise BagError(f"{t.out_image} is {pred.shape[1]}x{pred.shape[0]} but {t.gt} is "
                           f"{gt.shape[1]}x{gt.shape[0]} at stamp {frame.stamp}")
        scale = self.fixed_scale or gt.shape[1] // lr.shape[1]
        if self.registration is not None:
            try:  # onto the RGB grid at LR resolution, as the node does before its predictor
                lr = FrameServer.register(lr, (gt.shape[1], gt.shape[0]), scale,
                                          self.infos.get(t.rgb_info), self.infos.get(t.depth_info),
                                          self.registration)
            except Drop:  # no or unusable CameraInfo yet: the node drops such pairs too
                lr = np.full((gt.shape[0] // scale, gt.shape[1] // scale), np.nan, np.float32)
            lr_valid = np.isfinite(lr)
        lr_valid &= valid_depth_mask(lr, self.min_depth, self.max_depth)
        self.scale = self.scale or scale
        preds = {NODE_OUTPUT: pred}
        confidences = {}
        if t.out_confidence in msgs:
            confidences[NODE_OUTPUT], _ = decode_depth_msg(msgs[t.out_confidence], t.out_confidence)
        if self.inputs.rgb in msgs and lr_valid.any() and _same_aspect(gt.shape, lr.shape):
            rgb = self.inputs.decode_rgb(msgs[self.inputs.rgb])
            if rgb.shape[:2] == gt.shape:
                answers = baseline_predictions(rgb, np.where(lr_valid, lr, np.nan).astype(np.float32), self.baselines,
                                               scale=self.fixed_scale, min_confidence=self.min_confidence)
                preds.update({m: a.depth for m, a in answers.items()})
                confidences.update({m: a.confidence for m, a in answers.items()})
                self._strip_candidate(frame, {"rgb": rgb, "gt": gt, "gt_valid": gt_valid,
                                              "preds": preds, "frame": frame,
                                              "factor": self.factor, "unit": self.unit})
        for method, p in preds.items():
            frame.rmse[method], frame.mae[method], frame.coverage[method], frame.beyond[method] = _score(
                p, gt, gt_valid, self.factor)
            if method in confidences and confidences[method].shape == p.shape:
                scored = np.isfinite(p) & gt_valid
                add_to_bins(self.bins[method], np.nan_to_num(confidences[method])[scored],
                            (p[scored] - gt[scored]).astype(np.float64) * self.factor,
                            within_tolerance(p[scored], gt[scored]))

    def _strip_candidate(self, frame: FrameScore, candidate: dict) -> None:
        if self.strip_frame.isdigit():
            if frame.index == int(self.strip_frame):
                self.strip = candidate
        elif self.strip_frame == "auto" and "motorcycle" in frame.name and not self.strip_locked:
            self.strip, self.strip_locked = candidate, True
        elif not self.strip_locked and (self.strip is None or
                                        frame.index > self.strip["frame"].index):
            self.strip = candidate  # the last served frame so far
