"""naima_ros.ros.tf against a tf2_ros double of the real API shape.

tf2_ros is an apt package and not installable here. The double is a small tf2: `Buffer` keeps a
tree of `geometry_msgs/TransformStamped` (parent = header.frame_id, child = child_frame_id), static
or stamped, and answers `lookup_transform(target_frame, source_frame, time, timeout)` with the
transform that maps source points into the target frame, raising tf2's `LookupException`,
`ConnectivityException` and `ExtrapolationException` (all `TransformException`s) where tf2 does;
`TransformListener(buffer, node)` records what it was given. The expected extrinsics are computed
independently (scipy) from the tree as a URDF would publish it.
"""
import sys
import types

import numpy as np
import pytest
from geometry_msgs.msg import TransformStamped
from scipy.spatial.transform import Rotation

from naima_ros.registration import register_depth
from naima_ros.ros import tf
from naima_ros.ros.tf import DepthToRgb, Extrinsics, frame_warning, tf_lookup

STAMP_NS = 1_700_000_000_123_456_789


def make_tf2_double():
    module = types.ModuleType("tf2_ros")

    class TransformException(Exception):
        pass

    class LookupException(TransformException):
        pass

    class ConnectivityException(TransformException):
        pass

    class ExtrapolationException(TransformException):
        pass

    class Buffer:
        def __init__(self, cache_time=None, node=None):
            self.edges = {}  # child -> (parent, 4x4 T_parent<-child, stamps ns or None: static)
            self.calls = []

        def _set(self, msg, stamps):
            m = np.eye(4)
            q, t = msg.transform.rotation, msg.transform.translation
            m[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
            m[:3, 3] = [t.x, t.y, t.z]
            self.edges[msg.child_frame_id] = (msg.header.frame_id, m, stamps)

        def set_transform_static(self, msg, authority):
            self._set(msg, None)

        def set_transform(self, msg, authority):
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            old = self.edges.get(msg.child_frame_id)
            self._set(msg, (old[2] if old else []) + [stamp])

        def _to_root(self, frame, arg, stamp):
            known = set(self.edges) | {p for p, _, _ in self.edges.values()}
            if frame not in known:
                raise LookupException(f'"{frame}" passed to lookupTransform argument {arg} '
                                      f'does not exist. ')
            m = np.eye(4)
            while frame in self.edges:
                parent, edge, stamps = self.edges[frame]
                if stamps is not None and stamp and not min(stamps) <= stamp <= max(stamps):
                    raise ExtrapolationException(
                        f"Lookup would require extrapolation into the future. Requested time "
                        f"{stamp / 1e9} but the latest data is at time {max(stamps) / 1e9}, when "
                        f"looking up transform from frame [{frame}] to frame [{parent}]")
                m, frame = edge @ m, parent
            return frame, m

        def lookup_transform(self, target_frame, source_frame, time, timeout=None):
            self.calls.append((target_frame, source_frame, time, timeout))
            stamp = time.nanoseconds
            root_s, root_from_source = self._to_root(source_frame, "source_frame", stamp)
            root_t, root_from_target = self._to_root(target_frame, "target_frame", stamp)
            if root_s != root_t:
                raise ConnectivityException(
                    f"Could not find a connection between '{target_frame}' and "
                    f"'{source_frame}' because they are not part of the same tree.Tf has two "
                    f"or more unconnected trees.")
            m = np.linalg.inv(root_from_target) @ root_from_source
            out = TransformStamped()
            out.header.frame_id, out.child_frame_id = target_frame, source_frame
            sec, out.header.stamp.nanosec = divmod(stamp, 10**9)
            out.header.stamp.sec = sec
            t, q = out.transform.translation, out.transform.rotation
            t.x, t.y, t.z = (float(v) for v in m[:3, 3])
            q.x, q.y, q.z, q.w = (float(v) for v in Rotation.from_matrix(m[:3, :3]).as_quat())
            return out

    class TransformListener:
        instances = []

        def __init__(self, buffer, node, *, spin_thread=False, qos=None, static_qos=None):
            self.buffer, self.node = buffer, node
            TransformListener.instances.append(self)

    for cls in (TransformException, LookupException, ConnectivityException,
                ExtrapolationException, Buffer, TransformListener):
        setattr(module, cls.__name__, cls)
    return module


def transform(parent, child, xyz, rotvec=(0.0, 0.0, 0.0), stamp_ns=0):
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = xyz
    q = Rotation.from_rotvec(rotvec).as_quat()
    (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
     msg.transform.rotation.w) = (float(v) for v in q)
    return msg


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
