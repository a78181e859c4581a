"""The node's machinery in lifecycle phases, shared by the plain and the managed node
(`naima_ros.ros.node`): `_setup` (parameters, /diagnostics), `_configure` (load and warm up the
model), `_activate` (publishers, worker, subscriptions), `_deactivate`, `_cleanup`.

Topics, message types and QoS come from `naima_ros.contract.TOPICS`. The subscriptions only feed
the synchronizer; they take the images serialized (`raw`), so a superseded frame is never
deserialized. The parameter callbacks are `ros.parameters.ParameterCallbacks`, the serving thread
`ros.worker.PairWorker`, /diagnostics `ros.status.StatusReporting`.
"""
from __future__ import annotations

import threading

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from sensor_msgs.msg import CameraInfo

from naima_ros import runtime
from naima_ros.contract import COMPRESSED_IMAGE, TOPICS
from naima_ros.health import StreamHealth
from naima_ros.model_slot import ModelLoadError, ModelSlot
from naima_ros.ros import compat
from naima_ros.ros.diagnostics import InputWatch, NodeStats, WarningThrottle
from naima_ros.ros.parameters import ParameterCallbacks, declare_parameters
from naima_ros.ros.status import StatusReporting
from naima_ros.ros.sync import Subscriber, make_synchronizer
from naima_ros.ros.tf import tf_lookup
from naima_ros.ros.topics import message_class, qos_profile
from naima_ros.ros.worker import PairWorker
from naima_ros.serving import FrameServer, ServeConfig

__all__ = ["NodePhases"]

MALLOC_TUNING: dict | str = "off"  # what main() set (a node in someone else's process: nothing)


class NodePhases(ParameterCallbacks, PairWorker, StatusReporting):
    """The phases of the module docstring; `NaimaNode` runs them all in its constructor,
    `ManagedNaimaNode` on its lifecycle transitions."""

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
            message_class(TOPICS[which].msg_type if self._values[f"{which}_transport"] == "raw"
                          else COMPRESSED_IMAGE) for which in ("rgb", "depth"))
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
        self._frames = ("", "")  # (rgb, depth) frame_id of the last pair: the hardware_id
        self._registration: dict = {}  # the extrinsics of the last registered pair
        self._pair_warnings: dict = {}  # what was wrong with the last pair although served
        self._health = None  # StreamHealth, while active
        self._encoding_pubs: dict = {}
        # tf2's listener fills its buffer from now on, whatever the lifecycle state
        self._tf = None
        if self._values["register_depth"] and self._values["use_tf"]:
            self._tf = tf_lookup(self)
            if self._tf is None:
                self.get_logger().info("tf2_ros is not installed: register_depth uses the "
                                       "depth_to_rgb_* parameters")
        self._qos_kw = compat.qos_overriding_kwargs()
        self._diag_pub = self._publisher("diagnostics")
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
        self._diag_timer = self.create_timer(self._values["diagnostic_updater.period"],
                                             self.diagnostics_callback)

    def _activate(self) -> None:
        """Publishers, the worker, then the subscriptions: serving starts."""
        qos_kw = self._qos_kw
        self._image_pub, self._confidence_pub, self._info_pub, self._points_pub = (
            self._publisher(role)
            for role in ("out_image", "out_confidence", "out_info", "out_points"))
        self._encoding_pubs = {e: self._publisher(f"out_image_{e.lower()}")
                               for e in self._config.output_encodings}
        self._output_topic = self._image_pub.topic_name  # resolved: names its topic status
        v = self._values
        self._health = StreamHealth(
            v["expected_rate_min"], v["expected_rate_max"], v["expected_rate_tolerance"],
            v["max_stamp_age"], v["self_check_tolerance"], v["self_check_relative_tolerance"],
            v["self_check_jump_factor"], start_s=self._ros_now_s())
        self._stop.clear()
        self._pending = None
        self._worker = threading.Thread(target=self._worker_loop, name="naima_worker",
                                        daemon=True)
        self._worker.start()

        group = ReentrantCallbackGroup()
        # raw: the synchronizer needs only stamps; the worker deserializes the pair it serves,
        # so the frames it supersedes cost a copy of their bytes, not a Python message each
        self._rgb_sub, self._depth_sub = (
            Subscriber(self, msg_type, name, qos_profile=qos_profile(TOPICS[role].qos), raw=True,
                       callback_group=group, event_callbacks=compat.matched_event_callbacks(
                           lambda info, role=role: self.matched_callback(role, info)),
                       **qos_kw)
            for role, msg_type, name in self._input_topics())
        # Humble has no matched event: the diagnostics timer polls the publisher counts instead
        self._publisher_watch = None if compat.has_matched_event() else \
            compat.PublisherCountWatch(
                {role: (lambda name=getattr(sub, "sub", sub).topic_name:
                        self.count_publishers(name))
                 for role, sub in (("rgb", self._rgb_sub), ("depth", self._depth_sub))},
                self.matched_callback)
        self._sync = make_synchronizer([self._rgb_sub, self._depth_sub],
                                       queue_size=self._values["queue_size"],
                                       slop=self._values["slop"],
                                       exact=self._values["exact_sync"],
                                       use_message_filters=self._use_message_filters)
        self._sync.registerCallback(self.pair_callback)
        self._topics = {role: getattr(sub, "sub", sub).topic_name  # resolved, remapped
                        for role, sub in (("rgb", self._rgb_sub), ("depth", self._depth_sub))}
        self._watch = InputWatch(dict(self._topics), self._values["slop"],
                                 self._values["exact_sync"])
        for key, sub in (("rgb", self._rgb_sub), ("depth", self._depth_sub)):
            sub.registerCallback(self._input_seen, key)
        self._depth_info_sub = None
        if self._values["register_depth"]:
            self._depth_info_sub = self._subscription("depth_info", self.depth_camera_info_callback,
                                                      group)
        self._info_sub = self._subscription("rgb_info", self.camera_info_callback, group)
        self._state = "serving"
        outputs = (self._image_pub, *self._encoding_pubs.values(), self._confidence_pub,
                   self._info_pub, self._points_pub)
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
        for pub in (self._image_pub, self._confidence_pub, self._info_pub, self._points_pub,
                    *self._encoding_pubs.values()):
            self.destroy_publisher(pub)
        self._image_pub = self._confidence_pub = self._info_pub = self._points_pub = None
        self._encoding_pubs = {}

    def _cleanup(self) -> None:
        """Release the model (and its memory)."""
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        self._slot.model = None
        self._state = "unconfigured"

    def _publisher(self, role: str):
        """The publisher of a contract topic, with its QoS role's profile."""
        topic = TOPICS[role]
        return self.create_publisher(message_class(topic.msg_type), topic.name,
                                     qos_profile(topic.qos), **self._qos_kw)

    def _subscription(self, role: str, callback, group):
        """The subscription of a contract topic (not the synchronised images)."""
        topic = TOPICS[role]
        return self.create_subscription(message_class(topic.msg_type), topic.name, callback,
                                        qos_profile(topic.qos), callback_group=group,
                                        **self._qos_kw)

    def _input_topics(self) -> list[tuple[str, type, str]]:
        """(role, message type, topic) of the RGB and depth inputs: the raw topics (relative,
        remappable), or image_transport's `<resolved base topic>/compressed[Depth]`."""
        out = []
        for role, msg_type in (("rgb", self._rgb_type), ("depth", self._depth_type)):
            name, transport = TOPICS[role].name, self._values[f"{role}_transport"]
            if transport != "raw":
                name = f"{compat.resolve_topic_name(self, name)}/{transport}"
            out.append((role, msg_type, name))
        return out

    def destroy_node(self) -> None:
        self._stop_worker()
        super().destroy_node()
