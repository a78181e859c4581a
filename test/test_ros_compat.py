"""ros.compat against this rclpy and against fakes of Humble's API shape (no DDS here; the node
under the Humble shape over DDS is in test_ros_node.py)."""
import sys
import types

import pytest
from rcl_interfaces.msg import SetParametersResult

from naima_ros.ros import compat
from naima_ros.ros.compat import MatchedInfo, PublisherCountWatch


class HumbleSubscriptionEventCallbacks:
    """rclpy.qos_event.SubscriptionEventCallbacks on Humble: no `matched`."""

    def __init__(self, *, deadline=None, incompatible_qos=None, liveliness=None,
                 message_lost=None, use_default_callbacks=True):
        self.deadline = deadline


def test_this_rclpy_has_the_matched_event():
    cls = compat.subscription_event_callbacks_class()
    assert cls.__module__ == "rclpy.event_handler" and compat.has_matched_event(cls)
    assert compat.matched_event_callbacks(print).matched is print


def test_humble_event_module_and_no_matched_event(monkeypatch):
    monkeypatch.setitem(sys.modules, "rclpy.event_handler", None)  # not importable, as on Humble
    qos_event = types.ModuleType("rclpy.qos_event")
    qos_event.SubscriptionEventCallbacks = HumbleSubscriptionEventCallbacks
    monkeypatch.setitem(sys.modules, "rclpy.qos_event", qos_event)
    assert compat.subscription_event_callbacks_class() is HumbleSubscriptionEventCallbacks
    assert not compat.has_matched_event()
    assert compat.matched_event_callbacks(print) is None


class FakeNode:
    """The parameter-callback API of a node: Humble's (on-set only) or Iron's (also post-set)."""

    def __init__(self, post_set: bool):
        self.on_set, self.post_set = [], []
        if post_set:
            self.add_post_set_parameters_callback = self.post_set.append

    def add_on_set_parameters_callback(self, callback):
        self.on_set.append(callback)


@pytest.mark.parametrize("native", [True, False])
def test_parameter_callbacks_apply_accepted_changes_only(native):
    applied = []

    def validate(params):
        return SetParametersResult(successful=params != ["bad"], reason="no")

    node = FakeNode(post_set=native)
    assert compat.add_parameter_callbacks(node, validate, applied.append) is native
    (on_set,) = node.on_set
    assert not on_set(["bad"]).successful
    assert on_set(["good"]).successful
    if native:  # rclpy calls the post-set itself after storing the values
        assert node.post_set == [applied.append] and applied == []
    else:  # Humble: applied from the on-set path, only when accepted
        assert applied == [["good"]]


def test_publisher_count_watch_reports_changes_like_the_matched_event():
    counts = {"a": 0, "b": 1}
    seen = []
    watch = PublisherCountWatch({t: (lambda t=t: counts[t]) for t in counts},
                                lambda topic, info: seen.append((topic, info)))
    watch.poll()
    assert seen == [("b", MatchedInfo(1, 1))]
    counts.update(a=2, b=0)
    watch.poll()
    watch.poll()  # nothing changed: nothing reported
    assert seen[1:] == [("a", MatchedInfo(2, 2)), ("b", MatchedInfo(0, -1))]


def test_qos_overriding_kwargs_and_its_absence(monkeypatch):
    from rclpy.qos_overriding_options import QoSOverridingOptions

    (options,) = compat.qos_overriding_kwargs().values()
    assert isinstance(options, QoSOverridingOptions)
    monkeypatch.setitem(sys.modules, "rclpy.qos_overriding_options", None)  # not importable
    assert compat.qos_overriding_kwargs() == {}  # the entities keep their default QoS


def test_resolve_topic_name_with_and_without_the_node_api():
    class WithApi:
        def resolve_topic_name(self, name):
            return "/remapped/" + name

    class Without:  # an rclpy without Node.resolve_topic_name: namespace expansion only
        def get_namespace(self):
            return "/robot/cam"

    assert compat.resolve_topic_name(WithApi(), "rgb") == "/remapped/rgb"
    assert compat.resolve_topic_name(Without(), "rgb/image_rect_color") == \
        "/robot/cam/rgb/image_rect_color"
    assert compat.resolve_topic_name(Without(), "/abs/topic") == "/abs/topic"
