"""ManagedNaimaNode through the standard lifecycle services over real DDS: configure loads and
warms up the model, activate starts the subscriptions and publishers, deactivate stops serving,
cleanup releases the model; a failed load is a FAILURE transition with an ERROR status.

Runs with the bicubic baseline (no torch) and, where torch is importable, with the network on a
tiny checkpoint. Unique ROS_DOMAIN_ID per test process, localhost discovery.
"""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # 1..100: unique per test process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"  # older distros

import importlib.util  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from naima_ros.predictors import load_predictor  # noqa: E402
from naima_ros.ros.node import ManagedNaimaNode  # noqa: E402
from ros_waits import wait_for  # noqa: E402

pytestmark = pytest.mark.ros

TIMEOUT = 60.0
S, W, H = 8, 64, 48
HAVE_TORCH = importlib.util.find_spec("torch") is not None
METHODS = [pytest.param("naima", marks=pytest.mark.skipif(not HAVE_TORCH,
                                                          reason="method naima needs torch")),
           "bicubic"]



def image(stamp_ns, pixels, encoding):
    msg = Image(encoding=encoding, height=pixels.shape[0], width=pixels.shape[1],
                step=pixels.nbytes // pixels.shape[0], data=pixels.tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = "camera_color_optical_frame"
    return msg


def camera_info():
    k = [40.0, 0.0, 31.5, 0.0, 41.0, 23.5, 0.0, 0.0, 1.0]
    return CameraInfo(width=W, height=H, distortion_model="plumb_bob", d=[0.0] * 5, k=k,
                      r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
                      p=[40.0, 0.0, 31.5, 0.0, 0.0, 41.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("method", METHODS)
def test_lifecycle_services_drive_loading_serving_and_release(method, request):
    ns = f"/naima_lifecycle_{method}"
    checkpoint = "unused_x{scale}.safetensors"
    if method == "naima":
        checkpoint = str(request.getfixturevalue("tiny_checkpoint")(scale=S))
    loads, warmups, fail = [], [], {}

    def factory(method, **kwargs):
        if fail:
            raise RuntimeError(fail["why"])
        predictor = load_predictor(method, **kwargs)
        loads.append(method)
        warm = predictor.warmup
        predictor.warmup = lambda h, w: (warmups.append((h, w)), warm(h, w))
        return predictor

    context = Context()
    rclpy.init(context=context)
    reliable = {f"qos_overrides.{ns}/{topic}.subscription.reliability": "reliable"
                for topic in ("rgb/image_rect_color", "depth/image_rect", "rgb/camera_info")}
    params = {"method": method, "checkpoint": checkpoint, "scale": S, "device": "cpu",
              "warmup_width": W, "warmup_height": H, "diagnostic_updater.period": 0.1,
              "max_input_pixels": W * H, **reliable}
    node = ManagedNaimaNode(namespace=ns, context=context, predictor_factory=factory,
                            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    client = rclpy.create_node("lifecycle_client", namespace=ns, context=context)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    executor.add_node(client)
    threading.Thread(target=executor.spin, daemon=True).start()
    lock, outputs, statuses = threading.Lock(), {}, []
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    rgb_pub = client.create_publisher(Image, "rgb/image_rect_color", qos)
    depth_pub = client.create_publisher(Image, "depth/image_rect", qos)
    info_pub = client.create_publisher(CameraInfo, "rgb/camera_info", qos)

    def store(msg):
        with lock:
            outputs[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg

    def diagnostics(msg):
        with lock:
            statuses.extend((int.from_bytes(s.level, "little"), s.message) for s in msg.status
                            if s.name == f"{ns.lstrip('/')}/naima: depth super-resolution")

    client.create_subscription(Image, "depth_registered/image_rect", store, qos)
    client.create_subscription(DiagnosticArray, "/diagnostics", diagnostics, 50)
    change = client.create_client(ChangeState, f"{ns}/naima/change_state")
    get = client.create_client(GetState, f"{ns}/naima/get_state")

    def call(cli, request):
        assert cli.wait_for_service(timeout_sec=TIMEOUT)
        future = cli.call_async(request)
        wait_for(future.done, f"{cli.srv_name} response")
        return future.result()

    def transition(transition_id):
        return call(change, ChangeState.Request(
            transition=Transition(id=transition_id))).success

    def state():
        return call(get, GetState.Request()).current_state.id

    stamp = [10**12]

    def serve_one():
        stamp[0] += 100_000_000
        t = stamp[0]
        rgb = np.random.default_rng(t % 1000).integers(0, 256, (H, W, 3), dtype=np.uint8)
        depth = np.full((H // S, W // S), 1500, np.uint16)
        info_pub.publish(camera_info())
        time.sleep(0.1)
        rgb_pub.publish(image(t, rgb, "rgb8"))
        depth_pub.publish(image(t, depth, "16UC1"))
        return divmod(t, 1_000_000_000)

    try:
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert loads == [] and node._slot.model is None
        assert rgb_pub.get_subscription_count() == 0  # nothing subscribed before activation

        assert transition(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert loads == [method] and warmups == [(H, W)]  # loaded and warmed up
        assert rgb_pub.get_subscription_count() == 0
        wait_for(lambda: statuses and statuses[-1] == (0, "inactive"), "OK inactive status")

        assert transition(Transition.TRANSITION_ACTIVATE)
        assert state() == State.PRIMARY_STATE_ACTIVE
        wait_for(lambda: rgb_pub.get_subscription_count() and depth_pub.get_subscription_count()
                 and info_pub.get_subscription_count(), "the node's subscriptions")
        key = serve_one()
        wait_for(lambda: key in outputs, "an output while active")
        wait_for(lambda: statuses and statuses[-1] == (0, "running"), "OK running status")

        assert transition(Transition.TRANSITION_DEACTIVATE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        wait_for(lambda: rgb_pub.get_subscription_count() == 0, "subscriptions gone")
        received = node._stats.snapshot()["pairs_received"]
        key = serve_one()
        time.sleep(1.0)
        assert key not in outputs and node._stats.snapshot()["pairs_received"] == received

        assert transition(Transition.TRANSITION_ACTIVATE)  # serves again, same model
        wait_for(lambda: rgb_pub.get_subscription_count(), "subscriptions back")
        key = serve_one()
        wait_for(lambda: key in outputs, "an output after re-activation")
        assert loads == [method]
        assert transition(Transition.TRANSITION_DEACTIVATE)

        assert transition(Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED and node._slot.model is None

        fail["why"] = "weights are corrupt (injected)"
        assert not transition(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        wait_for(lambda: any(level == 2 and "weights are corrupt" in message
                             for level, message in statuses), "ERROR status")
    finally:
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        client.destroy_node()
        rclpy.shutdown(context=context)
