"""NaimaNode: synced RGB + ToF depth in; super-resolved depth, CameraInfo and point cloud out.

Topics (relative, remappable; depth_image_proc / REP 118 names):
  in   rgb/image_rect_color  (rgb8, bgr8, rgba8, bgra8, mono8)
       rgb/camera_info
       depth/image_rect      (16UC1 / mono16 mm, 0 invalid; 32FC1 m, NaN/inf/<=0 invalid)
  out  depth_registered/image_rect   (32FC1 m NaN invalid, or 16UC1 mm 0 invalid)
       depth_registered/camera_info  (RGB CameraInfo rescaled to the output size)
       depth_registered/points       (organised PointCloud2, PCL layout, NaN invalid)
       /diagnostics

Threading: the subscriptions (a reentrant callback group) only feed the synchronizer, whose
callback stores the newest matched pair. One worker thread runs the model on the newest pair and
publishes, so a slow model never makes latency grow with queued frames; a replaced pair is counted
as dropped (`superseded`). Parameter services and the diagnostics timer use the default group.

Every output header is the depth image's header (stamp and frame: the depth is registered to the
RGB optical frame). Every rejected pair is a throttled warning and a counted drop by reason in
/diagnostics; the node stays up and serves the next good pair.

Parameters are declared with descriptors and ranges (see `PARAMETERS`), loaded from
config/naima.yaml. `scale`, `checkpoint`, `device` and `precision` may change at run time: the
set-parameters callback validates them cheaply (file present, metadata readable, scale matches);
the new model is then loaded and warmed up on a background thread and swapped in only on success.
A failed load keeps the old model, reverts the parameters and reports the reason.
"""
from __future__ import annotations

import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from diagnostic_msgs.msg import DiagnosticArray

from naima_ros.depth_codec import COLOR_ENCODINGS, DEPTH_ENCODINGS
from naima_ros.geometry import resize_rgb
from naima_ros.ros.conversions import (camera_info_image_size, camera_info_to_output,
                                       depth_from_image, depth_image, points_cloud,
                                       rgb_from_image, stamp_ns)
from naima_ros.ros.diagnostics import NodeStats, WarningThrottle, status_message
from naima_ros.ros.sync import make_synchronizer, subscriber_class

__all__ = ["NaimaNode", "ModelLoadError", "PARAMETERS", "main", "resolve_checkpoint"]

PACKAGE = "naima_ros"
SCALES = (4, 8, 16)
TIME_JUMP_RESET_S = 1.0  # a stamp this far behind the last served one is a clock reset / bag loop
ASPECT_TOLERANCE = 0.02  # RGB and depth aspect ratios may differ this much when resizing RGB
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
CHOICES = {
    "device": "auto, cpu, cuda or cuda:N",
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "output_encoding": ("32FC1", "16UC1"),
    "input_reliability": ("best_effort", "reliable"),
    "output_reliability": ("best_effort", "reliable"),
}
MODEL_PARAMETERS = ("scale", "checkpoint", "device", "precision")


@dataclass(frozen=True)
class _Param:
    name: str
    default: object
    description: str
    int_range: tuple[int, int, int] | None = None
    float_range: tuple[float, float] | None = None
    read_only: bool = False  # fixed at start-up (topics, QoS and synchronizer are built once)


PARAMETERS = (
    _Param("scale", 8, "super-resolution factor (4, 8 or 16); must equal the checkpoint's; "
           "changing it loads a new model", int_range=(4, 16, 4)),
    _Param("checkpoint", "checkpoints/naima_light_x{scale}_demo.safetensors",
           "NAIMA .safetensors checkpoint; '{scale}' is replaced by the scale; a relative path is "
           "looked up in the current directory, then in the package share directory"),
    _Param("device", "auto", "torch device: auto, cpu, cuda or cuda:N"),
    _Param("precision", "auto", "auto, fp32, bf16 or fp16 (auto: fp16 on CUDA, fp32 on CPU)"),
    _Param("queue_size", 5, "synchronizer queue per input (messages)", int_range=(1, 100, 1),
           read_only=True),
    _Param("slop", 0.02, "approximate sync: largest stamp spread of an RGB/depth pair (s)",
           float_range=(0.0, 1.0), read_only=True),
    _Param("exact_sync", False, "pair only identical stamps", read_only=True),
    _Param("output_encoding", "32FC1", "32FC1 (metres, NaN invalid) or 16UC1 (mm, 0 invalid)"),
    _Param("publish_points", True, "publish depth_registered/points"),
    _Param("points_stride", 1, "keep every n-th row and column in the cloud",
           int_range=(1, 16, 1)),
    _Param("points_rgb", True, "XYZRGB cloud (32-byte points) instead of XYZ (16-byte)"),
    _Param("min_depth", 0.1, "depth below this is invalid, in and out (m)",
           float_range=(0.0, 100.0)),
    _Param("max_depth", 10.0, "depth above this is invalid, in and out (m)",
           float_range=(0.0, 100.0)),
    _Param("warmup_iterations", 1, "model passes run before the node reports ready",
           int_range=(0, 100, 1)),
    _Param("warmup_width", 640, "output width of the warm-up frames (px)",
           int_range=(16, 8192, 1)),
    _Param("warmup_height", 480, "output height of the warm-up frames (px)",
           int_range=(16, 8192, 1)),
    _Param("resize_rgb_to_multiple", False, "resize RGB to scale x the depth size when it is "
           "not exactly that (else such pairs are dropped)"),
    _Param("max_input_pixels", 3840 * 2160, "larger RGB or depth frames are dropped (pixels)",
           int_range=(1, 2**31 - 1, 1)),
    _Param("input_reliability", "best_effort", "QoS of the inputs: best_effort (sensor data) "
           "or reliable", read_only=True),
    _Param("input_depth", 5, "QoS history depth of the inputs", int_range=(1, 1000, 1),
           read_only=True),
    _Param("output_reliability", "reliable", "QoS of the outputs: reliable or best_effort",
           read_only=True),
    _Param("output_depth", 5, "QoS history depth of the outputs", int_range=(1, 1000, 1),
           read_only=True),
    _Param("diagnostics_period", 1.0, "seconds between /diagnostics messages",
           float_range=(0.05, 60.0), read_only=True),
    _Param("warn_throttle", 5.0, "seconds between two warnings of the same kind",
           float_range=(0.0, 3600.0)),
)


class ModelLoadError(RuntimeError):
    """The model could not be resolved, loaded or warmed up; the message says why."""


class _Drop(Exception):
    """A pair that is not served: `reason` is the diagnostics counter, the message the details."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ModelSpec:
    checkpoint: str  # the parameter value, before '{scale}' substitution and lookup
    scale: int
    device: str
    precision: str


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    path: Path
    upsampler: object  # naima_ros.inference.Upsampler or anything with its call API

    @property
    def scale(self) -> int:
        return int(self.upsampler.scale)


def share_dirs() -> list[Path]:
    """Where the package's installed data may be: ament index, the venv, the source tree."""
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, ValueError, OSError):
        pass  # no ament index (a pip venv): fall through to the other places
    dirs.append(Path(sys.prefix) / "share" / PACKAGE)
    source_root = Path(__file__).resolve().parents[2]
    if (source_root / "setup.py").is_file():
        dirs.append(source_root)
    return dirs


def resolve_checkpoint(template: str, scale: int) -> Path:
    """The checkpoint file for a `checkpoint` parameter value and a scale.

    Raises:
        ValueError: a placeholder other than `{scale}`.
        FileNotFoundError: no such file; the message lists every place looked in.
    """
    try:
        name = template.format(scale=scale)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"checkpoint {template!r}: the only placeholder allowed is {{scale}} "
                         f"({exc!r})") from exc
    if not name:
        raise FileNotFoundError("checkpoint parameter is empty")
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path] + [
        d / path for d in share_dirs()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"checkpoint {name!r} not found; looked in: "
                            f"{', '.join(str(c) for c in candidates)}")


def _default_upsampler_factory(path: Path, device: str, precision: str):
    from naima_ros.inference import Upsampler
    return Upsampler.from_checkpoint(path, device=device, precision=precision)


def _check_checkpoint(spec: ModelSpec) -> Path:
    """Cheap checks of a model spec (no weights loaded); returns the resolved file."""
    from naima_ros.checkpoint import read_metadata
    from naima_ros.inference import resolve_device

    path = resolve_checkpoint(spec.checkpoint, spec.scale)
    meta = read_metadata(path)
    if int(meta["scale"]) != spec.scale:
        raise ValueError(f"checkpoint {path} is a x{meta['scale']} model but scale is "
                         f"{spec.scale}")
    resolve_device(spec.device)
    return path


class NaimaNode(Node):
    """The depth super-resolution node; see the module docstring.

    Args:
        node_name: default node name (remappable with `__node`).
        upsampler_factory: `factory(path, device, precision) -> Upsampler`; the default loads
            a checkpoint with `naima_ros.inference.Upsampler.from_checkpoint`.
        use_message_filters: force (True) or forbid (False) message_filters; None = if present.
        **kwargs: passed to `rclpy.node.Node` (e.g. `parameter_overrides`, `context`).

    Raises:
        ModelLoadError: the start-up model could not be loaded or warmed up.
    """

    def __init__(self, node_name: str = "naima", *, upsampler_factory=None,
                 use_message_filters=None, **kwargs):
        super().__init__(node_name, **kwargs)
        for p in PARAMETERS:
            self.declare_parameter(p.name, p.default, self._descriptor(p))
        self._factory = upsampler_factory or _default_upsampler_factory
        self._stats = NodeStats()
        self._throttle = WarningThrottle(self._p("warn_throttle"))
        self._ready = False
        self._swap_lock = threading.Lock()
        self._swap_state = "idle"
        self._info: CameraInfo | None = None
        self._last_stamp: int | None = None
        self._pending = None  # (rgb, depth, monotonic receive time) of the newest pair
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._lost_publishers: set[str] = set()
        self._last_dropped_total = 0
        self._last_unmatched = 0

        spec = self._spec_from_parameters()
        try:
            self._model = self._load_model(spec)
        except Exception as exc:  # noqa: BLE001 (any load failure ends start-up with its reason)
            super().destroy_node()
            raise ModelLoadError(f"cannot start: {exc}") from exc
        self.add_on_set_parameters_callback(self.validate_parameters_callback)
        self.add_post_set_parameters_callback(self.parameters_set_callback)

        out_qos = self._qos("output")
        self._image_pub = self.create_publisher(Image, "depth_registered/image_rect", out_qos)
        self._info_pub = self.create_publisher(CameraInfo, "depth_registered/camera_info",
                                               out_qos)
        self._points_pub = self.create_publisher(PointCloud2, "depth_registered/points", out_qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self._worker = threading.Thread(target=self._worker_loop, name="naima_worker",
                                        daemon=True)
        self._worker.start()
        self._ready = True

        in_qos = self._qos("input")
        group = ReentrantCallbackGroup()
        subscriber = subscriber_class(use_message_filters)
        self._rgb_sub = subscriber(self, Image, "rgb/image_rect_color", qos_profile=in_qos,
                                   callback_group=group,
                                   event_callbacks=self._events("rgb/image_rect_color"))
        self._depth_sub = subscriber(self, Image, "depth/image_rect", qos_profile=in_qos,
                                     callback_group=group,
                                     event_callbacks=self._events("depth/image_rect"))
        self._sync = make_synchronizer([self._rgb_sub, self._depth_sub],
                                       queue_size=self._p("queue_size"), slop=self._p("slop"),
                                       exact=self._p("exact_sync"),
                                       use_message_filters=use_message_filters)
        self._sync.registerCallback(self.pair_callback)
        self._info_sub = self.create_subscription(CameraInfo, "rgb/camera_info",
                                                  self.camera_info_callback, in_qos,
                                                  callback_group=group)
        self._diag_timer = self.create_timer(self._p("diagnostics_period"),
                                             self.diagnostics_callback)
        self.get_logger().info(f"ready: {self._describe_model(self._model)}")

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def _descriptor(p: _Param) -> ParameterDescriptor:
        d = ParameterDescriptor(name=p.name, description=p.description, read_only=p.read_only)
        if p.int_range:
            d.integer_range = [IntegerRange(from_value=p.int_range[0], to_value=p.int_range[1],
                                            step=p.int_range[2])]
        if p.float_range:
            d.floating_point_range = [FloatingPointRange(from_value=p.float_range[0],
                                                         to_value=p.float_range[1], step=0.0)]
        if p.name in CHOICES:
            choices = CHOICES[p.name]
            d.additional_constraints = "one of: " + (choices if isinstance(choices, str)
                                                     else ", ".join(choices))
        return d

    def _p(self, name: str):
        return self.get_parameter(name).value

    def _spec_from_parameters(self, new: dict | None = None) -> ModelSpec:
        new = new or {}

        def value(name):
            return new[name] if name in new else self._p(name)

        return ModelSpec(str(value("checkpoint")), int(value("scale")), str(value("device")),
                         str(value("precision")))

    def validate_parameters_callback(self, params: list[Parameter]) -> SetParametersResult:
        """Reject invalid values with a reason; no side effects (those are in the post-set)."""
        new = {p.name: p.value for p in params}

        def value(name):
            return new[name] if name in new else self._p(name)

        def reject(reason):
            return SetParametersResult(successful=False, reason=reason)

        if "scale" in new and new["scale"] not in SCALES:
            return reject(f"scale must be one of {SCALES}, got {new['scale']}")
        if "device" in new and not DEVICE_RE.match(str(new["device"])):
            return reject(f"device must be {CHOICES['device']}, got {new['device']!r}")
        for name in ("precision", "output_encoding"):
            if name in new and new[name] not in CHOICES[name]:
                return reject(f"{name} must be one of {', '.join(CHOICES[name])}, "
                              f"got {new[name]!r}")
        if value("min_depth") >= value("max_depth"):
            return reject(f"min_depth ({value('min_depth')}) must be below max_depth "
                          f"({value('max_depth')})")
        if any(name in new for name in MODEL_PARAMETERS):
            spec = self._spec_from_parameters(new)
            if spec != self._model.spec:
                try:
                    _check_checkpoint(spec)
                except (ValueError, OSError) as exc:
                    return reject(f"model not changed: {exc}")
        return SetParametersResult(successful=True)

    def parameters_set_callback(self, params: list[Parameter]) -> None:
        """Apply accepted changes: model swaps go to a background thread."""
        names = {p.name for p in params}
        if "warn_throttle" in names:
            self._throttle.period_s = self._p("warn_throttle")
        if names & set(MODEL_PARAMETERS):
            spec = self._spec_from_parameters()
            if spec != self._model.spec:
                threading.Thread(target=self._swap_model, args=(spec,), name="naima_model_swap",
                                 daemon=True).start()

    # ------------------------------------------------------------------ model
    def _load_model(self, spec: ModelSpec) -> LoadedModel:
        """Resolve, load and warm up a model (any thread; nothing shared is touched)."""
        path = _check_checkpoint(spec)
        upsampler = self._factory(path, spec.device, spec.precision)
        model = LoadedModel(spec, path, upsampler)
        if model.scale != spec.scale:
            raise ValueError(f"{path} loaded as a x{model.scale} model, expected x{spec.scale}")
        iterations = self._p("warmup_iterations")
        if iterations:
            t0 = time.monotonic()
            upsampler.warmup(self._p("warmup_height"), self._p("warmup_width"), iterations)
            self.get_logger().info(f"warm-up: {iterations} x {self._p('warmup_width')}x"
                                   f"{self._p('warmup_height')} in {time.monotonic() - t0:.2f} s")
        return model

    @staticmethod
    def _describe_model(model: LoadedModel) -> str:
        d = model.upsampler.describe() if hasattr(model.upsampler, "describe") else {}
        return (f"model {model.path.name} (preset {d.get('preset')}, x{model.scale}, "
                f"{d.get('device')}, {d.get('precision')})")

    def _swap_model(self, spec: ModelSpec) -> None:
        with self._swap_lock:
            old = self._model
            if spec == old.spec:
                return  # already loaded (e.g. the revert of a failed swap)
            self._swap_state = f"loading {spec.checkpoint} x{spec.scale}"
            self.get_logger().info(f"loading a new model in the background: {spec}")
            try:
                model = self._load_model(spec)
            except Exception as exc:  # noqa: BLE001 (a failed swap keeps the old model)
                self._swap_state = f"failed: {exc}"
                self._stats.event("model_swap_failed")
                self.get_logger().error(f"model swap failed, keeping "
                                        f"{self._describe_model(old)}: {exc}")
                if self._spec_from_parameters() == spec:  # no newer request since: revert
                    self.set_parameters([Parameter(n, value=getattr(old.spec, n))
                                         for n in MODEL_PARAMETERS
                                         if getattr(old.spec, n) != getattr(spec, n)])
                return
            self._model = model  # one reference assignment: the worker picks it up next frame
            self._swap_state = f"ok: {model.path.name}"
            self._stats.event("model_swap")
            self.get_logger().info(f"swapped in {self._describe_model(model)}")

    # ------------------------------------------------------------------ callbacks
    def _qos(self, which: str) -> QoSProfile:
        reliability = (ReliabilityPolicy.RELIABLE if self._p(f"{which}_reliability") == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self._p(f"{which}_depth"),
                          reliability=reliability)

    def _events(self, topic: str) -> SubscriptionEventCallbacks:
        return SubscriptionEventCallbacks(matched=lambda info: self.matched_callback(topic, info))

    def matched_callback(self, topic: str, info) -> None:
        """Track publishers: a lost and returning publisher is a restart; stale halves go."""
        if info.current_count == 0 and info.current_count_change < 0:
            self._lost_publishers.add(topic)
            self._warn("publisher_lost", f"{topic} has no publisher any more")
        elif info.current_count_change > 0 and topic in self._lost_publishers:
            self._lost_publishers.discard(topic)
            stale = self._sync.reset() if hasattr(self._sync, "reset") else 0
            self._last_stamp = None  # a restarted driver may restart its clock
            n = self._stats.event("publisher_restart")
            self._warn("publisher_restart", f"{topic} publisher restarted ({n} restarts); "
                       f"discarded {stale} unmatched queued messages")

    def camera_info_callback(self, msg: CameraInfo) -> None:
        self._info = msg

    def pair_callback(self, rgb_msg: Image, depth_msg: Image) -> None:
        """Keep only the newest pair for the worker."""
        self._stats.pair_received()
        with self._cond:
            superseded = self._pending is not None
            self._pending = (rgb_msg, depth_msg, time.monotonic())
            self._cond.notify()
        if superseded:
            self._drop("superseded", "input faster than the model: an unprocessed pair was "
                       "replaced by a newer one")

    def diagnostics_callback(self) -> None:
        sync_dropped = getattr(self._sync, "dropped", None)
        if sync_dropped is not None and sync_dropped > self._last_unmatched:
            # unmatched messages are normal with unequal input rates: counted, not warned
            for _ in range(sync_dropped - self._last_unmatched):
                self._stats.event("sync_unmatched")
            self._last_unmatched = sync_dropped
        self._stats.roll_period()
        snap = self._stats.snapshot()
        recent = snap["dropped_total"] - self._last_dropped_total
        self._last_dropped_total = snap["dropped_total"]
        model = self._model
        described = dict(model.upsampler.describe()) if hasattr(model.upsampler, "describe") \
            else {}
        described["checkpoint"] = str(model.path)
        self._diag_pub.publish(status_message(
            f"{self.get_fully_qualified_name()}: depth super-resolution",
            described.get("device") or "unknown",
            self.get_clock().now().to_msg(), snap, described, self._ready, self._swap_state,
            recent))

    # ------------------------------------------------------------------ worker
    def _warn(self, key: str, message: str) -> None:
        self._throttle(key, self.get_logger().warning, message)

    def _drop(self, reason: str, message: str) -> None:
        n = self._stats.drop(reason)
        self._warn(reason, f"dropped pair [{reason}] (#{n}): {message}")

    def _worker_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while self._pending is None and not self._stop.is_set():
                    self._cond.wait(0.5)
                pair, self._pending = self._pending, None
            if pair is None:
                continue
            try:
                self._serve(*pair)
            except _Drop as drop:
                self._drop(drop.reason, str(drop))
            except Exception as exc:  # noqa: BLE001 (the worker must survive anything)
                self._drop("internal_error", f"{type(exc).__name__}: {exc}")
                self.get_logger().debug(traceback.format_exc())

    def _serve(self, rgb_msg: Image, depth_msg: Image, t_received: float) -> None:
        """Check, convert, run the model and publish one pair; raises _Drop to reject it."""
        model = self._model  # one model for the whole frame, even if a swap lands meanwhile
        t_depth, t_rgb = stamp_ns(depth_msg.header.stamp), stamp_ns(rgb_msg.header.stamp)
        if t_depth == 0 or t_rgb == 0:
            raise _Drop("zero_stamp", f"zero header stamp (rgb {t_rgb} ns, depth {t_depth} ns)")
        if self._last_stamp is not None and t_depth <= self._last_stamp:
            back_s = (self._last_stamp - t_depth) / 1e9
            if back_s <= TIME_JUMP_RESET_S:
                raise _Drop("stamp_backwards", f"depth stamp {t_depth / 1e9:.6f} s is not newer "
                            f"than the last served {self._last_stamp / 1e9:.6f} s")
            self._stats.event("time_jump_reset")
            self._warn("time_jump_reset", f"time jumped back by {back_s:.3f} s (clock reset, "
                       f"bag loop or restarted driver): serving from the new time")
        info = self._info
        if info is None:
            raise _Drop("missing_camera_info", "no CameraInfo received yet on rgb/camera_info")
        for name, msg in (("rgb", rgb_msg), ("depth", depth_msg)):
            if msg.height == 0 or msg.width == 0 or len(msg.data) == 0:
                raise _Drop("empty_image", f"{name} image is {msg.width}x{msg.height} with "
                            f"{len(msg.data)} bytes")
        for name, msg, known in (("rgb", rgb_msg, COLOR_ENCODINGS),
                                 ("depth", depth_msg, DEPTH_ENCODINGS)):
            if msg.encoding not in known:
                raise _Drop("unsupported_encoding", f"{name} encoding {msg.encoding!r} is not "
                            f"supported (use one of {', '.join(known)})")
        limit = self._p("max_input_pixels")
        for name, msg in (("rgb", rgb_msg), ("depth", depth_msg)):
            if msg.width * msg.height > limit:
                raise _Drop("oversized", f"{name} image {msg.width}x{msg.height} exceeds "
                            f"max_input_pixels={limit}")
        try:
            rgb = rgb_from_image(rgb_msg)
            depth_m, valid = depth_from_image(depth_msg)
        except ValueError as exc:
            raise _Drop("malformed_image", str(exc)) from exc

        s = model.scale
        (rgb_h, rgb_w), (h, w) = rgb.shape[:2], depth_m.shape
        if (rgb_h, rgb_w) != (s * h, s * w):
            where = (f"rgb {rgb_w}x{rgb_h} is not {s} x depth {w}x{h} = {s * w}x{s * h} "
                     f"(model scale {s})")
            if not self._p("resize_rgb_to_multiple"):
                raise _Drop("size_mismatch", where + "; set resize_rgb_to_multiple to resize")
            if abs(rgb_w * h / (rgb_h * w) - 1.0) > ASPECT_TOLERANCE:
                raise _Drop("size_mismatch", where + ": aspect ratios differ, so the depth "
                            "cannot be registered to this RGB")
            rgb = resize_rgb(rgb, s * w, s * h)
        info_size = camera_info_image_size(info)
        if info_size != (rgb_w, rgb_h):
            raise _Drop("invalid_camera_info", f"rgb/camera_info describes a {info_size[0]}x"
                        f"{info_size[1]} image (size, roi, binning) but rgb is {rgb_w}x{rgb_h}")
        header = depth_msg.header
        try:
            info_out, intr = camera_info_to_output(info, s * w, s * h, header)
        except ValueError as exc:
            raise _Drop("invalid_camera_info", str(exc)) from exc

        min_d, max_d = self._p("min_depth"), self._p("max_depth")
        with np.errstate(invalid="ignore"):
            valid &= (depth_m >= min_d) & (depth_m <= max_d)
        if not valid.any():
            raise _Drop("all_invalid_depth", f"no depth pixel of the {w}x{h} frame is valid "
                        f"in [{min_d}, {max_d}] m")
        t0 = time.monotonic()
        try:
            depth_hr = model.upsampler(rgb, np.where(valid, depth_m, np.float32(np.nan)))
        except Exception as exc:  # noqa: BLE001 (a model failure drops the frame, not the node)
            raise _Drop("inference_error", f"{type(exc).__name__}: {exc}") from exc
        model_s = time.monotonic() - t0
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(depth_hr) & (depth_hr >= min_d) & (depth_hr <= max_d)
        depth_hr = np.where(ok, depth_hr, np.float32(np.nan)).astype(np.float32, copy=False)

        self._image_pub.publish(depth_image(depth_hr, header, self._p("output_encoding")))
        self._info_pub.publish(info_out)
        if self._p("publish_points"):
            self._points_pub.publish(points_cloud(
                depth_hr, intr, header, rgb if self._p("points_rgb") else None,
                self._p("points_stride")))
        self._last_stamp = t_depth
        self._stats.frame_published(time.monotonic() - t_received, model_s)

    def destroy_node(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        worker = getattr(self, "_worker", None)
        if worker is not None and worker.is_alive():
            worker.join(timeout=10.0)
        super().destroy_node()


def main(args=None) -> int:
    """Entry point of `naima_node`: `naima_node --ros-args --params-file ... -r ...`."""
    rclpy.init(args=args)
    node = None
    try:
        node = NaimaNode()
        executor = MultiThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except ModelLoadError as exc:
        rclpy.logging.get_logger("naima").fatal(str(exc))
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
