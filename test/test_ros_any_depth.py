"""Any depth a sensor sends, served by the node over real DDS: a phone ToF at a non-integer ratio,
driver-aligned dense depth, the scattered samples a registration leaves, and the confidence topic
with `min_confidence` changed at run time. The bicubic baseline serves (no torch: Jazzy runs it too);
the network's predictor takes the same frames path (test_predictors, test_frames_any_size).
"""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # 1..100: unique per test process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"

import threading  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from naima_ros.contract import DEFAULTS  # noqa: E402
from naima_ros.depth_codec import decode_depth  # noqa: E402
from ros_waits import wait_for  # noqa: E402
from test_ros_node import (K, Running, camera_info, depth_msg, image_msg, next_stamp_ns,  # noqa: E402
                           rgb_pixels)

pytestmark = pytest.mark.ros

RGB_W, RGB_H = 128, 96  # a 4:3 camera; scale 4 -> a 32 x 24 grid


@pytest.fixture(scope="module")
def node(context):
    """One bicubic node at scale 4 for the module, with the confidence topic recorded."""
    r = Running(context, "unused_x4.safetensors", "/naima_any_depth", method="bicubic",
                overrides={"scale": 4, "max_input_pixels": RGB_W * RGB_H, "warmup_width": RGB_W,
                           "warmup_height": RGB_H, "publish_points": False,
                           "min_confidence": DEFAULTS["min_confidence"]},
                info=False)
    r.confidences, lock = {}, threading.Lock()

    def store(msg):
        with lock:
            r.confidences[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg

    r.h.node.create_subscription(Image, "depth_registered/confidence", store,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    scaled_k = [K[0] * 2, 0, (K[2] + 0.5) * 2 - 0.5, 0, K[4] * 2, (K[5] + 0.5) * 2 - 0.5, 0, 0, 1]
    r.h.send_info(camera_info(RGB_W, RGB_H, scaled_k))
    wait_for(lambda: r.node._info is not None, what="camera_info at the node")
    yield r
    r.close()


def plane(h, w, hole=None):
    """A tilted plane at 1.5-2.2 m sampled at the centres of an h x w image covering the RGB's view."""
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (1.5 + 0.5 * (xx + 0.5) / w + 0.2 * (yy + 0.5) / h).astype(np.float32)
    if hole is not None:
        depth[hole] = np.nan
    return depth


def serve(node, depth, encoding="32FC1"):
    t = next_stamp_ns()
    rgb = image_msg(t, rgb_pixels(RGB_H, RGB_W), "rgb8")
    node.h.send(rgb, depth_msg(t, depth, encoding))
    image, info, _ = node.h.output(t, points=False)
    key = divmod(t, 1_000_000_000)
    wait_for(lambda: key in node.confidences, what="the confidence image")
    out, _ = decode_depth(image.data, image.encoding, image.height, image.width, image.step,
                          image.is_bigendian)
    conf_msg = node.confidences[key]
    confidence = np.frombuffer(bytes(conf_msg.data), "<f4").reshape(conf_msg.height, conf_msg.width)
    return out, confidence, image, info, conf_msg


def assert_plane(out, tolerance=0.02):
    truth = plane(RGB_H, RGB_W)
    valid = np.isfinite(out)
    assert valid.mean() > 0.9
    assert np.abs(out[valid] - truth[valid]).max() < tolerance


def test_phone_tof_at_a_non_integer_ratio_is_served_at_the_rgb_size(node):
    """512x384-like: a 48 x 36 ToF under a 128 x 96 RGB (ratio 2.67), no size_mismatch."""
    out, confidence, image, info, conf_msg = serve(node, plane(36, 48))
    assert (image.width, image.height) == (info.width, info.height) == (RGB_W, RGB_H)
    assert (conf_msg.width, conf_msg.height, conf_msg.encoding) == (RGB_W, RGB_H, "32FC1")
    assert conf_msg.header.stamp == image.header.stamp and conf_msg.header.frame_id == image.header.frame_id
    assert_plane(out)
    assert np.isfinite(out).all() and (confidence > 0.5).mean() > 0.75


def test_driver_aligned_dense_and_registration_sparse_depth_are_binned(node):
    out, _, image, _, _ = serve(node, plane(RGB_H, RGB_W), encoding="16UC1")
    assert (image.width, image.height) == (RGB_W, RGB_H)
    assert_plane(out, tolerance=0.01)
    sparse = np.full((RGB_H, RGB_W), np.nan, np.float32)
    sparse[1::3, ::5] = plane(RGB_H, RGB_W)[1::3, ::5]  # scattered samples, gaps between
    out, confidence, _, _, _ = serve(node, sparse)
    assert_plane(out)


def test_holes_are_filled_by_confidence_and_min_confidence_changes_at_run_time(node):
    lr = plane(24, 32, hole=(slice(8, 14), slice(10, 18)))  # a 6 x 8 cell hole on a 32 x 24 grid
    hole = np.kron(~np.isfinite(lr), np.ones((4, 4), bool))
    try:
        for value, published in ((0.0, 1.0), (1.0, 0.0)):
            node.node.set_parameters([Parameter("min_confidence", value=value)])
            out, confidence, _, _, _ = serve(node, lr)
            assert np.isfinite(out[hole]).mean() == published, value  # 1: the square holes of old
            assert np.isfinite(out[~hole]).all()
            assert (confidence[hole] <= 0.99).all() and confidence[~hole].mean() > confidence[hole].mean()
            assert ((confidence >= 0) & (confidence <= 1)).all()
            assert (confidence[~np.isfinite(out)] == 0).all()  # no depth, no confidence
    finally:
        node.node.set_parameters([Parameter("min_confidence", value=DEFAULTS["min_confidence"])])
    result = node.node.set_parameters([Parameter("min_confidence", value=1.5)])[0]
    assert not result.successful


def test_aspect_ratios_that_disagree_are_a_counted_drop(node):
    t = next_stamp_ns()
    node.h.expect_drop("size_mismatch", lambda: node.h.send(
        image_msg(t, rgb_pixels(RGB_H, RGB_W), "rgb8"), depth_msg(t, plane(24, 24))))
    out, _, _, _, _ = serve(node, plane(24, 32))  # and it keeps serving
    assert_plane(out)
