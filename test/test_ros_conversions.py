"""ros.conversions, serving's message reading and ros.diagnostics on real sensor_msgs /
diagnostic_msgs objects (no DDS)."""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CameraInfo, Image, PointField
from std_msgs.msg import Header

from naima_ros.depth_codec import decode_depth, encode_depth
from naima_ros.geometry import depth_to_points
from naima_ros.ros.conversions import camera_info_msg, depth_image, points_cloud
from naima_ros.ros.diagnostics import InputWatch, NodeStats, WarningThrottle, status_message
from naima_ros.serving import (camera_info_image_size, decode_images, output_camera_info,
                               stamp_ns)


def camera_info_to_output(info, width, height, hdr):
    """The node's output CameraInfo message: serving's fields, conversions' message."""
    fields, intr = output_camera_info(info, width, height)
    return camera_info_msg(fields, hdr), intr


def header(sec=12, nanosec=345, frame="cam"):
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


def info_msg(**kw) -> CameraInfo:
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob", d=[0.1, 0, 0, 0, 0],
                      k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1],
                      p=[500.0, 0, 320, -30, 0, 500, 240, 0, 0, 0, 1, 0])
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def test_stamp_ns():
    assert stamp_ns(header(3, 7).stamp) == 3_000_000_007


def test_depth_image_round_trip_both_encodings():
    depth = np.array([[1.5, np.nan, 0.25]], dtype=np.float32)
    for encoding, step in (("32FC1", 12), ("16UC1", 6)):
        msg = depth_image(encode_depth(depth, encoding), header())
        assert isinstance(msg, Image) and (msg.encoding, msg.step) == (encoding, step)
        assert msg.header.frame_id == "cam" and stamp_ns(msg.header.stamp) == 12_000_000_345
        back, valid = decode_depth(msg.data, msg.encoding, msg.height, msg.width, msg.step,
                                   bool(msg.is_bigendian))
        assert valid.tolist() == [[True, False, True]]
        np.testing.assert_allclose(back[valid], [1.5, 0.25])


def test_rgb_from_bgra_message_with_padding():
    px = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    rows = np.concatenate([px.reshape(2, 12), np.zeros((2, 4), np.uint8)], 1)
    msg = Image(height=2, width=3, encoding="bgra8", step=16, data=rows.tobytes())
    depth = Image(height=1, width=1, encoding="16UC1", step=2, data=b"\x01\x00")
    rgb, depth_m, valid = decode_images(msg, depth)
    np.testing.assert_array_equal(rgb, px[..., 2::-1])
    assert rgb.flags.writeable and depth_m[0, 0] == np.float32(0.001) and valid.all()


def test_camera_info_rescaled_with_binning_roi_and_tx():
    info = info_msg(binning_x=2, binning_y=2)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 64, 48, 320, 240
    assert camera_info_image_size(info) == (160, 120)
    out, intr = camera_info_to_output(info, 640, 480, header())
    assert (out.width, out.height, out.binning_x, out.binning_y) == (640, 480, 0, 0)
    assert out.roi.width == 0 and out.header.frame_id == "cam"
    s = 640 / 160  # binned crop -> output
    np.testing.assert_allclose(out.k[0], 500 / 2 * s)
    np.testing.assert_allclose(out.k[2], ((320 - 64) / 2 + 0.5) * s - 0.5)
    np.testing.assert_allclose(out.k[5], ((240 - 48) / 2 + 0.5) * s - 0.5)
    np.testing.assert_allclose(out.p[3], -30 / 2 * s)  # Tx scales with fx
    assert list(out.d) == [0.1, 0, 0, 0, 0] and out.distortion_model == "plumb_bob"
    assert intr.fx == pytest.approx(out.k[0])


def test_camera_info_nan_is_an_error():
    info = info_msg()
    info.k[4] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        camera_info_to_output(info, 640, 480, header())


@pytest.mark.parametrize("rgb,stride,step,shape", [(True, 1, 32, (4, 6)), (False, 2, 16, (2, 3))])
def test_points_cloud_message(rgb, stride, step, shape):
    depth = np.full((4, 6), 2.0, dtype=np.float32)
    depth[0, 0] = np.nan
    colors = np.full((4, 6, 3), 7, np.uint8) if rgb else None
    _, intr = camera_info_to_output(info_msg(), 6, 4, header())
    msg = points_cloud(depth_to_points(depth, intr.fx, intr.fy, intr.cx, intr.cy, rgb=colors,
                                       stride=stride), header())
    assert (msg.height, msg.width) == shape
    assert (msg.point_step, msg.row_step) == (step, step * shape[1])
    assert len(msg.data) == msg.row_step * msg.height
    names = ["x", "y", "z", "rgb"] if rgb else ["x", "y", "z"]
    assert [f.name for f in msg.fields] == names
    assert all(f.datatype == PointField.FLOAT32 and f.count == 1 for f in msg.fields)
    assert [f.offset for f in msg.fields] == [0, 4, 8, 16][:len(names)]
    z = np.frombuffer(msg.data, "<f4").reshape(shape[0], shape[1], step // 4)[..., 2]
    assert np.isnan(z[0, 0]) and (z.ravel()[1:] == 2.0).all()
    assert msg.is_dense is False


@pytest.mark.parametrize("check_fields", ["", "1"])
def test_output_messages_serialise_as_plain_constructors(check_fields, monkeypatch):
    """One copy into the message, the same message on the wire as the generated constructors give, with or
    without ROS_PYTHON_CHECK_FIELDS (read per message class at import: patched on the classes).

    Compared after a serialise/deserialise round trip, field by field: the CDR bytes themselves may differ
    in their alignment padding, which the serialiser leaves uninitialised (seen on Jazzy: one padding byte
    after `is_bigendian`)."""
    import sensor_msgs.msg._image as image_module
    import sensor_msgs.msg._point_cloud2 as cloud_module
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import PointCloud2

    def on_the_wire(msg):
        return deserialize_message(serialize_message(msg), type(msg))

    for module in (image_module, cloud_module):
        monkeypatch.setattr(module, "ros_python_check_fields", check_fields, raising=False)
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 3.0, (6, 8)).astype(np.float32)
    depth[1, 2] = np.nan
    points = depth_to_points(depth, 50.0, 50.0, 4.0, 3.0, rgb=rng.integers(0, 256, (6, 8, 3), np.uint8))
    cloud = points_cloud(points, header())
    fields = [PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1)
              for n, o in (("x", 0), ("y", 4), ("z", 8), ("rgb", 16))]
    plain = PointCloud2(header=header(), height=6, width=8, fields=fields, is_bigendian=False,
                        point_step=32, row_step=256, data=points.tobytes(), is_dense=False)
    assert on_the_wire(cloud) == on_the_wire(plain)
    points["z"] = 0.0  # the message holds its own copy
    assert bytes(cloud.data) == bytes(plain.data)
    enc = encode_depth(depth, "32FC1")
    image = depth_image(enc, header())
    plain = Image(header=header(), height=6, width=8, encoding="32FC1", is_bigendian=False, step=32,
                  data=enc.data)
    assert on_the_wire(image) == on_the_wire(plain)


def test_warning_throttle_per_key():
    lines = []
    throttle = WarningThrottle(period_s=3600)
    assert throttle("a", lines.append, "first a")
    assert not throttle("a", lines.append, "second a")
    assert throttle("b", lines.append, "first b")  # another key is not throttled by "a"
    throttle.period_s = 0.0
    assert throttle("a", lines.append, "third a")
    assert lines == ["first a", "first b", "third a (1 similar suppressed)"]


def test_node_stats_and_status_message():
    stats = NodeStats()
    for _ in range(4):
        stats.pair_received()
    for latency in (0.010, 0.020, 0.030):
        stats.frame_published(latency, latency / 2)
    stats.drop("superseded")
    stats.drop("size_mismatch", 2)
    stats.event("publisher_restart")
    stats.roll_period()
    snap = stats.snapshot()
    assert snap["pairs_received"] == 4 and snap["frames_published"] == 3
    assert snap["dropped_total"] == 3 and snap["dropped"] == {"superseded": 1, "size_mismatch": 2}
    assert snap["latency_p50_ms"] == pytest.approx(20.0)
    assert snap["latency_p95_ms"] == pytest.approx(29.0)
    assert snap["input_rate_hz"] > 0
    model = {"checkpoint": "/x.safetensors", "preset": "light", "scale": 8, "device": "cpu",
             "precision": "fp32", "backbone": "b"}
    arr = status_message("/ns/naima: depth", "cpu", header().stamp, snap, model, "serving",
                         "idle", 3)
    (status,) = arr.status
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN  # drops since the last status
    assert values["dropped.size_mismatch"] == "2" and values["events.publisher_restart"] == "1"
    assert values["scale"] == "8" and values["ready"] == "True"

    def status(state, recent=0, stall=None, swap="idle"):
        s = status_message("n", "cpu", header().stamp, snap, model, state, swap, recent,
                           stall).status[0]
        return s.level, s.message

    assert status("serving") == (DiagnosticStatus.OK, "running")
    assert status("loading model m.safetensors x8") == (
        DiagnosticStatus.WARN, "loading model m.safetensors x8, not serving yet")
    assert status("failed: cannot start: no file") == (
        DiagnosticStatus.ERROR, "model failed to load: cannot start: no file")
    assert status("serving", stall="nothing served: why") == (DiagnosticStatus.WARN,
                                                              "nothing served: why")
    assert status("serving", swap="failed: bad tensors") == (
        DiagnosticStatus.WARN, "model swap failed: bad tensors")
    assert status("inactive") == (DiagnosticStatus.OK, "inactive")


def test_input_watch_says_why_nothing_is_served():
    topics = {"rgb": "/cam/color", "depth": "/tof/depth"}
    ms = 1_000_000

    def feed(watch, t0, n, depth_offset_ms, rgb=True, depth=True, period=0.1):
        for i in range(n):
            stamp = 10**12 + int((t0 + i * period) * 1e9)
            if rgb:
                watch.seen("rgb", stamp, now=t0 + i * period)
            if depth:
                watch.seen("depth", stamp + depth_offset_ms * ms, now=t0 + i * period + 0.01)

    watch = InputWatch(topics, slop=0.02)
    assert watch.stall(now=0.0) is None  # nothing arrived: not a stall
    feed(watch, 0.0, 3, 25)
    assert watch.stall(now=0.25) is None  # not yet a few periods
    feed(watch, 0.3, 5, 25)
    assert watch.stall(now=0.75) == ("nothing served for 0.8 s: no RGB/depth pair within slop "
                                     "0.02 s: depth stamps trail RGB by 25 ms")
    assert watch.stall(now=0.75, model_s=1.0) is None  # a slow model is not a stall
    assert watch.stall(now=5.0) is None  # the inputs stopped: not a stall either
    watch.served(now=0.75)
    feed(watch, 0.8, 10, -40)
    assert watch.stall(now=1.75).endswith("depth stamps lead RGB by 40 ms")
    watch.dropped("size_mismatch", "rgb 56x40 is not 8 x depth 8x6", now=1.8)
    assert watch.stall(now=1.8).endswith("pairs are dropped [size_mismatch]: rgb 56x40 is not "
                                         "8 x depth 8x6")
    exact = InputWatch(topics, slop=0.02, exact=True)
    feed(exact, 0.0, 10, 0, depth=False)
    assert exact.stall(now=0.95) == ("nothing served for 0.9 s: /cam/color arrives but "
                                     "/tof/depth does not")
