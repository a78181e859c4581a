"""The node's geometry as a depth_image_proc user sees it, over real DDS across processes.

`naima_node` runs as its own process; this test is a client that sends a CameraInfo whose P is not
K (0.75 x the focal length, the centre moved by 12 px, a stereo Tx/Ty) and checks that the cloud
the node publishes is the one depth_image_proc's point_cloud_xyz makes from the node's own
published depth and CameraInfo. Own ROS_DOMAIN_ID, localhost only; no timing is asserted.
"""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # 1..100: unique per test process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"  # older distros

import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from reference_point_cloud import cloud_xyz, decode_depth_image, point_cloud_xyz  # noqa: E402
from ros_waits import wait_for  # noqa: E402

pytestmark = pytest.mark.ros

NS, SCALE, LR_W, LR_H = "/geometry", 8, 8, 6
W, H = LR_W * SCALE, LR_H * SCALE
K_RAW = [80.0, 0.0, 31.5, 0.0, 80.0, 23.5, 0.0, 0.0, 1.0]
P_RECT = [60.0, 0.0, 43.5, -3.0, 0.0, 60.0, 11.5, 1.5, 0.0, 0.0, 1.0, 0.0]


def stamped(msg, stamp_ns, frame_id):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


def image(stamp_ns, pixels, encoding, frame_id):
    msg = stamped(Image(), stamp_ns, frame_id)
    msg.height, msg.width = pixels.shape[:2]
    msg.encoding, msg.is_bigendian = encoding, False
    msg.step = pixels.nbytes // pixels.shape[0]
    msg.data = pixels.tobytes()
    return msg


def camera_info(stamp_ns):
    info = stamped(CameraInfo(), stamp_ns, "rgb_optical")
    info.width, info.height, info.distortion_model = W, H, "plumb_bob"
    info.d, info.k, info.p = [0.0] * 5, K_RAW, P_RECT
    info.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    return info


@pytest.fixture
def node_process(tmp_path):
    reliable = [f"qos_overrides.{NS}/{topic}.subscription.reliability:=reliable"
                for topic in ("rgb/image_rect_color", "depth/image_rect", "rgb/camera_info")]
    params = ["method:=bicubic", f"scale:={SCALE}", f"warmup_width:={W}",
              f"warmup_height:={H}", "points_rgb:=false", *reliable]
    cmd = [sys.executable, "-m", "naima_ros.ros.node", "--ros-args", "-r", f"__ns:={NS}"]
    for p in params:
        cmd += ["-p", p]
    log = open(tmp_path / "node.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    yield proc, tmp_path / "node.log"
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_cloud_equals_point_cloud_xyz_of_the_published_outputs(node_process):
    proc, log = node_process
    ctx = Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("geometry_client", namespace=NS, context=ctx)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    got, lock = {}, threading.Lock()

    def keep(kind):
        def callback(msg):
            with lock:
                got.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), {})[kind] = msg
        return callback

    pubs = {t: node.create_publisher(m, t, qos) for t, m in (
        ("rgb/image_rect_color", Image), ("depth/image_rect", Image),
        ("rgb/camera_info", CameraInfo))}
    for kind, msg_type, topic in (("image", Image, "depth_registered/image_rect"),
                                  ("info", CameraInfo, "depth_registered/camera_info"),
                                  ("points", PointCloud2, "depth_registered/points")):
        node.create_subscription(msg_type, topic, keep(kind), qos)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        wait_for(lambda: proc.poll() is None and all(p.get_subscription_count() for p in
                                                     pubs.values()),
                 what=f"the node's subscriptions (log: {log.read_text(errors='replace')[-500:]})")
        yy, xx = np.mgrid[0:LR_H, 0:LR_W]
        depth_m = (1.5 + 0.2 * xx + 0.1 * yy).astype("<f4")
        rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)

        def served():  # one pair a second until one is served (the info must arrive first)
            stamp = time.time_ns()
            pubs["rgb/camera_info"].publish(camera_info(stamp))
            pubs["rgb/image_rect_color"].publish(image(stamp, rgb, "rgb8", "rgb_optical"))
            pubs["depth/image_rect"].publish(image(stamp, depth_m, "32FC1", "tof_optical"))
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                with lock:
                    done = [v for v in got.values() if len(v) == 3]
                if done:
                    return done[0]
                time.sleep(0.02)
            return None

        out = wait_for(served, what="a served frame")
        img, info, cloud = out["image"], out["info"], out["points"]
        assert (img.width, img.height, info.width, info.height) == (W, H, W, H)
        np.testing.assert_array_equal(info.p, P_RECT)
        np.testing.assert_array_equal(info.k, K_RAW)
        assert img.header.frame_id == cloud.header.frame_id == "rgb_optical"
        published = decode_depth_image(img.height, img.width, img.step, img.encoding,
                                       img.is_bigendian, img.data)
        want = point_cloud_xyz(published, info.p)
        have = cloud_xyz(cloud.height, cloud.width, cloud.point_step,
                         [(f.name, f.offset) for f in cloud.fields], cloud.data)
        assert np.isfinite(want).all()
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    finally:
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        spinner.join(timeout=5)
