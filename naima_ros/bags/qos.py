"""The QoS `naima-bag replay` offers each topic: what the recording's publishers offered, as
`ros2 bag play` adapts its offers, with sensible defaults where a bag says nothing.

rosbag2 stores each topic's `offered_qos_profiles` in its metadata. A replay offers reliable only
if every recorded publisher did, and transient-local only if every one did: a stronger offer than
the original's would connect subscribers the original never served, a weaker one would lose the
latched messages late subscribers need (tf2's /tf_static listener is transient-local: a volatile
replay of /tf_static never reaches it). A ROS 1 bag records `latching` per connection: latched
topics are replayed reliable + transient-local, the rest reliable + volatile (TCPROS is reliable).
A bag without profiles (e.g. from `naima-bag make`) gets reliable + volatile, and /tf_static
transient-local whatever it recorded. Transient-local topics keep every recorded message for late
joiners (up to `LATCHED_DEPTH_MAX`: several static broadcasters each latch their own), the others
a history of `DEFAULT_DEPTH`.

ROS-free: `replay` turns a `PlaybackQos` into an rclpy QoSProfile.
"""
from __future__ import annotations

from typing import NamedTuple

from rosbags.interfaces import (ConnectionExtRosbag1, ConnectionExtRosbag2, QosDurability,
                                QosReliability)

__all__ = ["DEFAULT_DEPTH", "LATCHED_DEPTH_MAX", "PlaybackQos", "playback_qos"]

DEFAULT_DEPTH = 50  # history of a volatile topic: a burst of frames while discovery settles
LATCHED_DEPTH_MAX = 100  # tf2's static listener keeps 100 too
ALWAYS_LATCHED = ("/tf_static",)


class PlaybackQos(NamedTuple):
    reliable: bool
    transient_local: bool
    depth: int

    def describe(self) -> str:
        return (f"{'reliable' if self.reliable else 'best effort'}, "
                f"{'transient local' if self.transient_local else 'volatile'}, "
                f"keep last {self.depth}")


def playback_qos(connection) -> PlaybackQos:
    """The QoS to replay a `rosbags` connection's topic with (module docstring)."""
    ext = connection.ext
    reliable, latched = True, False
    if isinstance(ext, ConnectionExtRosbag1):
        latched = bool(ext.latching)
    elif isinstance(ext, ConnectionExtRosbag2) and ext.offered_qos_profiles:
        offers = ext.offered_qos_profiles
        reliable = all(q.reliability == QosReliability.RELIABLE for q in offers)
        latched = all(q.durability == QosDurability.TRANSIENT_LOCAL for q in offers)
    latched = latched or connection.topic in ALWAYS_LATCHED
    depth = min(max(int(connection.msgcount), 1), LATCHED_DEPTH_MAX) if latched \
        else DEFAULT_DEPTH
    return PlaybackQos(reliable, latched, depth)
