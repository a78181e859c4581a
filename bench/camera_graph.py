"""The camera side of the node benches (bench_camera_rate, bench_delivery, bench_soak): one home.

A camera process publishing RGB bgr8 W x H + depth 16UC1 W/8 x H/8 (mm) + CameraInfo with
SensorDataQoS, as camera drivers do, and `Proc`, a child process whose output lines are collected.
Run as a process: `python bench/camera_graph.py camera W H RATE_HZ DURATION_S GO_FILE` — it waits
until the node subscribes and GO_FILE exists, publishes for DURATION_S, then prints
`{"sent": N, "window_s": DURATION_S}`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

SCALE = 8  # depth is W/8 x H/8


def camera_frames(width: int, height: int):
    """(rgb (H, W, 3) uint8, depth (H/8, W/8) uint16 mm, fx): a textured scene with valid depth."""
    import numpy as np
    dw, dh = width // SCALE, height // SCALE
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)
    depth_mm = (1000 + 10 * np.add.outer(np.arange(dh), np.arange(dw))).astype("<u2")
    return rgb, depth_mm, 0.8 * width


def camera(width: int, height: int, rate_hz: float, duration_s: float, go_file: str) -> None:
    """Publish RGB/depth/CameraInfo at rate_hz for duration_s once the node subscribes."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    pubs = {name: node.create_publisher(kind, topic, qos_profile_sensor_data)
            for name, kind, topic in (("rgb", Image, "rgb/image_rect_color"),
                                      ("info", CameraInfo, "rgb/camera_info"),
                                      ("depth", Image, "depth/image_rect"))}
    rgb, depth_mm, f = camera_frames(width, height)
    dh, dw = depth_mm.shape
    cx, cy = (width - 1) / 2, (height - 1) / 2
    msgs = {
        "rgb": Image(height=height, width=width, encoding="bgr8", step=3 * width,
                     data=rgb.tobytes()),
        "depth": Image(height=dh, width=dw, encoding="16UC1", step=2 * dw,
                       data=depth_mm.tobytes()),
        "info": CameraInfo(width=width, height=height, distortion_model="plumb_bob",
                           d=[0.0] * 5, k=[f, 0, cx, 0, f, cy, 0, 0, 1],
                           r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                           p=[f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0]),
    }
    for msg in msgs.values():
        msg.header.frame_id = "camera_color_optical_frame"
    while not (pubs["rgb"].get_subscription_count() and pubs["depth"].get_subscription_count()
               and os.path.exists(go_file)):
        time.sleep(0.05)
    time.sleep(1.0)
    sent, period = 0, 1.0 / rate_hz
    t_next = time.monotonic()
    t_end = t_next + duration_s
    while t_next < t_end:
        stamp = node.get_clock().now().to_msg()
        for name in ("info", "rgb", "depth"):
            msgs[name].header.stamp = stamp
            pubs[name].publish(msgs[name])
        sent += 1
        t_next += period
        time.sleep(max(0.0, t_next - time.monotonic()))
    print(json.dumps({"sent": sent, "window_s": duration_s}), flush=True)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()


class Proc:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, cmd, env, cwd=None):
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"no {text!r} from {self.proc.args[:4]}:\n"
                           + "\n".join(self.lines[-30:]))

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)


def node_command(method: str, checkpoint: str, width: int, height: int, *extra_params: str) -> list[str]:
    """`python -m naima_ros.ros.node` on the CPU at SCALE, warmed up at the camera's size."""
    cmd = [sys.executable, "-m", "naima_ros.ros.node", "--ros-args",
           "-p", f"method:={method}", "-p", f"scale:={SCALE}", "-p", "device:=cpu",
           "-p", f"warmup_width:={width}", "-p", f"warmup_height:={height}", "-p", "max_depth:=20.0"]
    if checkpoint:
        cmd += ["-p", f"checkpoint:={checkpoint}"]
    for param in extra_params:
        cmd += ["-p", param]
    return cmd


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "camera":
        camera(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    else:
        raise SystemExit("usage: camera_graph.py camera W H RATE_HZ DURATION_S GO_FILE")
