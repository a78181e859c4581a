"""The ROS 2 Python runtime this environment installs (Kilted wheels in .venv, Jazzy wheels in .venv-jazzy, or apt).

Two separate processes exchange a sensor_msgs/Image over real DDS on localhost: rclpy, the message type support
and the RMW load and talk. Runs without torch (the Jazzy job's environment).
"""
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.ros

TOPIC = "naima_packaging_smoke"
PAYLOAD = list(range(2 * 3 * 2))  # a 3x2 mono16 image, little-endian bytes 0..11

TALKER = textwrap.dedent(f"""
    import rclpy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node("packaging_talker")
    pub = node.create_publisher(Image, "{TOPIC}", 10)
    msg = Image(height=2, width=3, encoding="mono16", step=6, data=bytes({PAYLOAD}))
    msg.header.frame_id = "smoke"
    node.create_timer(0.1, lambda: pub.publish(msg))
    rclpy.spin(node)
""")

LISTENER = textwrap.dedent(f"""
    import sys
    import rclpy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node("packaging_listener")
    received = []
    node.create_subscription(Image, "{TOPIC}", received.append, 10)
    while not received and rclpy.ok():
        rclpy.spin_once(node, timeout_sec=0.5)
    msg = received[0]
    print(msg.header.frame_id, msg.encoding, msg.width, msg.height, list(msg.data))
    node.destroy_node()
    rclpy.shutdown()
""")


def test_image_crosses_processes_over_dds():
    env = dict(os.environ, ROS_DOMAIN_ID=str(101 + os.getpid() % 100),  # 101..200: not the node tests' range
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    talker = subprocess.Popen([sys.executable, "-c", TALKER], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        listener = subprocess.run([sys.executable, "-c", LISTENER], env=env, capture_output=True, text=True,
                                  timeout=120)
    finally:
        talker.terminate()
        talker_err = talker.communicate(timeout=30)[1]
    assert listener.returncode == 0, listener.stderr[-3000:] + "\ntalker: " + talker_err[-2000:]
    assert listener.stdout.split("\n")[0] == f"smoke mono16 3 2 {PAYLOAD}"
