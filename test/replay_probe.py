"""A separate process watching a `naima-bag replay` over DDS (run by test_bags_replay).

    python replay_probe.py OUT.json LATCHED_TOPIC LATCHED_LOG_NS VOLATILE_TOPIC

Records every /clock it receives; reads the QoS the replay's publishers offer on LATCHED_TOPIC and
VOLATILE_TOPIC from the DDS graph; once /clock has passed LATCHED_LOG_NS (so the latched message
was published already), subscribes to LATCHED_TOPIC transient-local, as a late joiner, and keeps
what it receives. Ends when /clock has been silent for 3 s after it started (or after 120 s) and
writes what it saw as JSON.
"""
import json
import sys
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo


def main(out_path, latched_topic, latched_log_ns, volatile_topic):
    rclpy.init()
    node = rclpy.create_node("replay_probe")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    seen = {"clock_ns": [], "latched": [], "qos": {}}
    last_clock = [None]

    def on_clock(msg):
        seen["clock_ns"].append(msg.clock.sec * 1_000_000_000 + msg.clock.nanosec)
        last_clock[0] = time.monotonic()

    node.create_subscription(Clock, "/clock", on_clock,
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    late = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        for topic in (latched_topic, volatile_topic):
            if topic not in seen["qos"]:
                infos = node.get_publishers_info_by_topic(topic)
                if infos:
                    q = infos[0].qos_profile
                    seen["qos"][topic] = {"durability": q.durability.name,
                                          "reliability": q.reliability.name}
        if late is None and seen["clock_ns"] and max(seen["clock_ns"]) > latched_log_ns:
            late = node.create_subscription(
                CameraInfo, latched_topic,
                lambda msg: seen["latched"].append(msg.header.stamp.sec * 10**9
                                                   + msg.header.stamp.nanosec),
                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL))
        if last_clock[0] is not None and time.monotonic() - last_clock[0] > 3.0:
            break
    with open(out_path, "w") as f:
        json.dump(seen, f)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
