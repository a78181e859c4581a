"""The node (over real DDS) and `naima-bag run` (offline) serve the same recorded pairs the same way:
byte-identical outputs for the good pairs and the same drop reason for each bad one.

One list of `rosbags` messages is written to a bag for `naima-bag run` and, converted to rclpy
messages through their CDR bytes, published pair by pair to an in-process NaimaNode; each pair is
followed until the node has published its outputs or counted its drop. Runs with the bicubic
baseline (no torch) and, where torch is importable, with the network on a tiny checkpoint. Covers
raw and compressed inputs, the registration of an unregistered ToF whose CameraInfos have P != K
and Tx != 0 (`register_depth`, extrinsics from the parameters), and a ROS 1 .bag as input.
"""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # 1..100: unique per test process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"  # older distros

import importlib.util  # noqa: E402
import threading  # noqa: E402
from typing import NamedTuple  # noqa: E402

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
class Pair(NamedTuple):
    name: str
    reason: str | None  # the drop reason the case is built for, None: served
    rgb: object  # rosbags messages
    depth: object
    info: object | None  # the RGB CameraInfo sent before the pair (None: none)
    depth_info: object | None = None  # the depth CameraInfo sent before the pair (register_depth)


def camera_info(hdr, k=K, w=W, h=H, p=None):
    """A `rosbags` CameraInfo; `k` is (fx, fy, cx, cy), `p` its own 12 numbers (default [K | 0])."""
    fx, fy, cx, cy = k
    t = TYPESTORE.types
    return t[CAMERA_INFO](
        header=hdr, height=h, width=w, distortion_model="plumb_bob", d=np.zeros(5),
        k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1.0]), r=np.eye(3).reshape(-1),
        p=np.array(p if p is not None else [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1.0, 0]),
        binning_x=0, binning_y=0,
        roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))


def recorded_pairs():
    """The good and bad pairs of a registered depth (registered to RGB, its own frame name)."""
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
        info_m = camera_info(header(len(pairs) + 1, "camera_color_optical_frame")) if info else None
        pairs.append(Pair(name, reason, rgb_m, d, info_m))

    def rgb(h=H, w=W):
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)

    t = [base + i * 100_000_000 for i in range(20)]
    add("no camera_info yet", "missing_camera_info", t[0], rgb(), lr, info=False)
    add("good", None, t[1], rgb(), lr)
    add("wrong rgb encoding", "unsupported_encoding", t[2], rgb(), lr, rgb_encoding="yuv422")
    add("rgb of another aspect ratio", "size_mismatch", t[3], rgb(40, 56), lr)
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
    # any depth a sensor sends: a non-integer ratio, depth aligned to the RGB, a registration's samples
    fy, fx = np.mgrid[0:H, 0:W]
    fine = (1.0 + 0.1 * (fx + 0.5) / S + 0.05 * (fy + 0.5) / S).astype(np.float32)
    ty, tx = np.mgrid[0:18, 0:24]
    tof = (1.0 + 0.1 * (tx + 0.5) * W / 24 / S + 0.05 * (ty + 0.5) * H / 18 / S).astype(np.float32)
    add("phone ToF at ratio 2.67", None, t[9], rgb(), tof)
    add("aligned dense", None, t[10], rgb(), fine)
    sparse = np.full_like(fine, np.nan)
    sparse[::3, ::4] = fine[::3, ::4]
    add("aligned sparse", None, t[11], rgb(), sparse)
    return pairs


# An unregistered ToF (24 x 18, wide) beside the RGB camera, both rectified with P != K: P's focal
# length 0.75 x K's and its centre 2 px off, Tx of a stereo pair (-fx x 5 cm, -fx x 2 cm)
TOF_W, TOF_H = 24, 18
RGB_P = [30.0, 0, 33.5, -1.5, 0, 30.75, 25.5, 0.0, 0, 0, 1.0, 0]
TOF_K = (14.0, 14.0, 11.5, 8.5)
TOF_P = [12.0, 0, 12.5, -0.24, 0, 12.0, 9.0, 0.0, 0, 0, 1.0, 0]
TOF_TO_RGB_T, TOF_TO_RGB_Q = (0.03, -0.01, 0.005), (0.01, -0.02, 0.005, 0.99973)
REGISTRATION = {"register_depth": True, "use_tf": False,
                "depth_to_rgb_translation": list(TOF_TO_RGB_T),
                "depth_to_rgb_rotation": list(TOF_TO_RGB_Q)}


def registration_pairs():
    """Pairs of the unregistered ToF: a tilted plane with a hole, the depth CameraInfo from the
    second pair on (the first is a missing_camera_info drop on both sides)."""
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:TOF_H, 0:TOF_W]
    plane = (1.5 + 0.03 * xx + 0.02 * yy).astype(np.float32)
    plane[5:7, 9:12] = np.nan
    pairs = []
    for i in range(4):
        stamp = 200 * 10**9 + i * 100_000_000
        rgb_m = rgb_msg(header(stamp, "camera_color_optical_frame"),
                        rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        d = depth_msg(header(stamp, "tof_optical_frame"), plane * (1 + 0.05 * i), "32FC1")
        info = camera_info(header(stamp, "camera_color_optical_frame"), p=RGB_P)
        depth_info = None if i == 0 else camera_info(header(stamp, "tof_optical_frame"), TOF_K,
                                                     TOF_W, TOF_H, TOF_P)
        pairs.append(Pair(f"registered {i}", "missing_camera_info" if i == 0 else None, rgb_m, d,
                          info, depth_info))
    return pairs


def write_bag(path, pairs, topics=T):
    """Inputs in send order: the CameraInfos a pair has before its images."""
    log = 1
    with BagWriter(path) as w:
        w.declare(topics.rgb_info, CAMERA_INFO)
        for pair in pairs:
            for topic, msg in ((topics.rgb_info, pair.info), (topics.depth_info, pair.depth_info)):
                if msg is not None:
                    w.write(topic, msg, log)
            w.write(topics.rgb, pair.rgb, log + 1)
            w.write(topics.depth, pair.depth, log + 2)
            log += 1_000_000_000


# ---------------------------------------------------------------------- the node's side
def to_rclpy(msg, msg_type):
    return deserialize_message(bytes(TYPESTORE.serialize_cdr(msg, msg.__msgtype__)), msg_type)


def serve_through_node(method, checkpoint, pairs, rgb_transport="raw", depth_transport="raw",
                       params=None):
    """Per pair: ("served", (image, info, cloud)) or ("dropped", reason), in order; `params`:
    more node parameters."""
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
                  depth_transport=depth_transport, **(params or {}))
    params.update({f"qos_overrides./parity/{topic}.subscription.{policy}": value
                   for topic in (rgb_topic, depth_topic, "rgb/camera_info", "depth/camera_info")
                   for policy, value in (("reliability", "reliable"), ("depth", 20))})
    node = NaimaNode(namespace="/parity", context=context,
                     parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    harness = rclpy.create_node("parity_harness", namespace="/parity", context=context)
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {name: harness.create_publisher(msg_type, topic, qos) for name, msg_type, topic in (
        ("rgb", rgb_type, rgb_topic), ("depth", depth_type, depth_topic),
        ("info", CameraInfo, "rgb/camera_info"), ("depth_info", CameraInfo, "depth/camera_info"))}
    outputs, lock = {}, threading.Lock()

    def store(kind):
        def callback(msg):
            with lock:
                outputs.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), {})[kind] = msg
        return callback

    for kind, msg_type, topic in (("image", Image, "depth_registered/image_rect"),
                                  ("confidence", Image, "depth_registered/confidence"),
                                  ("info", CameraInfo, "depth_registered/camera_info"),
                                  ("cloud", PointCloud2, "depth_registered/points")):
        harness.create_subscription(msg_type, topic, store(kind), qos)
    executor.add_node(node)
    executor.add_node(harness)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    results = []
    try:
        wait_for(lambda: all(p.get_subscription_count() >= 1 for name, p in pubs.items()
                             if name != "depth_info" or params.get("register_depth")),
                 "the node's subscriptions")
        for _, _, rgb_m, d, info, depth_info in pairs:
            for name, msg in (("info", info), ("depth_info", depth_info)):
                if msg is not None:
                    pubs[name].publish(to_rclpy(msg, CameraInfo))
                    wait_for(lambda name=name, msg=msg: getattr(node, f"_{name}") is not None and
                             getattr(node, f"_{name}").header.stamp == to_rclpy(
                                 msg, CameraInfo).header.stamp, f"{name} at the node")
            dropped_before = dict(node._stats.snapshot()["dropped"])
            key = (d.header.stamp.sec, d.header.stamp.nanosec)
            pubs["rgb"].publish(to_rclpy(rgb_m, rgb_type))
            pubs["depth"].publish(to_rclpy(d, depth_type))

            def settled():
                with lock:
                    if len(outputs.get(key, {})) == 4:
                        return True
                return node._stats.snapshot()["dropped"] != dropped_before

            wait_for(settled, f"pair stamped {key} served or dropped")
            dropped = node._stats.snapshot()["dropped"]
            grew = [r for r, n in dropped.items() if n > dropped_before.get(r, 0)]
            with lock:
                results.append(("dropped", grew[0]) if grew else
                               ("served", tuple(outputs[key][k] for k in ("image", "info", "cloud",
                                                                          "confidence"))))
    finally:
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        harness.destroy_node()
        rclpy.shutdown(context=context)
    return results


# ---------------------------------------------------------------------- the comparison
def run_offline(method, request, tmp_path, pairs, *options) -> tuple[str, dict]:
    """`naima-bag run` of `pairs` written to a bag: (the checkpoint it used, its outputs)."""
    checkpoint = "unused_x{scale}.safetensors"
    if method == "naima":
        checkpoint = str(request.getfixturevalue("tiny_checkpoint")(scale=S))
    bag_in, bag_out = tmp_path / "in", tmp_path / "out"
    write_bag(bag_in, pairs)
    assert naima_bag(["--no-progress", "run", str(bag_in), str(bag_out), "--method", method,
                      "--checkpoint", checkpoint, "--scale", str(S), "--device", "cpu",
                      "--max-input-pixels", str(PARAMS["max_input_pixels"]), *options]) == 0
    return checkpoint, read_outputs(bag_out)


@pytest.mark.parametrize("method", METHODS)
def test_node_and_bag_run_serve_recorded_pairs_identically(method, request, tmp_path, capsys):
    pairs = recorded_pairs()
    checkpoint, offline = run_offline(method, request, tmp_path, pairs)
    summary = capsys.readouterr().out

    online = serve_through_node(method, checkpoint, pairs)
    expected_drops = assert_same_outputs(pairs, online, offline)
    served = sum(pair.reason is None for pair in pairs)
    drops = ", ".join(f"{k} {v}" for k, v in sorted(expected_drops.items()))
    assert f"{served} frames served of {len(pairs)} pairs; dropped: {drops};" in summary


def read_outputs(bag) -> dict:
    """{(sec, nanosec): {topic: msg}} of the outputs `naima-bag run` wrote."""
    offline = {}
    with BagReader(bag) as reader:
        for topic, _, msg in reader.messages([T.out_image, T.out_info, T.out_points, T.out_confidence]):
            offline.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), {})[topic] = msg
    return offline


def assert_same_outputs(pairs, online, offline) -> dict:
    """Each pair dropped for the reason it was built for on both sides, or served byte-identically
    (image, confidence, CameraInfo, cloud; stamp and frame_id); returns {reason: count} of the drops."""
    expected_drops = {}
    for pair, (kind, value) in zip(pairs, online, strict=True):
        name, rgb_m, d = pair.name, pair.rgb, pair.depth
        key = (d.header.stamp.sec, d.header.stamp.nanosec)
        if pair.reason is not None:  # the node's reason is the one the case was built for ...
            assert (kind, value) == ("dropped", pair.reason), name
            assert key not in offline, name  # ... and the bag run served nothing for it
            expected_drops[pair.reason] = expected_drops.get(pair.reason, 0) + 1
            continue
        assert kind == "served", f"{name}: the node dropped it ({value})"
        image, info, cloud, confidence = value
        bag_image, bag_info, bag_cloud, bag_confidence = (
            offline[key][t] for t in (T.out_image, T.out_info, T.out_points, T.out_confidence))
        assert bytes(confidence.data) == bytes(bag_confidence.data), name
        assert (confidence.width, confidence.height, confidence.encoding) == \
            (bag_confidence.width, bag_confidence.height, "32FC1") == (image.width, image.height, "32FC1"), name
        for ros, bag in ((image, bag_image), (info, bag_info), (cloud, bag_cloud), (confidence, bag_confidence)):
            # stamped like the depth, in the RGB camera's frame (its grid, its K)
            assert ros.header.frame_id == bag.header.frame_id == rgb_m.header.frame_id, name
            assert (ros.header.stamp.sec, ros.header.stamp.nanosec) == key, name
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
    assert len(offline) == sum(pair.reason is None for pair in pairs)
    return expected_drops


def registration_options(values=REGISTRATION) -> list[str]:
    """`naima-bag run` options of the node's registration parameters."""
    return ["--register-depth",
            "--depth-to-rgb-translation", *map(str, values["depth_to_rgb_translation"]),
            "--depth-to-rgb-rotation", *map(str, values["depth_to_rgb_rotation"])]


@pytest.mark.parametrize("method", METHODS)
def test_registration_with_p_not_k_and_tx_node_and_bag_run_agree(method, request, tmp_path,
                                                                  capsys):
    """register_depth with both cameras' P != K and Tx != 0 and a rotated, shifted ToF: the same
    registered, super-resolved bytes (and the same cloud through the output P) from the node and
    `naima-bag run --register-depth`; no depth CameraInfo yet is the same drop."""
    pairs = registration_pairs()
    checkpoint, offline = run_offline(method, request, tmp_path, pairs, *registration_options())
    assert "3 frames served of 4 pairs; dropped: missing_camera_info 1;" in \
        capsys.readouterr().out
    online = serve_through_node(method, checkpoint, pairs, params=REGISTRATION)
    assert_same_outputs(pairs, online, offline)
    info = online[1][1][1]  # the output is the RGB's grid: its P (!= K, with Tx) as received
    np.testing.assert_array_equal(info.p, RGB_P)
    assert info.k[0] != info.p[0]


def test_ros1_bag_node_and_bag_run_agree(tmp_path, capsys):
    """A ROS 1 .bag (Noetic types, an unregistered ToF, a latched depth CameraInfo, the RGB's
    P != K): `naima-bag run` reads it directly; the node, fed the same messages as ROS 2 types,
    serves every pair byte-identically."""
    from ros1_bag import TOF_TO_RGB, TOPICS, write_ros1_bag

    bag = tmp_path / "rgbd.bag"
    write_ros1_bag(bag)
    topics = Topics(rgb=TOPICS["rgb"], rgb_info=TOPICS["rgb_info"], depth=TOPICS["depth"],
                    depth_info=TOPICS["depth_info"])
    registration = dict(REGISTRATION, depth_to_rgb_translation=list(TOF_TO_RGB),
                        depth_to_rgb_rotation=[0.0, 0.0, 0.0, 1.0])
    out = tmp_path / "out"
    assert naima_bag(["--no-progress", "run", str(bag), str(out), "--method", "bicubic",
                      "--scale", str(S), *registration_options(registration),
                      *(f"--{role.replace('_', '-')}-topic={getattr(topics, role)}"
                        for role in ("rgb", "rgb_info", "depth", "depth_info"))]) == 0
    assert "3 frames served of 3 pairs" in capsys.readouterr().out
    # the pairs as the node gets them: the newest CameraInfos before each pair (in log order)
    pairs, latest = [], {}
    with BagReader(bag) as reader:
        assert reader.is_ros1
        for topic, _, msg in reader.messages():
            latest[topic] = msg
            if topic == topics.depth:
                rgb_m = latest[topics.rgb]
                assert rgb_m.header.stamp == msg.header.stamp
                pairs.append(Pair(f"ros1 {len(pairs)}", None, rgb_m, msg, latest[topics.rgb_info],
                                  latest[topics.depth_info]))
    assert len(pairs) == 3 and pairs[0].info.p[0] != pairs[0].info.k[0]  # P != K
    online = serve_through_node("bicubic", "unused_x{scale}.safetensors", pairs,
                                params=registration)
    assert_same_outputs(pairs, online, read_outputs(out))


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
        pairs.append(Pair(f"{codec}/{encoding}", "malformed_image" if encoding == "bad" else None,
                          rgb, compressed(header(stamp, "tof_optical_frame"), depth_payload),
                          camera_info(header(i + 1, "camera_color_optical_frame"))))
    bag_in, bag_out = tmp_path / "in", tmp_path / "out"
    write_bag(bag_in, pairs, Topics(rgb=f"{T.rgb}/compressed", depth=f"{T.depth}/compressedDepth"))
    assert naima_bag(["--no-progress", "run", str(bag_in), str(bag_out), "--method", "bicubic",
                      "--scale", str(S), "--max-input-pixels", str(W * H),
                      "--rgb-transport", "compressed", "--depth-transport",
                      "compressedDepth"]) == 0
    assert "2 frames served of 3 pairs; dropped: malformed_image 1;" in capsys.readouterr().out
    online = serve_through_node("bicubic", "unused_x{scale}.safetensors", pairs,
                                "compressed", "compressedDepth")
    assert_same_outputs(pairs, online, read_outputs(bag_out))
