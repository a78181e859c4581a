"""The node (over real DDS) and `naima-bag run` (offline) serve the same recorded pairs the same way:
byte-identical outputs for the good pairs and the same drop reason for each bad one.

One list of `rosbags` messages is written to a bag for `naima-bag run` and, converted to rclpy
messages through their CDR bytes, published pair by pair to an in-process NaimaNode; each pair is
followed until the node has published its outputs or counted its drop. Runs with the bicubic
baseline (no torch) and, where torch is importable, with the network on a tiny checkpoint.
"""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # 1..100: unique per test process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"  # older distros

import importlib.util  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402

from naima_ros.bags.cli import main as naima_bag  # noqa: E402
from naima_ros.bags.io import (CAMERA_INFO, TYPESTORE, BagReader, BagWriter,  # noqa: E402
                               Topics, depth_msg, header, image_msg, rgb_msg)
from naima_ros.ros.node import NaimaNode  # noqa: E402
from ros_waits import wait_for  # noqa: E402

pytestmark = pytest.mark.ros

TIMEOUT = 60.0
S, W, H = 8, 64, 48
K = (40.0, 41.0, 31.5, 23.5)  # fx fy cx cy
T = Topics()
HAVE_TORCH = importlib.util.find_spec("torch") is not None
METHODS = [pytest.param("naima", marks=pytest.mark.skipif(not HAVE_TORCH,
                                                          reason="method naima needs torch")),
           "bicubic"]
PARAMS = {"max_input_pixels": W * H, "min_depth": 0.1, "max_depth": 10.0, "warmup_iterations": 0}



# ---------------------------------------------------------------------- the recorded pairs
def camera_info(hdr):
    fx, fy, cx, cy = K
    t = TYPESTORE.types
    return t[CAMERA_INFO](
        header=hdr, height=H, width=W, distortion_model="plumb_bob", d=np.zeros(5),
        k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1.0]), r=np.eye(3).reshape(-1),
        p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1.0, 0]), binning_x=0, binning_y=0,
        roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))


def recorded_pairs():
    """[(name, expected drop reason or None, rgb msg, depth msg, send CameraInfo first)]."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:H // S, 0:W // S]
    lr = (1.0 + 0.1 * xx + 0.05 * yy).astype(np.float32)
    holed = lr.copy()
    holed[2, 3] = np.nan
    base = 100 * 10**9
    pairs = []

    def add(name, reason, stamp, rgb, depth, *, rgb_encoding=None, info=True, depth_fn=None):
        hdr = header(stamp, "camera_color_optical_frame")
        rgb_m = rgb_msg(hdr, rgb)
        if rgb_encoding:
            rgb_m.encoding = rgb_encoding
        depth_hdr = header(stamp, "tof_optical_frame")  # registered to RGB, its own frame name
        d = depth_fn(depth_hdr) if depth_fn else depth_msg(depth_hdr, depth, "32FC1")
        pairs.append((name, reason, rgb_m, d, info))

    def rgb(h=H, w=W):
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)

    t = [base + i * 100_000_000 for i in range(20)]
    add("no camera_info yet", "missing_camera_info", t[0], rgb(), lr, info=False)
    add("good", None, t[1], rgb(), lr)
    add("wrong rgb encoding", "unsupported_encoding", t[2], rgb(), lr, rgb_encoding="yuv422")
    add("rgb not 8 x depth", "size_mismatch", t[3], rgb(40, 56), lr)
    add("zero stamp", "zero_stamp", 0, rgb(), lr)
    add("oversized", "oversized", t[4], rgb(2 * H, 2 * W), np.tile(lr, (2, 2)))
    add("no valid depth", "all_invalid_depth", t[5], rgb(), np.full_like(lr, 50.0))
    add("good with a hole", None, t[6], rgb(), holed)
    add("backwards stamp", "stamp_backwards", t[6] - 300_000_000, rgb(), lr)
    add("truncated depth", "malformed_image", t[7], rgb(), None,
        depth_fn=lambda hdr: image_msg(hdr, bytes(10), "16UC1", H // S, W // S, 2 * W // S,
                                       False))
    add("good 16UC1", None, t[8], rgb(), None,
        depth_fn=lambda hdr: depth_msg(hdr, lr, "16UC1"))
    return pairs


def write_bag(path, pairs):
    """Inputs in send order: CameraInfo (when the node has one) before each pair's images."""
    log = 1
    with BagWriter(path) as w:
        w.declare(T.rgb_info, CAMERA_INFO)
        for _, _, rgb_m, d, info in pairs:
            if info:
                w.write(T.rgb_info, camera_info(header(max(log, 1), "camera_color_optical_frame")),
                        log)
            w.write(T.rgb, rgb_m, log + 1)
            w.write(T.depth, d, log + 2)
            log += 1_000_000_000


# ---------------------------------------------------------------------- the node's side
def to_rclpy(msg, msg_type):
    return deserialize_message(bytes(TYPESTORE.serialize_cdr(msg, msg.__msgtype__)), msg_type)


def serve_through_node(method, checkpoint, pairs, rgb_transport="raw", depth_transport="raw"):
    """Per pair: ("served", (image, info, cloud)) or ("dropped", reason), in order."""
    context = Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    rgb_topic, depth_topic = (base if transport == "raw" else f"{base}/{transport}"
                              for base, transport in (("rgb/image_rect_color", rgb_transport),
                                                      ("depth/image_rect", depth_transport)))
    rgb_type, depth_type = (Image if transport == "raw" else CompressedImage
                            for transport in (rgb_transport, depth_transport))
    params = dict(PARAMS, method=method, checkpoint=checkpoint, scale=S, device="cpu",
                  **{"diagnostic_updater.period": 0.2}, rgb_transport=rgb_transport,
                  depth_transport=depth_transport)
    params.update({f"qos_overrides./parity/{topic}.subscription.{policy}": value
                   for topic in (rgb_topic, depth_topic, "rgb/camera_info")
                   for policy, value in (("reliability", "reliable"), ("depth", 20))})
    node = NaimaNode(namespace="/parity", context=context,
                     parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    harness = rclpy.create_node("parity_harness", namespace="/parity", context=context)
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {name: harness.create_publisher(msg_type, topic, qos) for name, msg_type, topic in (
        ("rgb", rgb_type, rgb_topic), ("depth", depth_type, depth_topic),
        ("info", CameraInfo, "rgb/camera_info"))}
    outputs, lock = {}, threading.Lock()

    def store(kind):
        def callback(msg):
            with lock:
                outputs.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), {})[kind] = msg
        return callback

    for kind, msg_type, topic in (("image", Image, "depth_registered/image_rect"),
                                  ("info", CameraInfo, "depth_registered/camera_info"),
                                  ("cloud", PointCloud2, "depth_registered/points")):
        harness.create_subscription(msg_type, topic, store(kind), qos)
    executor.add_node(node)
    executor.add_node(harness)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    results = []
    try:
        wait_for(lambda: all(p.get_subscription_count() >= 1 for p in pubs.values()),
                 "the node's subscriptions")
        for _, _, rgb_m, d, info in pairs:
            if info:
                pubs["info"].publish(to_rclpy(camera_info(header(1, "cam")), CameraInfo))
                wait_for(lambda: node._info is not None, "camera_info at the node")
            dropped_before = dict(node._stats.snapshot()["dropped"])
            key = (d.header.stamp.sec, d.header.stamp.nanosec)
            pubs["rgb"].publish(to_rclpy(rgb_m, rgb_type))
            pubs["depth"].publish(to_rclpy(d, depth_type))

            def settled():
                with lock:
                    if len(outputs.get(key, {})) == 3:
                        return True
                return node._stats.snapshot()["dropped"] != dropped_before

            wait_for(settled, f"pair stamped {key} served or dropped")
            dropped = node._stats.snapshot()["dropped"]
            grew = [r for r, n in dropped.items() if n > dropped_before.get(r, 0)]
            with lock:
                results.append(("dropped", grew[0]) if grew else
                               ("served", tuple(outputs[key][k] for k in ("image", "info",
                                                                          "cloud"))))
    finally:
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        harness.destroy_node()
        rclpy.shutdown(context=context)
    return results


# ---------------------------------------------------------------------- the comparison
@pytest.mark.parametrize("method", METHODS)
def test_node_and_bag_run_serve_recorded_pairs_identically(method, request, tmp_path, capsys):
    checkpoint = "unused_x{scale}.safetensors"
    if method == "naima":
        checkpoint = str(request.getfixturevalue("tiny_checkpoint")(scale=S))
    pairs = recorded_pairs()
    bag_in, bag_out = tmp_path / "in", tmp_path / "out"
    write_bag(bag_in, pairs)
    assert naima_bag(["--no-progress", "run", str(bag_in), str(bag_out), "--method", method,
                      "--checkpoint", checkpoint, "--scale", str(S), "--device", "cpu",
                      "--max-input-pixels", str(PARAMS["max_input_pixels"])]) == 0
    summary = capsys.readouterr().out
    offline = {}
    with BagReader(bag_out) as reader:
        for topic, _, msg in reader.messages([T.out_image, T.out_info, T.out_points]):
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            offline.setdefault(key, {})[topic] = msg

    online = serve_through_node(method, checkpoint, pairs)

    expected_drops = {}
    for (name, reason, rgb_m, d, _), (kind, value) in zip(pairs, online):
        key = (d.header.stamp.sec, d.header.stamp.nanosec)
        if reason is not None:  # the node's reason is the one the case was built for ...
            assert (kind, value) == ("dropped", reason), name
            assert key not in offline, name  # ... and the bag run served nothing for it
            expected_drops[reason] = expected_drops.get(reason, 0) + 1
            continue
        assert kind == "served", f"{name}: the node dropped it ({value})"
        image, info, cloud = value
        bag_image, bag_info, bag_cloud = (offline[key][t] for t in (T.out_image, T.out_info,
                                                                    T.out_points))
        for ros, bag in ((image, bag_image), (info, bag_info), (cloud, bag_cloud)):
            # stamped like the depth, in the RGB camera's frame (its grid, its K)
            assert ros.header.frame_id == bag.header.frame_id == rgb_m.header.frame_id, name
            assert ros.header.stamp == to_rclpy(d, Image).header.stamp, name
        assert (image.encoding, image.height, image.width, image.step, image.is_bigendian) == \
            (bag_image.encoding, bag_image.height, bag_image.width, bag_image.step,
             bool(bag_image.is_bigendian)), name
        assert bytes(image.data) == bytes(bag_image.data), name
        assert (info.width, info.height, info.distortion_model) == \
            (bag_info.width, bag_info.height, bag_info.distortion_model), name
        for field in ("d", "k", "r", "p"):
            np.testing.assert_array_equal(np.asarray(getattr(info, field)),
                                          np.asarray(getattr(bag_info, field)), err_msg=name)
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == \
            [(f.name, f.offset, f.datatype, f.count) for f in bag_cloud.fields], name
        assert (cloud.height, cloud.width, cloud.point_step) == \
            (bag_cloud.height, bag_cloud.width, bag_cloud.point_step), name
        assert bytes(cloud.data) == bytes(bag_cloud.data), name
    served = sum(reason is None for _, reason, *_ in pairs)
    assert len(offline) == served
    drops = ", ".join(f"{k} {v}" for k, v in sorted(expected_drops.items()))
    assert f"{served} frames served of {len(pairs)} pairs; dropped: {drops};" in summary


def test_compressed_inputs_node_and_bag_run_agree(tmp_path, capsys):
    """CompressedImage on <rgb>/compressed and <depth>/compressedDepth (png/jpeg, 16UC1/32FC1):
    the node over DDS and `naima-bag run --rgb-transport compressed --depth-transport
    compressedDepth` serve them byte-identically, and a corrupt payload is the same drop."""
    from naima_ros.image_transport import encode_compressed_color, encode_compressed_depth

    types = TYPESTORE.types
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H // S, 0:W // S]
    lr = (1.0 + 0.1 * xx + 0.05 * yy).astype(np.float32)

    def compressed(hdr, payload):
        return types["sensor_msgs/msg/CompressedImage"](
            header=hdr, format=payload.format, data=np.frombuffer(payload.data, np.uint8))

    pairs = []
    for i, (codec, encoding) in enumerate((("png", "16UC1"), ("jpeg", "32FC1"), ("png", "bad"))):
        stamp = 300 * 10**9 + i * 100_000_000
        rgb = compressed(header(stamp, "camera_color_optical_frame"), encode_compressed_color(
            rng.integers(0, 256, (H, W, 3), dtype=np.uint8), codec))
        depth_payload = encode_compressed_depth(lr, "16UC1" if encoding == "bad" else encoding)
        if encoding == "bad":
            depth_payload = depth_payload._replace(data=depth_payload.data[:20])
        pairs.append((f"{codec}/{encoding}", "malformed_image" if encoding == "bad" else None,
                      rgb, compressed(header(stamp, "tof_optical_frame"), depth_payload), True))
    rgb_topic, depth_topic = f"{T.rgb}/compressed", f"{T.depth}/compressedDepth"
    bag_in, bag_out = tmp_path / "in", tmp_path / "out"
    with BagWriter(bag_in) as w:
        w.declare(T.rgb_info, CAMERA_INFO)
        for k, (_, _, rgb_m, d, _) in enumerate(pairs):
            log = 1 + k * 1_000_000_000
            w.write(T.rgb_info, camera_info(header(log, "camera_color_optical_frame")), log)
            w.write(rgb_topic, rgb_m, log + 1)
            w.write(depth_topic, d, log + 2)
    assert naima_bag(["--no-progress", "run", str(bag_in), str(bag_out), "--method", "bicubic",
                      "--scale", str(S), "--max-input-pixels", str(W * H),
                      "--rgb-transport", "compressed", "--depth-transport",
                      "compressedDepth"]) == 0
    assert "2 frames served of 3 pairs; dropped: malformed_image 1;" in capsys.readouterr().out
    offline = {}
    with BagReader(bag_out) as reader:
        for topic, _, msg in reader.messages([T.out_image, T.out_points]):
            offline[(topic, msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
    online = serve_through_node("bicubic", "unused_x{scale}.safetensors", pairs,
                                "compressed", "compressedDepth")
    for (name, reason, _, d, _), (kind, value) in zip(pairs, online):
        if reason:
            assert (kind, value) == ("dropped", reason), name
            continue
        assert kind == "served", (name, value)
        image, _, cloud = value
        key = (d.header.stamp.sec, d.header.stamp.nanosec)
        assert image.header.frame_id == "camera_color_optical_frame", name
        assert bytes(image.data) == bytes(offline[(T.out_image, *key)].data), name
        assert bytes(cloud.data) == bytes(offline[(T.out_points, *key)].data), name
