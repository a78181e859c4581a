"""The node's serving thread: the synchronizer's callback keeps only the newest RGB/depth pair, one
worker thread serves it with `naima_ros.serving` and publishes, so a slow model never makes latency
grow with queued frames. A replaced pair is the event `superseded` (normal when the camera is
faster than the model, not a warning); a rejected one a throttled warning and a counted drop.

With `register_depth`, each pair's depth -> RGB extrinsics come from tf2 at the depth stamp, or
from the depth_to_rgb_* parameters (`naima_ros.ros.tf.DepthToRgb`); its warnings (no transform,
an unexpected depth frame) are throttled, counted as events and shown in /diagnostics.

`PairWorker` is one of the mixins of `naima_ros.ros.phases.NodePhases`; it reads the state that
`NodePhases._setup` creates.
"""
from __future__ import annotations

import dataclasses
import time
import traceback

from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from naima_ros.drops import Drop
from naima_ros.ros.conversions import camera_info_msg, depth_image, points_cloud
from naima_ros.ros.sync import deserialized
from naima_ros.ros.tf import DepthToRgb, Extrinsics
from naima_ros.serving import ServeConfig, stamp_ns

__all__ = ["PairWorker"]


class PairWorker:
    """Input callbacks, the worker loop and the publishing of one served pair."""

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
        self._frames = (rgb_msg.header.frame_id, depth_msg.header.frame_id)
        if config.register_depth:
            config = self._with_extrinsics(config, rgb_msg, depth_msg)
        frame = self._server.serve(model.predictor, rgb_msg, depth_msg, self._info, config,
                                   self._depth_info)
        if self._stop.is_set() or not self.context.ok():
            return  # shutting down while the model ran
        sec, nanosec = divmod(frame.stamp_ns, 1_000_000_000)
        header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame.frame_id)
        self._image_pub.publish(depth_image(frame.image, header))
        for encoding, image in frame.encodings.items():
            self._encoding_pubs[encoding].publish(depth_image(image, header))
        self._confidence_pub.publish(depth_image(frame.confidence_image, header))
        self._info_pub.publish(camera_info_msg(frame.camera_info, header))
        if frame.points is not None:
            self._points_pub.publish(points_cloud(frame.points, header))
        # the output's age from the depth's capture, on the ROS clock (sim time with a bag)
        age_s = self._health.published(stamp_ns(depth_msg.header.stamp) / 1e9, self._ros_now_s(),
                                       frame.depth_m, frame.depth_lr_m)
        self._stats.frame_published(time.monotonic() - t_received, frame.model_s, age_s)
        self._watch.served()

    def _with_extrinsics(self, config: ServeConfig, rgb_msg: Image, depth_msg: Image
                         ) -> ServeConfig:
        """`config` with this pair's depth -> RGB extrinsics (tf2's or the parameters')."""
        pick = DepthToRgb(self._tf, Extrinsics(config.depth_to_rgb_translation,
                                               config.depth_to_rgb_rotation),
                          use_tf=self._values["use_tf"],
                          depth_frame=self._values["expected_depth_frame"])
        extrinsics, warnings = pick(rgb_msg.header.frame_id, depth_msg.header.frame_id,
                                    stamp_ns(depth_msg.header.stamp))
        for key, message in warnings.items():
            self._event(key, message)
        self._registration = {"extrinsics": pick.describe(extrinsics),
                              "extrinsics.translation_m": list(extrinsics.translation_m),
                              "extrinsics.rotation_xyzw": list(extrinsics.rotation_xyzw)}
        self._pair_warnings = warnings
        return dataclasses.replace(config, depth_to_rgb_translation=extrinsics.translation_m,
                                   depth_to_rgb_rotation=extrinsics.rotation_xyzw)

    def _ros_now_s(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    def _stop_worker(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=10.0)
        self._worker = None
