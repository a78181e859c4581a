"""The rclpy APIs that differ between Humble and Iron/Jazzy/Kilted, feature-detected in one place.

- Subscription event callbacks live in `rclpy.event_handler` since Iron, `rclpy.qos_event` on
  Humble (`subscription_event_callbacks_class`).
- The `matched` subscription event (publishers appearing and leaving) exists since Iron. Without it
  the node polls its subscriptions' publisher counts (`PublisherCountWatch`, called from the
  diagnostics timer) and feeds the same callback with the same kind of info.
- `Node.add_post_set_parameters_callback` exists since Iron. Without it the side effects run from
  the on-set callback once the change is accepted (`add_parameter_callbacks`); they must then
  take the new values from the accepted parameter list, not from `get_parameter`.

- `QoSOverridingOptions` (the `qos_overrides./<topic>.<entity>.*` parameters) exists since
  Galactic, so on every supported distro; `qos_overriding_kwargs` still detects it, so a build
  without it serves with the defaults instead of failing.

Everything is detected when called, so tests can present the Humble shape with monkeypatched
module objects.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["MatchedInfo", "PublisherCountWatch", "add_parameter_callbacks",
           "has_matched_event", "qos_overriding_kwargs", "resolve_topic_name",
           "subscription_event_callbacks_class"]


class MatchedInfo(NamedTuple):
    """The fields of rclpy's `QoSSubscriptionMatchedInfo` the node reads."""

    current_count: int
    current_count_change: int


def subscription_event_callbacks_class():
    """This rclpy's `SubscriptionEventCallbacks` (`event_handler` since Iron, `qos_event` before)."""
    try:
        module = importlib.import_module("rclpy.event_handler")
    except ImportError:
        module = importlib.import_module("rclpy.qos_event")
    return module.SubscriptionEventCallbacks


def has_matched_event(callbacks_class=None) -> bool:
    """Whether `SubscriptionEventCallbacks` takes a `matched` callback (Iron and later)."""
    cls = callbacks_class or subscription_event_callbacks_class()
    try:
        return "matched" in inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature (a C type): ask an instance
        return hasattr(cls(), "matched")


def qos_overriding_kwargs() -> dict:
    """`create_publisher` / `create_subscription` keyword arguments that declare the entity's
    `qos_overrides./<topic>.<publisher|subscription>.{history,depth,reliability}` parameters
    (read-only, set at start-up), or {} where rclpy has no QoS overriding."""
    try:
        module = importlib.import_module("rclpy.qos_overriding_options")
    except ImportError:
        return {}
    options = getattr(module.QoSOverridingOptions, "with_default_policies", None)
    return {"qos_overriding_options": options()} if options else {}


def resolve_topic_name(node, name: str) -> str:
    """The fully qualified, remapped name of `name` (`Node.resolve_topic_name`); where rclpy
    lacks it, the name expanded with the node's namespace (remapping not applied)."""
    resolve = getattr(node, "resolve_topic_name", None)
    if resolve is not None:
        return resolve(name)
    if name.startswith("/"):
        return name
    return f"{node.get_namespace().rstrip('/')}/{name}"


def matched_event_callbacks(on_matched: Callable):
    """Event callbacks that call `on_matched(info)`, or None where rclpy has no matched event."""
    cls = subscription_event_callbacks_class()
    return cls(matched=on_matched) if has_matched_event(cls) else None


class PublisherCountWatch:
    """Publisher counts of subscriptions, polled: `MatchedInfo` changes where rclpy has no
    matched event (Humble).

    Args:
        counters: {topic: `() -> number of publishers`}, e.g. a subscription's
            `get_publisher_count`.
        on_matched: `on_matched(topic, MatchedInfo)`, called from `poll()` for each change.
    """

    def __init__(self, counters: dict[str, Callable[[], int]],
                 on_matched: Callable[[str, MatchedInfo], None]):
        self._counters = counters
        self._on_matched = on_matched
        self._last = {topic: 0 for topic in counters}

    def poll(self) -> None:
        for topic, count in self._counters.items():
            now = int(count())
            change = now - self._last[topic]
            self._last[topic] = now
            if change:
                self._on_matched(topic, MatchedInfo(now, change))


def add_parameter_callbacks(node, on_set: Callable, post_set: Callable) -> bool:
    """Register the validating `on_set(params) -> SetParametersResult` and the side effects
    `post_set(params)`; returns True where rclpy has a post-set callback (Iron and later).

    On Humble `post_set` runs inside the on-set callback after `on_set` accepted the change,
    before rclpy stores the values: so `post_set` reads the new values from `params`.
    """
    if hasattr(node, "add_post_set_parameters_callback"):
        node.add_on_set_parameters_callback(on_set)
        node.add_post_set_parameters_callback(post_set)
        return True

    def on_set_then_apply(params):
        result = on_set(params)
        if result.successful:
            post_set(params)
        return result

    node.add_on_set_parameters_callback(on_set_then_apply)
    return False
