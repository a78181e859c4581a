"""naima_ros.ros.tf against a tf2_ros double of the real API shape (test/tf2_double.py: tf2_ros is
an apt package and not installable here). The expected extrinsics are computed independently
(scipy) from the tree as a URDF would publish it.
"""
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from tf2_double import make_tf2_double, transform

from naima_ros.registration import register_depth
from naima_ros.ros import tf
from naima_ros.ros.tf import DepthToRgb, Extrinsics, frame_warning, tf_lookup

STAMP_NS = 1_700_000_000_123_456_789


# A camera's URDF: camera_link with the RGB and the ToF optical frames under it
RGB_XYZ, RGB_ROT = (0.0, -0.015, 0.002), (-np.pi / 2, 0.0, -np.pi / 2)
TOF_XYZ, TOF_ROT = (0.0, 0.035, 0.0), (-np.pi / 2 + 0.01, 0.02, -np.pi / 2)
PARAMS = Extrinsics((0.01, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))


@pytest.fixture
def tf2(monkeypatch):
    module = make_tf2_double()
    monkeypatch.setitem(sys.modules, "tf2_ros", module)
    return module


@pytest.fixture
def camera(tf2):
    node = object()  # the double's listener only keeps it
    lookup = tf_lookup(node)
    lookup.buffer.set_transform_static(
        transform("camera_link", "rgb_optical", RGB_XYZ, RGB_ROT), "urdf")
    lookup.buffer.set_transform_static(
        transform("camera_link", "tof_optical", TOF_XYZ, TOF_ROT), "urdf")
    return node, lookup


def expected_rgb_from_tof():
    """p_rgb = R p_tof + t from the URDF's two poses, by hand."""
    r_rgb, r_tof = Rotation.from_rotvec(RGB_ROT), Rotation.from_rotvec(TOF_ROT)
    rotation = r_rgb.inv() * r_tof
    t = r_rgb.inv().apply(np.subtract(TOF_XYZ, RGB_XYZ))
    return t, rotation


def test_lookup_is_rgb_from_depth_at_the_depth_stamp(tf2, camera):
    node, lookup = camera
    (listener,) = tf2.TransformListener.instances
    assert listener.buffer is lookup.buffer and listener.node is node
    extr = lookup("rgb_optical", "tof_optical", STAMP_NS)
    (target, source, time, timeout), = lookup.buffer.calls
    assert (target, source, time.nanoseconds) == ("rgb_optical", "tof_optical", STAMP_NS)
    assert timeout.nanoseconds == int(tf.LOOKUP_TIMEOUT_S * 1e9)
    t, rotation = expected_rgb_from_tof()
    assert extr.source == "tf"
    np.testing.assert_allclose(extr.translation_m, t, atol=1e-12)
    np.testing.assert_allclose(Rotation.from_quat(extr.rotation_xyzw).as_matrix(),
                               rotation.as_matrix(), atol=1e-12)
    # 5 cm between the optical centres: the ToF sits 5 cm below the RGB camera (optical y down)
    assert np.linalg.norm(extr.translation_m) == pytest.approx(0.050040, abs=1e-6)


def test_registration_with_the_looked_up_extrinsics_puts_a_point_where_the_tree_does(camera):
    _, lookup = camera
    extr = lookup("rgb_optical", "tof_optical", STAMP_NS)
    k = np.array([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]])
    depth = np.full((24, 32), np.nan, np.float32)
    depth[9, 14] = 2.0
    out, valid = register_depth(depth, k, k, (32, 24), *extr[:2])
    p_tof = np.linalg.solve(k, [14.0, 9.0, 1.0]) * 2.0
    t, rotation = expected_rgb_from_tof()
    uvw = k @ (rotation.apply(p_tof) + t)
    assert valid[int(np.floor(uvw[1] / uvw[2] + 0.5)), int(np.floor(uvw[0] / uvw[2] + 0.5))]


def test_each_tf2_failure_falls_back_to_the_parameters_with_its_reason(tf2, camera):
    _, lookup = camera
    buffer = lookup.buffer
    buffer.set_transform_static(transform("rig", "tof_moved", (0.1, 0, 0)), "elsewhere")
    buffer.set_transform(transform("camera_link", "tof_live", (0.0, 0.03, 0.0),
                                   stamp_ns=STAMP_NS - 10**9), "driver")
    pick = DepthToRgb(lookup, PARAMS)
    for depth_frame, error in (("tof_unknown", "LookupException"),
                               ("tof_moved", "ConnectivityException"),
                               ("tof_live", "ExtrapolationException")):
        extr, warnings = pick("rgb_optical", depth_frame, STAMP_NS)
        assert extr == PARAMS
        assert set(warnings) == {"tf_fallback"}
        message = warnings["tf_fallback"]
        assert f"rgb_optical <- {depth_frame}" in message and error in message
        assert f"{STAMP_NS / 1e9:.6f} s" in message and "depth_to_rgb_*" in message
    extr, warnings = pick("rgb_optical", "tof_optical", STAMP_NS)  # and a good one after them
    assert extr.source == "tf" and not warnings


def test_parameters_override_tf_and_stand_in_without_tf2(monkeypatch, camera):
    _, lookup = camera
    extr, warnings = DepthToRgb(lookup, PARAMS, use_tf=False)("rgb_optical", "tof_optical",
                                                              STAMP_NS)
    assert extr == PARAMS and not warnings and not lookup.buffer.calls
    monkeypatch.setitem(sys.modules, "tf2_ros", None)  # an install without tf2_ros
    assert tf_lookup(object()) is None
    assert DepthToRgb(None, PARAMS)("rgb_optical", "tof_optical", STAMP_NS) == (PARAMS, {})


def test_frame_checks(camera):
    _, lookup = camera
    pick = DepthToRgb(lookup, PARAMS, depth_frame="tof_optical")
    extr, warnings = pick("rgb_optical", "tof_optical", STAMP_NS)
    assert extr.source == "tf" and not warnings
    _, warnings = pick("rgb_optical", "camera_depth_optical_frame", STAMP_NS)
    assert "'camera_depth_optical_frame' is not the expected 'tof_optical'" in \
        warnings["frame_mismatch"]
    extr, warnings = DepthToRgb(lookup, PARAMS)("rgb_optical", "", STAMP_NS)
    assert extr == PARAMS and "depth image has no header.frame_id" in warnings["tf_fallback"]
    assert frame_warning("depth image", "a", "") is None
    assert frame_warning("depth image", "a", "a") is None
