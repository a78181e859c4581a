"""ros.diagnostics the diagnostic_updater way: status names, hardware_id, the output's topic status
(rate, stamp age) and the self-check as diagnostic_msgs statuses; stamp age in the node's status."""
import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from std_msgs.msg import Header

from naima_ros.health import StreamHealth
from naima_ros.ros.diagnostics import (NodeStats, diagnostic_status, hardware_id, status_message,
                                       status_name)


def values(status):
    return {kv.key: kv.value for kv in status.values}


def test_status_name_and_hardware_id():
    assert status_name("/naima", "depth super-resolution") == "naima: depth super-resolution"
    assert status_name("/robot/front/naima", "output") == "robot/front/naima: output"
    assert hardware_id("camera_color_optical_frame", "tof_optical") == \
        "camera_color_optical_frame + tof_optical"
    assert hardware_id("rgb_optical", "rgb_optical") == "rgb_optical"  # registered depth
    assert hardware_id("", "") == "none"


def test_topic_status_merges_rate_and_stamp_age():
    """StreamHealth's topic report is diagnostic_updater's TopicDiagnostic: the worse level, both
    messages when both are not OK, the frequency and stamp values side by side."""
    health = StreamHealth(10.0, 10.0, 0.1, max_age_s=0.5, start_s=0.0)
    for k in range(3):  # 3 frames in 1 s against 10 Hz expected, each 0.8 s old
        assert health.published(1.0 + 0.1 * k, 1.8 + 0.1 * k) == pytest.approx(0.8)
    status = diagnostic_status("naima: depth_registered/image_rect topic status", "rgb + tof",
                               *health.report(now_s=1.0)[0])
    assert status.level == DiagnosticStatus.WARN
    assert status.message == "Frequency too low.; Timestamps too far in past seen."
    assert status.name == "naima: depth_registered/image_rect topic status"
    assert status.hardware_id == "rgb + tof"
    v = values(status)
    assert v["Actual frequency (Hz)"] == "3.0" and v["Target frequency (Hz)"] == "10.0"
    assert float(v["Latest timestamp delay:"]) == pytest.approx(0.8)
    for _ in range(16):  # 19 frames over the window's 2 s: 9.5 Hz, within 10 Hz +- 10 %
        health.published(5.0, 5.05)
    ok = diagnostic_status("n", "h", *health.report(now_s=2.0)[0])
    assert (ok.level, ok.message) == (DiagnosticStatus.OK, "Desired frequency met")
    no_frames = diagnostic_status("n", "h", *StreamHealth(start_s=0.0).report(now_s=1.0)[0])
    assert (no_frames.level, no_frames.message) == (DiagnosticStatus.ERROR, "No events recorded.")
    assert "Maximum acceptable frequency (Hz)" not in values(no_frames)  # expected_rate_max 0


def test_self_check_status():
    health = StreamHealth(start_s=0.0)
    lr = np.full((3, 4), 2.0)
    health.published(1.0, 1.1, np.kron(lr, np.ones((2, 2))), lr)
    status = diagnostic_status("naima: self-check", "rgb + tof", *health.report(1.0)[1])
    assert (status.level, status.message) == (DiagnosticStatus.OK,
                                              "output consistent with its input")
    assert values(status)["self_check.rmse_m"] == "0.0"
    health.published(2.0, 2.1, np.kron(lr, np.ones((2, 2))) * 1.5, lr)
    assert diagnostic_status("n", "h", *health.report(2.0)[1]).level == DiagnosticStatus.WARN


def test_stamp_age_in_the_node_status():
    stats = NodeStats()
    for latency, age in ((0.010, 0.050), (0.020, 0.060), (0.030, math.nan)):
        stats.frame_published(latency, latency / 2, age)
    snap = stats.snapshot()
    assert snap["stamp_age_p50_ms"] == pytest.approx(55.0)
    assert snap["latency_p50_ms"] == pytest.approx(20.0)  # from arrival, kept beside it
    status = status_message("naima: depth", "rgb + tof", Header().stamp, snap, {}, "serving",
                            "idle", 0).status[0]
    assert values(status)["stamp_age_p50_ms"] == "55.0"
