"""NaimaNode: synced RGB + ToF depth in; super-resolved depth, CameraInfo and point cloud out.
ManagedNaimaNode: the same as a managed (lifecycle) node; both are `NaimaServing`'s phases.

Topics (relative, remappable; depth_image_proc / REP 118 names):
  in   rgb/image_rect_color  (rgb8, bgr8, rgba8, bgra8, mono8)
       rgb/camera_info
       depth/image_rect      (16UC1 / mono16 mm, 0 invalid; 32FC1 m, NaN/inf/<=0 invalid)
       depth/camera_info     (with register_depth)
       <rgb>/compressed, <depth>/compressedDepth instead (rgb_transport, depth_transport)
  out  depth_registered/image_rect   (32FC1 m NaN invalid, or 16UC1 mm 0 invalid)
       depth_registered/camera_info  (RGB CameraInfo rescaled to the output size)
       depth_registered/points       (organised PointCloud2, PCL layout, NaN invalid)
       /diagnostics

This file is the ROS glue only: what happens to a pair (checks, drop reasons, the predictor call,
the output arrays) is `naima_ros.serving`, the model and its swaps `naima_ros.model_slot`, the
parameter table `naima_ros.serving.PARAMETERS` (descriptors in `ros.parameters`), and the rclpy
differences between distros `ros.compat`.

Threading: the subscriptions only feed the synchronizer, whose callback stores the newest matched
pair; they take the images serialized (`raw`), so a superseded frame is never deserialized.
`main()` spins one executor thread. One worker thread serves the newest pair and publishes,
so a slow model never makes latency grow with queued frames; a replaced pair is counted as an
event (`superseded`: normal when the camera is faster than the model, not a warning).
Parameter services and the diagnostics timer use the default group.

Every output is stamped like the depth image and carries the RGB image's frame_id (it lies on the
RGB camera's grid, with its K and P). Every rejected pair is a throttled warning and
a counted drop by reason in /diagnostics; the node stays up and serves the next good pair.
`method`, `scale`, `checkpoint`, `device` and `precision` may change at run time: the new model
is loaded and warmed up in the background and swapped in only on success; a failed load keeps the
old model, reverts the parameters and reports the reason.
"""
from __future__ import annotations

import copy
import sys
import threading
import time
import traceback

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from naima_ros import runtime
from naima_ros.model_slot import ModelLoadError, ModelSlot, ModelSpec, check_spec
from naima_ros.ros import compat
from naima_ros.ros.conversions import camera_info_msg, depth_image, points_cloud
from naima_ros.ros.diagnostics import InputWatch, NodeStats, WarningThrottle, status_message
from naima_ros.ros.parameters import declare_parameters, result
from naima_ros.ros.sync import Subscriber, deserialized, make_synchronizer
from naima_ros.serving import (MODEL_PARAMETERS, Drop, FrameServer, ServeConfig,
                               check_parameters, check_scale, stamp_ns)

__all__ = ["ManagedNaimaNode", "ModelLoadError", "NaimaNode", "NaimaServing", "lifecycle_main",
           "main"]

RGB_TOPIC, DEPTH_TOPIC = "rgb/image_rect_color", "depth/image_rect"
SIZES_CURRENT_S = 5.0  # frames decoded this recently are "the frames arriving" (scale check)


def input_qos() -> QoSProfile:
    """The inputs' default QoS: sensor data (best effort, keep last 5), as camera drivers publish.

    Every publisher and subscription also has its standard
    `qos_overrides./<topic>.<publisher|subscription>.{history,depth,reliability}` parameters;
    rclpy writes them into the profile object it is given, so each entity gets a fresh one.
    """
    return copy.copy(qos_profile_sensor_data)


def output_qos() -> QoSProfile:
    """The outputs' default QoS: reliable, keep last 5."""
    return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)

MALLOC_TUNING: dict | str = "off"  # what main() set (a node in someone else's process: nothing)


class NaimaServing:
    """The node's machinery in lifecycle phases, shared by `NaimaNode` (a plain rclpy Node that
    runs them all in its constructor) and `ManagedNaimaNode` (a LifecycleNode that runs them on
    its transitions): `_setup` (parameters, /diagnostics), `_configure` (load and warm up the
    model), `_activate` (publishers, subscriptions, worker), `_deactivate`, `_cleanup`."""

    def _setup(self, predictor_factory, use_message_filters) -> None:
        self._use_message_filters = use_message_filters
        self._values = declare_parameters(self)  # current values, updated by the post-set
        self._config = ServeConfig.from_values(self._values)
        self._stats = NodeStats()
        self._throttle = WarningThrottle(self._values["warn_throttle"])
        self._server = FrameServer(on_event=self._event)
        self._info: CameraInfo | None = None
        self._depth_info: CameraInfo | None = None  # with register_depth
        self._rgb_type, self._depth_type = (
            Image if self._values[f"{which}_transport"] == "raw" else CompressedImage
            for which in ("rgb", "depth"))
        self._pending = None  # (rgb, depth, monotonic receive time) of the newest pair
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._worker = None
        self._lost_publishers: set[str] = set()
        self._last_dropped_total = 0
        self._last_unmatched = 0
        self._slot = ModelSlot(predictor_factory, log_info=self.get_logger().info,
                               log_error=self.get_logger().error)
        self._state = "unconfigured"
        self._watch = None  # InputWatch, while active
        self._sync = None
        self._publisher_watch = None
        self._diag_timer = None
        self._qos_kw = compat.qos_overriding_kwargs()
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10,
                                               **self._qos_kw)
        self._native_post_set = compat.add_parameter_callbacks(
            self, self.validate_parameters_callback, self.parameters_set_callback)

    def _configure(self) -> None:
        """Load and warm up the model, telling /diagnostics meanwhile.

        Raises:
            ModelLoadError: with the reason (also an ERROR status).
        """
        spec = self._spec()
        self._state = (f"loading model {spec.checkpoint} x{spec.scale}" if spec.method == "naima"
                       else f"loading {spec.method} x{spec.scale}")
        loaded = threading.Event()
        # the load blocks this thread for seconds: a status from the first second, not silence
        threading.Thread(target=self._startup_status, args=(loaded,), name="naima_startup",
                         daemon=True).start()
        # before the model loads (the allocator is tuned by main(), before anything allocates)
        self.tuning = {"malloc": MALLOC_TUNING,
                       "torch_threads": runtime.set_torch_threads(self._values["torch_threads"])}
        self.get_logger().info(f"process tuning: {self.tuning}")
        try:
            self._slot.start(self._spec(), self._warmup())
        except ModelLoadError as exc:
            self._state = f"failed: {exc}"
            loaded.set()
            self._publish_status()
            if hasattr(self._diag_pub, "wait_for_all_acked"):  # let monitors get the ERROR
                self._diag_pub.wait_for_all_acked(Duration(seconds=1.0))
            raise
        finally:
            loaded.set()
        self._state = "inactive"
        self._diag_timer = self.create_timer(self._values["diagnostics_period"],
                                             self.diagnostics_callback)

    def _activate(self) -> None:
        """Publishers, the worker, then the subscriptions: serving starts."""
        qos_kw = self._qos_kw
        self._image_pub, self._info_pub, self._points_pub = (
            self.create_publisher(msg_type, topic, output_qos(), **qos_kw)
            for msg_type, topic in ((Image, "depth_registered/image_rect"),
                                    (CameraInfo, "depth_registered/camera_info"),
                                    (PointCloud2, "depth_registered/points")))
        self._stop.clear()
        self._pending = None
        self._worker = threading.Thread(target=self._worker_loop, name="naima_worker",
                                        daemon=True)
        self._worker.start()

        group = ReentrantCallbackGroup()
        # raw: the synchronizer needs only stamps; the worker deserializes the pair it serves,
        # so the frames it supersedes cost a copy of their bytes, not a Python message each
        self._rgb_sub, self._depth_sub = (
            Subscriber(self, msg_type, name, qos_profile=input_qos(), raw=True, callback_group=group,
                       event_callbacks=compat.matched_event_callbacks(
                           lambda info, topic=topic: self.matched_callback(topic, info)),
                       **qos_kw)
            for topic, msg_type, name in self._input_topics())
        # Humble has no matched event: the diagnostics timer polls the publisher counts instead
        self._publisher_watch = None if compat.has_matched_event() else \
            compat.PublisherCountWatch(
                {topic: (lambda name=getattr(sub, "sub", sub).topic_name:
                         self.count_publishers(name))
                 for topic, sub in ((RGB_TOPIC, self._rgb_sub), (DEPTH_TOPIC, self._depth_sub))},
                self.matched_callback)
        self._sync = make_synchronizer([self._rgb_sub, self._depth_sub],
                                       queue_size=self._values["queue_size"],
                                       slop=self._values["slop"],
                                       exact=self._values["exact_sync"],
                                       use_message_filters=self._use_message_filters)
        self._sync.registerCallback(self.pair_callback)
        self._topics = {topic: getattr(sub, "sub", sub).topic_name  # resolved, remapped
                        for topic, sub in ((RGB_TOPIC, self._rgb_sub),
                                           (DEPTH_TOPIC, self._depth_sub))}
        self._watch = InputWatch({"rgb": self._topics[RGB_TOPIC],
                                  "depth": self._topics[DEPTH_TOPIC]},
                                 self._values["slop"], self._values["exact_sync"])
        for key, sub in (("rgb", self._rgb_sub), ("depth", self._depth_sub)):
            sub.registerCallback(self._input_seen, key)
        self._depth_info_sub = None
        if self._values["register_depth"]:
            self._depth_info_sub = self.create_subscription(
                CameraInfo, "depth/camera_info", self.depth_camera_info_callback, input_qos(),
                callback_group=group, **qos_kw)
        self._info_sub = self.create_subscription(CameraInfo, "rgb/camera_info",
                                                  self.camera_info_callback, input_qos(),
                                                  callback_group=group, **qos_kw)
        self._state = "serving"
        outputs = (self._image_pub, self._info_pub, self._points_pub)
        self.get_logger().info(
            f"ready: {self._slot.model.summary()}; {self._slot.model.describe()}; in: "
            f"{', '.join(self._topics.values())}, {self._info_sub.topic_name}; out: "
            f"{', '.join(p.topic_name for p in outputs)}")

    def _deactivate(self) -> None:
        """Stop serving: subscriptions, then the worker (its frame finishes), then publishers."""
        self._state = "inactive"
        self._watch = None
        for sub in (self._rgb_sub, self._depth_sub, self._info_sub, self._depth_info_sub):
            if sub is not None:
                self.destroy_subscription(getattr(sub, "sub", sub))
        self._rgb_sub = self._depth_sub = self._info_sub = self._depth_info_sub = None
        self._sync = self._publisher_watch = None
        self._stop_worker()
        for pub in (self._image_pub, self._info_pub, self._points_pub):
            self.destroy_publisher(pub)
        self._image_pub = self._info_pub = self._points_pub = None

    def _cleanup(self) -> None:
        """Release the model (and its memory)."""
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        self._slot.model = None
        self._state = "unconfigured"

    def _stop_worker(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=10.0)
        self._worker = None

    # ------------------------------------------------------------------ parameters
    def _spec(self, values=None) -> ModelSpec:
        v = values or self._values
        return ModelSpec(str(v["method"]), str(v["checkpoint"]), int(v["scale"]),
                         str(v["device"]), str(v["precision"]))

    def _warmup(self) -> tuple[int, int, int]:
        v = self._values
        return v["warmup_iterations"], v["warmup_height"], v["warmup_width"]

    def validate_parameters_callback(self, params: list[Parameter]):
        """Reject invalid values with a reason; no side effects (those are in the post-set)."""
        new = {p.name: p.value for p in params}
        reason = check_parameters(new, self._values)
        if reason is None and any(name in new for name in MODEL_PARAMETERS):
            spec = self._spec({**self._values, **new})
            model = self._slot.model  # None: not configured yet (lifecycle)
            if model is None or spec.key != model.spec.key:
                try:
                    check_spec(spec)
                except (ValueError, OSError) as exc:
                    reason = f"model not changed: {exc}"
        sizes = self._server.last_sizes
        resize = new.get("resize_rgb_to_multiple", self._values["resize_rgb_to_multiple"])
        if (reason is None and "scale" in new and not resize and sizes is not None
                and not self._values["register_depth"]  # registration makes the LR grid
                and time.monotonic() - self._server.last_sizes_at < SIZES_CURRENT_S):
            reason = check_scale(int(new["scale"]), sizes)
        return result(reason)

    def parameters_set_callback(self, params: list[Parameter]) -> None:
        """Apply accepted changes (values from `params`: on Humble they are not stored yet)."""
        self._values = {**self._values, **{p.name: p.value for p in params}}
        self._config = ServeConfig.from_values(self._values)
        self._throttle.period_s = self._values["warn_throttle"]
        if any(p.name in MODEL_PARAMETERS for p in params) and self._slot.model is not None:
            spec = self._spec()
            if spec != self._slot.model.spec:
                self._slot.swap(spec, self._warmup(), self._revert, self._stats.event)

    def _revert(self, kept: ModelSpec, failed: ModelSpec) -> None:
        """After a failed swap: the parameters go back to the served model's, unless a newer
        request came meanwhile."""
        if self._spec() == failed:
            self.set_parameters([Parameter(n, value=getattr(kept, n)) for n in MODEL_PARAMETERS
                                 if getattr(kept, n) != getattr(failed, n)])

    # ------------------------------------------------------------------ callbacks
    def matched_callback(self, topic: str, info) -> None:
        """Track publishers: a lost and returning publisher is a restart; stale halves go."""
        name = getattr(self, "_topics", {}).get(topic, topic)  # resolved (remapped) name
        if info.current_count == 0 and info.current_count_change < 0:
            self._lost_publishers.add(topic)
            self._warn("publisher_lost", f"{name} has no publisher any more")
        elif info.current_count_change > 0 and topic in self._lost_publishers:
            self._lost_publishers.discard(topic)
            stale = self._sync.reset() if hasattr(self._sync, "reset") else 0
            self._server.reset_time()  # a restarted driver may restart its clock
            n = self._stats.event("publisher_restart")
            self._warn("publisher_restart", f"{name} publisher restarted ({n} restarts); "
                       f"discarded {stale} unmatched queued messages")

    def _input_topics(self) -> list[tuple[str, type, str]]:
        """(key, message type, topic) of the RGB and depth inputs: the raw topics (relative,
        remappable), or image_transport's `<resolved base topic>/compressed[Depth]`."""
        out = []
        for key, transport in ((RGB_TOPIC, self._values["rgb_transport"]),
                               (DEPTH_TOPIC, self._values["depth_transport"])):
            if transport == "raw":
                out.append((key, Image, key))
            else:
                out.append((key, CompressedImage,
                            f"{compat.resolve_topic_name(self, key)}/{transport}"))
        return out

    def depth_camera_info_callback(self, msg: CameraInfo) -> None:
        self._depth_info = msg

    def camera_info_callback(self, msg: CameraInfo) -> None:
        self._info = msg

    def _input_seen(self, msg, key: str) -> None:
        self._watch.seen(key, stamp_ns(msg.header.stamp))

    def pair_callback(self, rgb_msg: Image, depth_msg: Image) -> None:
        """Keep only the newest pair for the worker."""
        self._stats.pair_received()
        with self._cond:
            superseded = self._pending is not None
            self._pending = (rgb_msg, depth_msg, time.monotonic())
            self._cond.notify()
        if superseded:  # input faster than the model: normal, counted, not a warning
            self._stats.event("superseded")

    def diagnostics_callback(self) -> None:
        if self._publisher_watch is not None:
            self._publisher_watch.poll()
        sync_dropped = getattr(self._sync, "dropped", None)
        if sync_dropped is not None and sync_dropped > self._last_unmatched:
            # unmatched messages are normal with unequal input rates: counted, not warned
            for _ in range(sync_dropped - self._last_unmatched):
                self._stats.event("sync_unmatched")
            self._last_unmatched = sync_dropped
        self._stats.roll_period()
        self._publish_status()

    def _publish_status(self) -> None:
        snap = self._stats.snapshot()
        recent = snap["dropped_total"] - self._last_dropped_total
        self._last_dropped_total = snap["dropped_total"]
        model = self._slot.model
        described = model.describe() if model else {"method": self._values["method"]}
        stall = None
        if self._watch is not None and self._state == "serving":
            model_ms = snap["model_p50_ms"]
            stall = self._watch.stall(model_s=0.0 if model_ms != model_ms else model_ms / 1e3)
            if stall:
                self._warn("stall", stall)
        self._diag_pub.publish(status_message(
            f"{self.get_fully_qualified_name()}: depth super-resolution",
            described.get("device") or "cpu", self.get_clock().now().to_msg(), snap, described,
            self._state, self._slot.state, recent, stall))

    def _startup_status(self, loaded: threading.Event) -> None:
        """Publish the loading status every diagnostics period until the model is loaded."""
        while not loaded.is_set():
            try:
                self._publish_status()
            except Exception:  # noqa: BLE001 (the node is being destroyed: nothing to tell)
                return
            loaded.wait(self._values["diagnostics_period"])

    # ------------------------------------------------------------------ worker
    def _warn(self, key: str, message: str) -> None:
        self._throttle(key, self.get_logger().warning, message)

    def _event(self, name: str, message: str) -> None:
        self._stats.event(name)
        self._warn(name, message)

    def _drop(self, reason: str, message: str) -> None:
        n = self._stats.drop(reason)
        if self._watch is not None:
            self._watch.dropped(reason, message)
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
            except Drop as drop:
                self._drop(drop.reason, str(drop))
            except Exception as exc:  # noqa: BLE001 (the worker must survive anything)
                if self._stop.is_set() or not self.context.ok():
                    return  # shut down mid-inference (Ctrl-C): the publishers are gone, quietly
                self._drop("internal_error", f"{type(exc).__name__}: {exc}")
                self.get_logger().debug(traceback.format_exc())

    def _serve(self, rgb_msg: Image, depth_msg: Image, t_received: float) -> None:
        """Serve one pair with `serving` and publish its outputs; raises Drop to reject it."""
        model = self._slot.model  # one model for the whole frame, even if a swap lands meanwhile
        config = self._config
        rgb_msg, depth_msg = (deserialized(rgb_msg, self._rgb_type),
                              deserialized(depth_msg, self._depth_type))
        frame = self._server.serve(model.predictor, rgb_msg, depth_msg, self._info, config,
                                   self._depth_info)
        if self._stop.is_set() or not self.context.ok():
            return  # shutting down while the model ran
        header = Header(stamp=depth_msg.header.stamp, frame_id=frame.frame_id)
        self._image_pub.publish(depth_image(frame.image, header))
        self._info_pub.publish(camera_info_msg(frame.camera_info, header))
        if frame.points is not None:
            self._points_pub.publish(points_cloud(frame.points, header))
        self._stats.frame_published(time.monotonic() - t_received, frame.model_s)
        self._watch.served()

    def destroy_node(self) -> None:
        self._stop_worker()
        super().destroy_node()


class NaimaNode(NaimaServing, Node):
    """The depth super-resolution node; see the module docstring. It loads its model and starts
    serving in its constructor (`ManagedNaimaNode` is the lifecycle variant).

    Args:
        node_name: default node name (remappable with `__node`).
        predictor_factory: `factory(method, *, checkpoint, scale, device, precision)` ->
            predictor; default `naima_ros.predictors.load_predictor`.
        use_message_filters: force (True) or forbid (False) message_filters; None = if present.
        **kwargs: passed to `rclpy.node.Node` (e.g. `parameter_overrides`, `context`).

    Raises:
        ModelLoadError: the start-up model could not be loaded or warmed up.
    """

    def __init__(self, node_name: str = "naima", *, predictor_factory=None,
                 use_message_filters=None, **kwargs):
        super().__init__(node_name, **kwargs)
        self._setup(predictor_factory, use_message_filters)
        try:
            self._configure()
        except ModelLoadError:
            super().destroy_node()
            raise
        self._activate()


class ManagedNaimaNode(NaimaServing, LifecycleNode):
    """The node as a managed (lifecycle) node: the same parameters, topics and serving, driven
    by the standard lifecycle services (`<node>/change_state`, `<node>/get_state`, e.g. from
    `ros2 lifecycle set` or a Nav2-style lifecycle manager).

    configure: load and warm up the model (a failure is a FAILURE transition and an ERROR status);
    activate: publishers, subscriptions and the worker; deactivate: stop serving (the frame in
    progress finishes); cleanup: release the model. /diagnostics is published in every state.
    Arguments as `NaimaNode`.
    """

    def __init__(self, node_name: str = "naima", *, predictor_factory=None,
                 use_message_filters=None, **kwargs):
        super().__init__(node_name, **kwargs)
        self._setup(predictor_factory, use_message_filters)

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self._configure()
        except ModelLoadError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        if self._state == "serving":
            self._deactivate()
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS


def main(args=None, node_class=None) -> int:
    """Entry point of `naima_node`: `naima_node --ros-args --params-file ... -r ...`.

    `node_class`: `NaimaNode` (default) or `ManagedNaimaNode` (`lifecycle_main`)."""
    global MALLOC_TUNING
    MALLOC_TUNING = runtime.tune_malloc()  # naima_ros.runtime: why, and what it sets
    rclpy.init(args=args)
    node = None
    try:
        node = (node_class or NaimaNode)()
        # one executor thread: the callbacks only store messages (the worker thread serves);
        # a MultiThreadedExecutor's hand-offs took 4x its CPU at 30 Hz (README "Serving at
        # camera rate"), CPU and GIL time the forward pass needs
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except ModelLoadError as exc:
        rclpy.logging.get_logger("naima").fatal(str(exc))
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:  # rclpy raises it for failed rcl calls and does not re-export it
        # Ctrl-C shut the context down between spin()'s ok() check and its next wait set (a race in rclpy's
        # executor, seen on Jazzy): a clean exit. Any other rcl failure is real.
        if node is None or node.context.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def lifecycle_main(args=None) -> int:
    """Entry point of `naima_lifecycle_node`: the managed node, unconfigured until told
    (`ros2 lifecycle set /naima configure`, then `activate`)."""
    return main(args, ManagedNaimaNode)


if __name__ == "__main__":
    sys.exit(main())
