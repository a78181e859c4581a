"""The node's camera-rate path over real DDS: raw (serialized) input subscriptions serve exactly
what `naima_ros.serving` makes of the deserialized messages, and the process tuning is applied and
reported. Method bicubic (no torch needed); waits on conditions, never asserts timing."""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # as test_ros_node: unique per process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"

import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from naima_ros import runtime  # noqa: E402
from naima_ros.predictors import load_predictor  # noqa: E402
from naima_ros.ros.node import NaimaNode  # noqa: E402
from naima_ros.ros.sync import Subscriber  # noqa: E402
from naima_ros.serving import FrameServer, ServeConfig  # noqa: E402
from ros_waits import wait_for  # noqa: E402

pytestmark = pytest.mark.ros
TIMEOUT = 60.0
H, W, SCALE = 48, 64, 8



def inputs(stamp_ns: int):
    rng = np.random.default_rng(stamp_ns % 1000)
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    rgb = Image(height=H, width=W, encoding="bgr8", step=3 * W,
                data=rng.integers(0, 256, H * W * 3, dtype=np.uint8).tobytes())
    depth_mm = rng.integers(800, 3000, (H // SCALE, W // SCALE)).astype("<u2")
    depth_mm[1, 2] = 0  # an invalid cell
    depth = Image(height=H // SCALE, width=W // SCALE, encoding="16UC1", step=2 * W // SCALE,
                  data=depth_mm.tobytes())
    info = CameraInfo(width=W, height=H, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[50.0, 0, 31.5, 0, 50.0, 23.5, 0, 0, 1], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                      p=[50.0, 0, 31.5, 0, 0, 50.0, 23.5, 0, 0, 0, 1, 0])
    for msg, frame in ((rgb, "camera_color_optical_frame"), (depth, "tof_optical_frame"),
                       (info, "camera_color_optical_frame")):
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
        msg.header.frame_id = frame
    return rgb, depth, info


@pytest.fixture(scope="module")
def node_and_harness():
    ctx = Context()
    rclpy.init(context=ctx)
    node = NaimaNode(namespace="/naima_raw", context=ctx, parameter_overrides=[
        Parameter("method", value="bicubic"), Parameter("warmup_width", value=W),
        Parameter("warmup_height", value=H), Parameter("diagnostic_updater.period", value=0.2),
        Parameter("torch_threads", value=1)])
    harness = rclpy.create_node("harness", namespace="/naima_raw", context=ctx)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    # the node's inputs are best effort (sensor data): tests resend until an output arrives
    pubs = {topic: harness.create_publisher(kind, topic, qos_profile_sensor_data)
            for topic, kind in (("rgb/image_rect_color", Image), ("depth/image_rect", Image),
                                ("rgb/camera_info", CameraInfo))}
    got = {"image": [], "points": []}
    harness.create_subscription(Image, "depth_registered/image_rect", got["image"].append, qos)
    harness.create_subscription(PointCloud2, "depth_registered/points", got["points"].append, qos)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    executor.add_node(harness)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()), "subscriptions")
    yield node, pubs, got
    executor.shutdown(timeout_sec=5)
    node.destroy_node()
    harness.destroy_node()
    rclpy.shutdown(context=ctx)


def test_raw_subscriptions_serve_what_serving_makes_of_the_messages(node_and_harness):
    node, pubs, got = node_and_harness
    assert isinstance(node._rgb_sub, Subscriber) and node._rgb_sub.raw
    assert isinstance(node._depth_sub, Subscriber) and node._depth_sub.raw
    sent = {}
    deadline = time.monotonic() + TIMEOUT
    while not (got["image"] and got["points"]) and time.monotonic() < deadline:
        stamp = 1_700_000_000_000_000_000 + 100_000_000 * len(sent)
        sent[divmod(stamp, 1_000_000_000)] = rgb, depth, info = inputs(stamp)
        for topic, msg in (("rgb/camera_info", info), ("rgb/image_rect_color", rgb),
                           ("depth/image_rect", depth)):
            pubs[topic].publish(msg)
        time.sleep(0.5)
    wait_for(lambda: got["image"] and got["points"], "the outputs")
    image, cloud = got["image"][0], got["points"][0]
    rgb, depth, info = sent[(image.header.stamp.sec, image.header.stamp.nanosec)]

    # the reference: the deserialized-message path, straight through naima_ros.serving
    expected = FrameServer().serve(load_predictor("bicubic", scale=SCALE), rgb, depth, info,
                                   ServeConfig.from_values(node._values))
    assert (cloud.header.stamp.sec, cloud.header.stamp.nanosec) == (image.header.stamp.sec,
                                                                    image.header.stamp.nanosec)
    assert image.header.frame_id == expected.frame_id == "camera_color_optical_frame"
    assert (image.encoding, image.height, image.width, image.step) == (
        expected.image.encoding, expected.image.height, expected.image.width,
        expected.image.step)
    assert bytes(image.data) == bytes(expected.image.data)
    assert bytes(cloud.data) == expected.points.tobytes()


def test_tuning_is_applied_and_reported(node_and_harness):
    node, _, _ = node_and_harness
    # torch_threads reaches torch (or OMP_NUM_THREADS before torch is imported: a baseline)
    assert node.tuning["torch_threads"] == runtime.torch_thread_count(1) == 1
    # the allocator is process-wide: only main() tunes it, a node built in a test process doesn't
    assert node.tuning["malloc"] == "off"


def test_node_process_tunes_the_allocator_and_logs_it():
    """`python -m naima_ros.ros.node` (what naima_node and the launch file run) tunes glibc before
    the node starts and says so in its log."""
    import platform
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    proc = subprocess.Popen([sys.executable, "-m", "naima_ros.ros.node", "--ros-args",
                             "-r", "__ns:=/naima_tuning", "-p", "method:=bicubic",
                             "-p", "warmup_width:=64", "-p", "warmup_height:=48",
                             "-p", "torch_threads:=1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "ready:" in line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(TIMEOUT)
    tuning = [line for line in lines if "process tuning:" in line]
    assert len(tuning) == 1, "".join(lines)
    if platform.libc_ver()[0] == "glibc":
        for name, (_, value, _) in runtime.MALLOC_SETTINGS.items():
            assert f"'{name}': '{value}'" in tuning[0]
    assert "'torch_threads': 1" in tuning[0]
