"""Why the node does not serve a pair: the `Drop` exception and the table of its reasons.

Each reason is a counter in /diagnostics (`dropped.<reason>`) and the tag of the throttled warning;
`naima-bag run` counts the same reasons. `naima_ros.image_transport` (compressed payloads) and
`naima_ros.serving` (everything else) raise it. Outside this table: the node's `internal_error` (its
worker caught something unexpected) and naima-bag run's `sync_unmatched` (a depth frame with no RGB
partner; in the node, unmatched messages are an event, normal with unequal input rates).
"""
from __future__ import annotations

__all__ = ["DROP_REASONS", "Drop"]

DROP_REASONS = {
    "zero_stamp": "a header stamp is zero (an unset clock)",
    "stamp_backwards": "depth stamp not newer than the last served one (by at most 1 s)",
    "missing_camera_info": "no RGB CameraInfo yet",
    "empty_image": "an image with no pixels or no data",
    "unsupported_encoding": "an encoding the node cannot decode",
    "oversized": "an image above max_input_pixels",
    "malformed_image": "step, size and data length disagree",
    "size_mismatch": "RGB is not scale x depth (and cannot be resized to it)",
    "invalid_camera_info": "CameraInfo of another size, or NaN/degenerate intrinsics",
    "all_invalid_depth": "no depth pixel inside [min_depth, max_depth]",
    "inference_error": "the predictor raised",
}


class Drop(Exception):
    """An input that is not served: `reason` (a key of `DROP_REASONS`) is its counter name, the
    message says what was wrong and what was expected."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
