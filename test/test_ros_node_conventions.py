"""NaimaNode as ROS users expect it (issue 22), over real DDS with the harness of test_ros_node:
diagnostic_updater's statuses (names, hardware_id, the output's frequency and stamp age, the live
self-check), TF extrinsics for register_depth (tf2_ros is not installable here: a double of its API
shape, test/tf2_double.py, stands in for it inside the node's process), output_encodings,
stamp_source and the renamed diagnostics_period.

Runs with the bicubic baseline (no torch), so the Jazzy job runs it too. Unique ROS_DOMAIN_ID per
test process (set by test_ros_node on import), localhost only; waits on conditions, never on time.
"""
import contextlib
import sys
import threading
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

import test_ros_node
from naima_ros.depth_codec import decode_depth
from ros_waits import wait_for
from test_ros_node import K, LR_H, LR_W, camera_info, depth_msg, next_stamp_ns, rgb_msg
from tf2_double import make_tf2_double, transform

pytestmark = pytest.mark.ros

RGB_FRAME, DEPTH_FRAME = "camera_color_optical_frame", "tof_optical_frame"
# test_ros_node's fixtures: its shared node (per method) and fresh nodes (the rclpy context is conftest's)
running, fresh = test_ros_node.running, test_ros_node.fresh


def main_status(h):
    with h.lock:
        return h.statuses.get(h.status_name)


def topic_status_name(h):
    return f"{h.ns.lstrip('/')}/naima: {h.ns}/depth_registered/image_rect topic status"


def status_of(h, name):
    """(level, message, hardware_id, values) of the newest status `name`, or None."""
    with h.lock:
        return h.statuses.get(name)


@contextlib.contextmanager
def sending(h, make=lambda t: (rgb_msg(t), depth_msg(t)), period_s=0.1):
    """Send `make(stamp)` pairs from a thread until the block ends."""
    done = threading.Event()

    def loop():
        while not done.is_set():
            h.send(*make(next_stamp_ns()))
            done.wait(period_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


# ---------------------------------------------------------------------- diagnostic_updater's way
@pytest.mark.parametrize("running", ["bicubic"], indirect=True)
def test_statuses_are_named_and_identified_as_diagnostic_updater_does(running):
    """'<ns/node>: <task>' without the leading slash, the camera pair's frame_ids as hardware_id,
    the output's topic status beside the main one, and the stamp age from the depth stamp."""
    h = running.h
    t = next_stamp_ns()
    h.send(rgb_msg(t), depth_msg(t, frame=DEPTH_FRAME))
    h.output(t)
    wait_for(lambda: (status_of(h, topic_status_name(h)) or (None, None, ""))[2]
             == f"{RGB_FRAME} + {DEPTH_FRAME}", what="the topic status of the served pair")
    names = {name for name in h.statuses if h.ns.lstrip("/") in name}  # this node's
    assert names == {h.status_name, topic_status_name(h), f"{h.ns.lstrip('/')}/naima: self-check"}
    for name in (h.status_name, topic_status_name(h)):
        wait_for(lambda name=name: status_of(h, name)[2] == f"{RGB_FRAME} + {DEPTH_FRAME}",
                 what=f"hardware_id of {name}")
    # these test stamps are from 1970: the output is "too old", its age ROS now - depth stamp
    level, message, _, values = status_of(h, topic_status_name(h))
    assert level == 1 and "Timestamps too far in past seen." in message
    age_s = float(values["Latest timestamp delay:"])
    assert abs(age_s - (time.time() - t / 1e9)) < 60
    wait_for(lambda: h.diag.get("stamp_age_p50_ms", "nan") != "nan", what="stamp age")
    assert abs(float(h.diag["stamp_age_p50_ms"]) / 1e3 - (time.time() - t / 1e9)) < 120


def test_frequency_and_stamp_age_warn_then_no_events_is_an_error(fresh):
    """expected_rate_min far above what arrives: WARN 'Frequency too low.'; outputs older than
    max_stamp_age: also 'Timestamps too far in past seen.'; nothing served for the window:
    ERROR 'No events recorded.', as diagnostic_updater's TopicDiagnostic."""
    r = fresh("/naima_rate", method="bicubic",
              overrides={"expected_rate_min": 100.0, "expected_rate_max": 200.0,
                         "expected_rate_tolerance": 0.1, "max_stamp_age": 5.0})
    h = r.h
    name = topic_status_name(h)

    def now_pair(age_s):
        def make(_):
            t = time.time_ns() - int(age_s * 1e9)
            return rgb_msg(t), depth_msg(t)
        return make

    with sending(h, now_pair(0.0), period_s=0.2):
        wait_for(lambda: (status_of(h, name) or (None, ""))[:2] == (1, "Frequency too low."),
                 what="WARN Frequency too low.")
    values = status_of(h, name)[3]
    assert float(values["Minimum acceptable frequency (Hz)"]) == pytest.approx(90.0)
    assert float(values["Maximum acceptable frequency (Hz)"]) == pytest.approx(220.0)
    with sending(h, now_pair(30.0), period_s=0.2):
        wait_for(lambda: (status_of(h, name) or (None, ""))[:2] ==
                 (1, "Frequency too low.; Timestamps too far in past seen."),
                 what="WARN with the stamps too old")
    wait_for(lambda: status_of(h, name)[:2] == (2, "No events recorded."),
             what="ERROR once nothing was served for the window")


def test_self_check_warns_when_the_output_departs_from_its_input(fresh):
    """The output area-averaged onto the LR grid against its LR input: OK while the model agrees
    with its input, WARN when it starts returning 1.6 x the depth (a model gone wrong), OK again
    once it is right."""
    r = fresh("/naima_check", method="bicubic")
    h = r.h
    name = f"{h.ns.lstrip('/')}/naima: self-check"

    def check():
        return status_of(h, name) or (None, "", "", {})

    with sending(h):
        wait_for(lambda: check()[0] == 0 and int(check()[3].get("self_check.frames", 0)) >= 6,
                 what="self-check OK over a few frames")
        assert float(check()[3]["self_check.rmse_m"]) < 0.02
        r.up.gain = 1.6
        wait_for(lambda: check()[0] == 1 and "output departs from its LR input" in check()[1],
                 what="self-check WARN")
        assert float(check()[3]["self_check.rmse_m"]) > 0.3
        assert float(check()[3]["self_check.beyond_share"]) > 0.9
        r.up.gain = 1.0
        wait_for(lambda: check()[:2] == (0, "output consistent with its input"),
                 what="self-check OK again")


def test_diagnostics_period_still_works_with_a_deprecation_warning(fresh):
    r = fresh("/naima_oldname", method="bicubic",
              overrides={"diagnostic_updater.period": None, "diagnostics_period": 0.3})
    assert r.node._values["diagnostic_updater.period"] == 0.3
    assert r.node._diag_timer.timer_period_ns == 300_000_000
    assert wait_for(lambda: r.h.warnings("parameter diagnostics_period is deprecated: use "
                                         "diagnostic_updater.period"), what="deprecation warning")
    assert r.node.get_parameter("diagnostic_updater.period").value == 1.0  # the new one untouched


# ---------------------------------------------------------------------- outputs
def test_output_encodings_on_their_own_topics_and_stamp_source(fresh):
    """output_encodings [32FC1, 16UC1]: the same depth on image_rect_32fc1 and (in mm)
    image_rect_16uc1, beside image_rect in output_encoding; stamp_source rgb stamps every output
    like the RGB image, and switches back to the depth's at run time."""
    r = fresh("/naima_encodings", method="bicubic",
              overrides={"output_encodings": ["32FC1", "16UC1"], "stamp_source": "rgb"})
    h = r.h
    got = {}
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    for encoding in ("32fc1", "16uc1"):
        h.node.create_subscription(
            Image, f"depth_registered/image_rect_{encoding}",
            lambda m, e=encoding: got.setdefault((e, m.header.stamp.sec, m.header.stamp.nanosec), m),
            qos)
    wait_for(lambda: all(h.node.count_publishers(f"{h.ns}/depth_registered/image_rect_{e}")
                         for e in ("32fc1", "16uc1")), what="the encoding publishers")
    t_rgb = next_stamp_ns()
    t_depth = t_rgb + 10_000_000  # within slop: a pair
    h.send(rgb_msg(t_rgb), depth_msg(t_depth))
    image, info, cloud = h.output(t_rgb)  # stamped like the RGB image
    assert info.header.stamp == cloud.header.stamp == image.header.stamp
    key = divmod(t_rgb, 1_000_000_000)
    wait_for(lambda: all((e, *key) in got for e in ("32fc1", "16uc1")), what="both encodings")
    as_m, as_mm = got[("32fc1", *key)], got[("16uc1", *key)]
    assert image.encoding == as_m.encoding == "32FC1" and as_mm.encoding == "16UC1"
    assert bytes(as_m.data) == bytes(image.data)
    assert as_mm.header == as_m.header == image.header
    metres, valid = decode_depth(as_m.data, "32FC1", 48, 64, as_m.step, as_m.is_bigendian)
    mm = np.frombuffer(as_mm.data, "<u2").reshape(48, 64)
    assert valid.all()
    np.testing.assert_array_equal(mm, np.rint(metres * 1000).astype(np.uint16))

    r.node.set_parameters([Parameter("stamp_source", value="depth")])
    t_rgb = next_stamp_ns()
    h.send(rgb_msg(t_rgb), depth_msg(t_rgb + 10_000_000))
    h.output(t_rgb + 10_000_000)


@pytest.mark.parametrize("running", ["bicubic"], indirect=True)
def test_no_encoding_topic_without_output_encodings(running):
    h = running.h
    h.serve_good()
    for encoding in ("32fc1", "16uc1"):
        assert h.node.count_publishers(f"{h.ns}/depth_registered/image_rect_{encoding}") == 0


# ---------------------------------------------------------------------- TF
@pytest.fixture
def tf2(monkeypatch):
    """tf2_ros for the node: the double, installed before the node imports it."""
    module = make_tf2_double()
    monkeypatch.setitem(sys.modules, "tf2_ros", module)
    return module


def registering(fresh, namespace, **overrides):
    """A registering node with its depth CameraInfo: the depth camera has the RGB camera's
    intrinsics at 8 x 6, the depth_to_rgb_* parameters say the cameras coincide."""
    r = fresh(namespace, method="bicubic",
              overrides={"register_depth": True, "depth_to_rgb_translation": [0.0, 0.0, 0.0],
                         **overrides})
    h = r.h
    depth_info_pub = h.node.create_publisher(
        CameraInfo, "depth/camera_info", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    wait_for(depth_info_pub.get_subscription_count, what="depth/camera_info subscription")
    lr_k = [K[0] / 8, 0.0, (K[2] + 0.5) / 8 - 0.5, 0.0, K[4] / 8, (K[5] + 0.5) / 8 - 0.5,
            0.0, 0.0, 1.0]
    depth_info_pub.publish(camera_info(ww=LR_W, hh=LR_H, k=lr_k))
    wait_for(lambda: r.node._depth_info is not None, what="depth camera_info at the node")
    return r


def serve_plane(h, frame=DEPTH_FRAME):
    """A plane 2 m away; returns the output's valid mask on the 64 x 48 grid."""
    t = next_stamp_ns()
    h.send(rgb_msg(t), depth_msg(t, np.full((LR_H, LR_W), 2.0, np.float32), frame=frame))
    image = h.output(t)[0]
    return decode_depth(image.data, image.encoding, 48, 64, image.step, image.is_bigendian)[1]


def test_register_depth_takes_the_extrinsics_from_tf(fresh, tf2):
    """A transform rgb <- tof in tf2 (the ToF 0.8 m to the left; the parameters say 0): the depth
    lands 2 LR columns over, as tf2 says; a depth frame tf2 does not know falls back to the
    parameters with a counted, throttled warning and a WARN; an unexpected frame_id is a
    warning too; /diagnostics names the source."""
    r = registering(fresh, "/naima_tf", expected_depth_frame=DEPTH_FRAME)
    h, node = r.h, r.node
    (listener,) = tf2.TransformListener.instances
    assert listener.node is node and listener.buffer is node._tf.buffer  # on the node, at set-up
    node._tf.buffer.set_transform_static(transform(RGB_FRAME, DEPTH_FRAME, (0.8, 0.0, 0.0)),
                                         "urdf")
    valid = serve_plane(h)
    assert not valid[:, :16].any() and valid[:, 16:].all()  # tf2's 0.8 m: 2 LR columns of holes
    target, source, when, _ = node._tf.buffer.calls[-1]
    assert (target, source) == (RGB_FRAME, DEPTH_FRAME)
    wait_for(lambda: h.diag.get("extrinsics") == "tf2", what="extrinsics from tf2")
    assert h.diag["extrinsics.translation_m"] == "[0.8, 0.0, 0.0]"
    wait_for(lambda: h.status == (0, "running"), what="OK")

    before = h.counter("events.tf_fallback")
    valid = serve_plane(h, frame="camera_depth_optical_frame")  # not in the tree
    assert valid.all()  # the parameters: the cameras coincide
    wait_for(lambda: h.counter("events.tf_fallback") > before, what="tf_fallback counted")
    assert wait_for(lambda: h.warnings("no transform camera_color_optical_frame <- "
                                       "camera_depth_optical_frame"), what="fallback warning")
    wait_for(lambda: h.status[0] == 1 and "LookupException" in h.status[1]
             and "is not the expected 'tof_optical_frame'" in h.status[1],
             what="WARN naming the fallback and the unexpected frame")
    assert h.diag["extrinsics"] == "depth_to_rgb_* parameters (tf2 had no transform for the " \
                                   "last pair)"
    assert h.counter("events.frame_mismatch") >= 1
    serve_plane(h)
    wait_for(lambda: h.status == (0, "running"), what="OK once tf2 answers again")


def test_use_tf_false_lets_the_parameters_override_tf(fresh, tf2):
    r = registering(fresh, "/naima_notf", use_tf=False)
    assert r.node._tf is None and not tf2.TransformListener.instances  # no /tf subscriptions
    valid = serve_plane(r.h)
    assert valid.all()
    wait_for(lambda: r.h.diag.get("extrinsics") ==
             "depth_to_rgb_* parameters (use_tf is false)", what="the source")


def test_without_tf2_ros_the_parameters_serve_and_diagnostics_say_why(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2_ros", None)  # an install without tf2_ros
    r = registering(fresh, "/naima_tfless")
    assert r.node._tf is None
    assert serve_plane(r.h).all()
    wait_for(lambda: r.h.diag.get("extrinsics") ==
             "depth_to_rgb_* parameters (tf2_ros is not installed)", what="the source")
    assert r.h.status == (0, "running")
