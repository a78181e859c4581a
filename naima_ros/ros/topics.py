"""The contract's topics (`naima_ros.contract.TOPICS`) as rclpy sees them: message classes and the
default QoS profile of each QoS role."""
from __future__ import annotations

import importlib

from rclpy.qos import QoSProfile, ReliabilityPolicy

from naima_ros.contract import QOS_ROLES

__all__ = ["message_class", "qos_profile"]

_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def message_class(msg_type: str) -> type:
    """The rclpy message class of 'pkg/msg/Name'.

    Raises:
        ImportError, AttributeError: the type is not installed for rclpy.
    """
    pkg, _, name = msg_type.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def qos_profile(role: str) -> QoSProfile:
    """A fresh default profile of a QoS role (`naima_ros.contract.QOS_ROLES`): keep last, volatile.

    Fresh, because rclpy writes each entity's
    `qos_overrides./<topic>.<publisher|subscription>.{history,depth,reliability}` parameters into
    the profile object it is given.
    """
    q = QOS_ROLES[role]
    return QoSProfile(depth=q.depth, reliability=_RELIABILITY[q.reliability])
