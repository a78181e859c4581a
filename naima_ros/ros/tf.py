"""depth -> RGB extrinsics of `register_depth` from tf2, with the static parameters as fallback and
override, and the frame_id checks that catch a driver or URDF that disagrees.

What depth_image_proc's `register` does: look up the pose of the depth optical frame in the RGB
optical frame at the depth image's stamp, `buffer.lookup_transform(rgb_frame, depth_frame, stamp,
timeout)`. tf2 returns the transform that maps points from its source frame (the depth image's
header.frame_id) into its target frame (the RGB image's): p_rgb = R p_depth + t, the convention of
`naima_ros.registration` and of the `depth_to_rgb_translation` / `depth_to_rgb_rotation`
parameters (what `tf2_echo <rgb frame> <depth frame>` prints).

tf2_ros comes with every apt ROS install but is no pip wheel: `tf_lookup(node)` returns None where
it cannot be imported, and the parameters are used. `DepthToRgb` picks per pair: the parameters
when told to (`use_tf` off: they override), else tf2, and the parameters again, with a warning
naming tf2's reason, when the lookup fails (no transform yet, a stamp outside the buffer, frames in
two trees). The lookup runs on the node's worker thread, so its short timeout waits for a
transform arriving on the executor thread without blocking any callback.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["DepthToRgb", "Extrinsics", "ExtrinsicsUnavailable", "TfLookup", "frame_warning",
           "tf_lookup"]

LOOKUP_TIMEOUT_S = 0.05  # wait this long for a transform at the depth stamp (a TF a frame late)


class Extrinsics(NamedTuple):
    """p_rgb = R(rotation_xyzw) p_depth + translation_m; `source`: "tf" or "parameters"."""

    translation_m: tuple[float, float, float]
    rotation_xyzw: tuple[float, float, float, float]
    source: str = "parameters"


class ExtrinsicsUnavailable(RuntimeError):
    """tf2 has no depth -> RGB transform for this pair; the message says which and why."""


class TfLookup:
    """The depth -> RGB lookup on a tf2 buffer (`tf2_ros.Buffer` or anything of its API shape).

    Args:
        buffer: has `lookup_transform(target_frame, source_frame, time, timeout)` returning a
            `geometry_msgs/TransformStamped`.
        errors: the exception types a failed lookup raises (tf2's TransformException family).
        time: `time(stamp_ns)` -> the `time` argument (`rclpy.time.Time`).
        duration: `duration(seconds)` -> the `timeout` argument (`rclpy.duration.Duration`).
        timeout_s: how long a lookup waits for a transform at the stamp.
    """

    def __init__(self, buffer, errors: tuple[type[BaseException], ...], time: Callable,
                 duration: Callable, timeout_s: float = LOOKUP_TIMEOUT_S):
        self.buffer, self.errors = buffer, errors
        self._time, self._duration, self.timeout_s = time, duration, timeout_s

    def __call__(self, rgb_frame: str, depth_frame: str, stamp_ns: int) -> Extrinsics:
        """The pose of `depth_frame` in `rgb_frame` at `stamp_ns`.

        Raises:
            ExtrinsicsUnavailable: an empty frame_id or a failed lookup, with tf2's reason.
        """
        if not rgb_frame or not depth_frame:
            which = "depth" if not depth_frame else "rgb"
            raise ExtrinsicsUnavailable(f"the {which} image has no header.frame_id: tf2 cannot "
                                        f"place it")
        try:
            stamped = self.buffer.lookup_transform(rgb_frame, depth_frame, self._time(stamp_ns),
                                                   self._duration(self.timeout_s))
        except self.errors as exc:
            raise ExtrinsicsUnavailable(
                f"no transform {rgb_frame} <- {depth_frame} at {stamp_ns / 1e9:.6f} s "
                f"({type(exc).__name__}: {exc})") from exc
        t, q = stamped.transform.translation, stamped.transform.rotation
        return Extrinsics((float(t.x), float(t.y), float(t.z)),
                          (float(q.x), float(q.y), float(q.z), float(q.w)), "tf")


def tf_lookup(node, timeout_s: float = LOOKUP_TIMEOUT_S) -> TfLookup | None:
    """A `TfLookup` on a `tf2_ros.Buffer` filled by a `TransformListener` on `node` (its /tf and
    /tf_static subscriptions spin with the node), or None where tf2_ros is not installed."""
    try:
        import tf2_ros
    except ImportError:
        return None
    from rclpy.duration import Duration
    from rclpy.time import Time

    buffer = tf2_ros.Buffer()
    listener = tf2_ros.TransformListener(buffer, node)
    errors = tuple(getattr(tf2_ros, name) for name in (
        "TransformException", "LookupException", "ConnectivityException",
        "ExtrapolationException") if hasattr(tf2_ros, name))
    lookup = TfLookup(buffer, errors, lambda ns: Time(nanoseconds=ns),
                      lambda s: Duration(seconds=s), timeout_s)
    lookup.listener = listener  # kept alive with the lookup: it owns the subscriptions
    return lookup


def frame_warning(role: str, frame_id: str, expected: str) -> str | None:
    """Why `frame_id` (of the `role` input) is not the `expected` frame, or None (also when
    nothing is expected). A mismatch means the extrinsics describe another camera."""
    if not expected or frame_id == expected:
        return None
    return (f"{role} frame_id {frame_id!r} is not the expected {expected!r}: the depth -> RGB "
            f"extrinsics may describe another frame (a driver or URDF that disagrees?)")


class DepthToRgb:
    """The extrinsics for each pair: tf2's where possible, else the parameters'.

    Args:
        lookup: a `TfLookup` (None: tf2 is not available, the parameters are used).
        parameters: the `depth_to_rgb_*` parameters as `Extrinsics`.
        use_tf: False: the parameters override tf2.
        depth_frame: the depth frame the parameters describe ("" for any): a depth image in
            another frame is a warning.
    """

    def __init__(self, lookup: TfLookup | None, parameters: Extrinsics, use_tf: bool = True,
                 depth_frame: str = ""):
        self.lookup, self.parameters = lookup, parameters
        self.use_tf, self.depth_frame = use_tf, depth_frame

    def __call__(self, rgb_frame: str, depth_frame: str, stamp_ns: int
                 ) -> tuple[Extrinsics, dict[str, str]]:
        """(extrinsics, {warning key: message}) for a pair; the keys are `frame_mismatch` and
        `tf_fallback` (log each throttled, as the node's other warnings)."""
        warnings = {}
        mismatch = frame_warning("depth image", depth_frame, self.depth_frame)
        if mismatch:
            warnings["frame_mismatch"] = mismatch
        if not self.use_tf or self.lookup is None:
            return self.parameters, warnings
        try:
            return self.lookup(rgb_frame, depth_frame, stamp_ns), warnings
        except ExtrinsicsUnavailable as exc:
            warnings["tf_fallback"] = f"{exc}; using the depth_to_rgb_* parameters"
            return self.parameters, warnings

    def describe(self, used: Extrinsics) -> str:
        """Where `used`, this picker's answer for a pair, came from (for /diagnostics)."""
        if used.source == "tf":
            return "tf2"
        why = ("use_tf is false" if not self.use_tf else
               "tf2_ros is not installed" if self.lookup is None else
               "tf2 had no transform for the last pair")
        return f"depth_to_rgb_* parameters ({why})"
