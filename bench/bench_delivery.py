"""Delivery of the node's outputs across processes, with and without config/fastdds_large_data.xml.

Three processes per run, as on a robot: a camera (RGB bgr8 W x H + depth 16UC1 W/8 x H/8 +
CameraInfo at 15 Hz, SensorDataQoS: best effort, keep last 5, as camera drivers publish), the node
(`python -m naima_ros.ros.node`, by default with `method:=bicubic` so the bench measures transport,
not the network; `--method naima --checkpoint PATH` measures with the network), and subscribers:
a reliable and a best-effort subscription to each of depth_registered/image_rect and
depth_registered/points. Subscribers take the serialised message (`raw=True`) and read only the
header stamp, so deserialising 30 MB clouds in Python does not become the bottleneck measured.

Reported per run: camera pairs sent, pairs the node received (its /diagnostics `pairs_received`),
frames it served (`frames_published`), and per subscriber the frames received as a fraction of
the frames served. Writes bench/results/delivery_<date>.json.

Usage: .venv/bin/python bench/bench_delivery.py [--duration 60] [--sizes 640x480,1280x720]
       [--profiles with,without] [--method bicubic | --method naima --checkpoint PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import struct
import sys
import threading
import time
from pathlib import Path

from camera_graph import Proc, node_command  # bench/ is sys.path[0] when run as a script

REPO = Path(__file__).resolve().parents[1]
CAMERA = str(Path(__file__).resolve().parent / "camera_graph.py")
PROFILE = REPO / "config" / "fastdds_large_data.xml"
RATE_HZ = 15.0
OUTPUTS = ("depth_registered/image_rect", "depth_registered/points")
START_TIMEOUT_S = 180.0


# ---------------------------------------------------------------- camera process
def subscribers(stop_file: str, depth: int) -> None:
    """Reliable and best-effort subscriptions to the outputs; counts distinct header stamps."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2

    rclpy.init()
    node = rclpy.create_node("bench_subscribers")
    # the same history depth for both kinds: only the reliability differs
    kinds = {name: QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)
             for name, policy in (("reliable", ReliabilityPolicy.RELIABLE),
                                  ("best_effort", ReliabilityPolicy.BEST_EFFORT))}
    group = ReentrantCallbackGroup()  # no subscription waits for another's callback
    stamps: dict[str, set] = {}
    lock = threading.Lock()

    def counter(key):
        def callback(raw: bytes):
            # CDR: 4-byte encapsulation header, then std_msgs/Header's stamp (int32 s, uint32 ns)
            stamp = struct.unpack_from("<iI", raw, 4)
            with lock:
                stamps[key].add(stamp)
        return callback

    for topic, kind in zip(OUTPUTS, (Image, PointCloud2)):
        for qos_name, qos in kinds.items():
            key = f"{topic.rsplit('/', 1)[1]}/{qos_name}"
            stamps[key] = set()
            node.create_subscription(kind, topic, counter(key), qos, raw=True,
                                     callback_group=group)
    last_status: dict = {}

    def diagnostics_callback(msg):
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "pairs_received" in values:
                last_status.clear()
                last_status.update(values, level=int.from_bytes(status.level, "little")
                                   if isinstance(status.level, bytes) else int(status.level),
                                   message=status.message)

    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics_callback, 10)
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    while not all(node.count_publishers(t) for t in OUTPUTS):
        time.sleep(0.05)
    print(json.dumps({"ready": True}), flush=True)
    while not os.path.exists(stop_file):
        time.sleep(0.1)
    with lock:
        counts = {key: len(s) for key, s in stamps.items()}
        every = sorted(set().union(*stamps.values()))
        # which served frames (by position in time) each subscriber missed
        missed = {key: [i for i, t in enumerate(every) if t not in s] for key, s in stamps.items()}
    print(json.dumps({"counts": counts, "union": len(every), "missed": missed,
                      "diagnostics": last_status}), flush=True)
    executor.shutdown(timeout_sec=2)
    node.destroy_node()
    rclpy.shutdown()


# ---------------------------------------------------------------- orchestration
def run_once(width: int, height: int, with_profile: bool, args, domain_id: int, tmp: Path) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if with_profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(args.profile_file)
    go, stop = tmp / f"go_{domain_id}", tmp / f"stop_{domain_id}"
    node_cmd = node_command(args.method, args.checkpoint, width, height)
    me = str(Path(__file__).resolve())
    node = Proc(node_cmd, env)
    subs = cam = None
    try:
        node.wait_for("ready", START_TIMEOUT_S)
        subs = Proc([sys.executable, me, "subscribers", str(stop), str(args.history)], env)
        subs.wait_for('"ready"', START_TIMEOUT_S)
        cam = Proc([sys.executable, CAMERA, "camera", str(width), str(height), str(RATE_HZ), str(args.duration),
                    str(go)], env)
        go.touch()
        sent = json.loads(cam.wait_for('"sent"', START_TIMEOUT_S + args.duration * 3))["sent"]
        time.sleep(3.0)  # the last frames in flight, and one more /diagnostics period
        stop.touch()
        result = json.loads(subs.wait_for('"counts"', 60))
    finally:
        for proc in (cam, subs, node):
            if proc is not None:
                proc.stop()
    diag = result["diagnostics"]
    served = int(diag.get("frames_published", result["union"]))
    return {
        "size": f"{width}x{height}", "profile": with_profile, "duration_s": args.duration,
        "method": args.method, "subscriber_history": args.history, "pairs_sent": sent,
        "pairs_received_by_node": int(diag["pairs_received"]) if "pairs_received" in diag else None,
        "frames_served": served, "received": result["counts"], "missed": result["missed"],
        "ratio": {k: (v / served if served else None) for k, v in result["counts"].items()},
        "diagnostics": diag,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="camera seconds per run")
    parser.add_argument("--sizes", default="640x480,1280x720", help="RGB (= output) sizes")
    parser.add_argument("--profiles", default="with,without", help="with, without or both")
    parser.add_argument("--method", default="bicubic", help="node `method` parameter")
    parser.add_argument("--checkpoint", default="", help="node `checkpoint` (method naima)")
    parser.add_argument("--history", type=int, default=10,
                        help="history depth (keep last) of both subscriber kinds")
    parser.add_argument("--profile-file", default=str(PROFILE), help="the profile of 'with' runs")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    runs = []
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_delivery_{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    domain = 150 + os.getpid() % 60
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        for profile in args.profiles.split(","):
            domain += 1
            run = run_once(width, height, profile == "with", args, domain, tmp)
            runs.append(run)
            ratios = ", ".join(f"{k} {v:.1%}" if v is not None else f"{k} -"
                               for k, v in run["ratio"].items())
            print(f"{run['size']} profile={profile}: sent {run['pairs_sent']}, node received "
                  f"{run['pairs_received_by_node']}, served {run['frames_served']}; {ratios}",
                  flush=True)
    out = Path(args.out) / f"delivery_{datetime.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "rate_hz": RATE_HZ,
                               "cpu_count": os.cpu_count(), "runs": runs}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "subscribers":
        subscribers(sys.argv[2], int(sys.argv[3]))
    else:
        main()
