"""Large messages between processes over real DDS, with config/fastdds_large_data.xml.

A publisher process (reliable, as the node's outputs are) and a subscriber process (best effort,
as rviz and most perception nodes subscribe) on a unique ROS_DOMAIN_ID, localhost only. With the
profile in both processes every multi-megabyte message arrives. Without it Fast DDS's default
512 KiB shared-memory segment makes delivery lossy; that count is printed, not asserted (it is
timing dependent). Counts only, no timing asserts: the publisher sends at a fixed modest rate.

Run as a script, this file is one of the two peers (`publish` or `subscribe`).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "config" / "fastdds_large_data.xml"
TOPIC = "/naima_delivery_test/image"
COUNT = 20
RATE_HZ = 10.0
MATCH_TIMEOUT_S = 60.0


def _image(index: int, size_bytes: int):
    from sensor_msgs.msg import Image

    width = 1024
    height = max(1, size_bytes // (width * 2))
    msg = Image(height=height, width=width, encoding="16UC1", step=width * 2)
    msg.header.frame_id = str(index)
    msg.header.stamp.sec = 1 + index
    # a pattern per message so a stale or mixed-up buffer would be noticed
    msg.data = bytes([index % 251]) * (height * width * 2)
    return msg


def publish(size_bytes: int, count: int) -> None:
    """Reliable publisher: wait for the subscriber, then `count` messages at RATE_HZ."""
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("delivery_publisher")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                     reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(Image, TOPIC, qos)
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the subscriber's side of the match settle too
    for index in range(count):
        pub.publish(_image(index, size_bytes))
        time.sleep(1.0 / RATE_HZ)
    time.sleep(2.0)  # keep the writer alive for repairs and late fragments
    node.destroy_node()
    rclpy.shutdown()


def subscribe(count: int, timeout_s: float, done_file: str) -> None:
    """Best-effort subscriber: print JSON with the indices received (intact) once all `count`
    arrived, `done_file` exists (the publisher has finished) or timeout_s passed."""
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("delivery_subscriber")
    # history for every message: a subscriber process starved of CPU for a moment must not turn
    # into a loss here, only the transport may
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=count,
                     reliability=ReliabilityPolicy.BEST_EFFORT)
    received, corrupt = set(), []

    def callback(msg):
        index = int(msg.header.frame_id)
        data = bytes(msg.data)
        if len(data) == msg.step * msg.height and data == bytes([index % 251]) * len(data):
            received.add(index)
        else:
            corrupt.append(index)

    node.create_subscription(Image, TOPIC, callback, qos)
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + timeout_s
    while (len(received) < count and time.monotonic() < deadline
           and not os.path.exists(done_file)):
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps({"received": sorted(received), "corrupt": corrupt}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def peer_environment(domain_id: int, profile: Path | None) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_LOCALHOST_ONLY="1", PYTHONUNBUFFERED="1")
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    if profile is not None:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return env


def run_pair(tmp_path: Path, domain_id: int, profile: Path | None, size_bytes: int,
             count: int = COUNT):
    """Start subscriber then publisher; returns (received indices, corrupt, both outputs)."""
    env = peer_environment(domain_id, profile)
    timeout_s = MATCH_TIMEOUT_S + count / RATE_HZ + 20
    done = tmp_path / f"published_{domain_id}"
    sub = subprocess.Popen([sys.executable, __file__, "subscribe", str(count), str(timeout_s),
                            str(done)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = sub.stdout.readline()
        assert "ready" in ready, sub.stderr.read()
        pub = subprocess.run([sys.executable, __file__, "publish", str(size_bytes), str(count)],
                             env=env, capture_output=True, text=True, timeout=timeout_s + 30,
                             check=False)
        done.touch()  # the publisher lingered 2 s after its last message: nothing more comes
        out, err = sub.communicate(timeout=timeout_s + 30)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.communicate()
    assert pub.returncode == 0, pub.stderr
    assert sub.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    return result["received"], result["corrupt"], pub.stderr + err


def domain_id(offset: int) -> int:
    # distinct from the other DDS tests (1..100 by pid) and from each other
    return 101 + (os.getpid() * 2 + offset) % 100


def test_profile_structure_and_size():
    """Transports referenced exist; the segment holds two 1280x720 frames (cloud + depth)."""
    from naima_ros.geometry import XYZRGB_DTYPE

    ns = {"dds": "http://www.eprosima.com"}
    root = ElementTree.parse(PROFILE).getroot()
    descriptors = {d.findtext("dds:transport_id", namespaces=ns): d
                   for d in root.iterfind(".//dds:transport_descriptor", ns)}
    participant = root.find(".//dds:participant[@is_default_profile='true']", ns)
    used = [t.text for t in participant.iterfind("dds:rtps/dds:userTransports/dds:transport_id",
                                                 ns)]
    assert used and set(used) <= set(descriptors)
    assert participant.findtext("dds:rtps/dds:useBuiltinTransports", namespaces=ns) == "false"
    kinds = {descriptors[t].findtext("dds:type", namespaces=ns): descriptors[t] for t in used}
    assert set(kinds) == {"SHM", "UDPv4"}
    frame_bytes = 1280 * 720 * (XYZRGB_DTYPE.itemsize + 4)  # XYZRGB cloud + 32FC1 image
    assert int(kinds["SHM"].findtext("dds:segment_size", namespaces=ns)) >= 2 * frame_bytes
    # ~64 KB fragments, one port-queue entry each: a whole cloud must fit in the queue
    assert int(kinds["SHM"].findtext("dds:port_queue_capacity", namespaces=ns)) * 65000 > \
        1280 * 720 * XYZRGB_DTYPE.itemsize


@pytest.mark.parametrize("size_mb", [1.2, 3.0])
def test_large_messages_reach_a_best_effort_subscriber_with_the_profile(tmp_path, size_mb):
    received, corrupt, logs = run_pair(tmp_path, domain_id(0 if size_mb < 2 else 1), PROFILE,
                                       int(size_mb * 1e6))
    assert corrupt == []
    assert received == list(range(COUNT)), f"got {len(received)}/{COUNT}: {received}\n{logs}"
    assert "XMLPARSER" not in logs and "Error" not in logs, logs


def test_without_the_profile_delivery_is_recorded(tmp_path, capsys):
    """Not asserted (timing dependent); the number documents why the profile exists."""
    received, corrupt, _ = run_pair(tmp_path, domain_id(2), None, int(1.2e6), count=10)
    with capsys.disabled():
        print(f"\n[without profile] best-effort subscriber got {len(received)}/10 messages of 1.2 MB")
    assert corrupt == []


def test_a_broken_profile_is_reported_by_fast_dds(tmp_path):
    """The error check above can fail: Fast DDS does report a profile it cannot parse."""
    broken = tmp_path / "broken.xml"
    broken.write_text(PROFILE.read_text().replace("<segment_size>", "<segment_sise>")
                      .replace("</segment_size>", "</segment_sise>"))
    code = ("import rclpy; rclpy.init(); n = rclpy.create_node('probe'); "
            "n.destroy_node(); rclpy.shutdown()")
    proc = subprocess.run([sys.executable, "-c", code], env=peer_environment(domain_id(3), broken),
                          capture_output=True, text=True, timeout=120, check=False)
    assert "XMLPARSER" in proc.stderr + proc.stdout, proc.stderr


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "publish":
        publish(int(sys.argv[2]), int(sys.argv[3]))
    elif role == "subscribe":
        subscribe(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(f"unknown role {role!r}: publish | subscribe")
