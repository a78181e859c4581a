"""Benchmark of the ROS node's own work around the model (not a test; prints a table).

1. Node overhead at the output size (default 640x480, x8): message decode, the Upsampler's
   pre/post-processing (validity, normalisation, hole filling, standardisation, padding, crop),
   depth encode, CameraInfo rescale, organised cloud, and publish (serialisation through rclpy),
   each as a fraction of the network forward pass alone.
2. The organised XYZRGB cloud build vs a plain copy of the same number of bytes.
3. End-to-end latency when the input rate is far above the model rate: a NaimaNode in-process on
   real DDS fed at --rate Hz for --duration s; latency = arrival of the output - input stamp.

Usage: .venv/bin/python bench/bench_node.py [--checkpoint PATH] [--width 640 --height 480]
Without --checkpoint, the committed demo checkpoint is used if present, else a freshly built
(untrained) light model of the same size: speed does not depend on the weights.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import torch  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from naima_ros.data.common import fill_invalid_nearest  # noqa: E402
from naima_ros.frames import standardise_rgb  # noqa: E402
from naima_ros.inference import Upsampler, network_size  # noqa: E402
from naima_ros.depth_codec import encode_depth  # noqa: E402
from naima_ros.geometry import depth_to_points  # noqa: E402
from naima_ros.ros.conversions import camera_info_msg, depth_image, points_cloud  # noqa: E402
from naima_ros.serving import decode_images, output_camera_info  # noqa: E402


def camera_info_to_output(info, width, height, header):
    fields, intr = output_camera_info(info, width, height)
    return camera_info_msg(fields, header), intr


def cloud_msg_of(depth_hr, intr, header, rgb):
    return points_cloud(depth_to_points(depth_hr, intr.fx, intr.fy, intr.cx, intr.cy, rgb=rgb),
                        header)

REPO = Path(__file__).resolve().parents[1]


def timeit(fn, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def checkpoint_path(arg: str | None, scale: int) -> Path:
    if arg:
        return Path(arg)
    demo = REPO / "checkpoints" / f"naima_light_x{scale}_demo.safetensors"
    if demo.is_file():
        return demo
    from naima_ros.checkpoint import save_checkpoint, use_seeded_backbone
    from naima_ros.model import build_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model("light", scale, seed=0)
    use_seeded_backbone(model, 0)
    path = Path(tempfile.mkdtemp()) / f"bench_light_x{scale}.safetensors"
    save_checkpoint(path, model, preset="light")
    print(f"(no demo checkpoint: timing an untrained light x{scale} model, same cost)")
    return path


class _NullNetwork:
    """Stands in for the network: the real model's attributes, a zero output of the right size."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, rgb, depth):
        return torch.zeros(rgb.shape[0], 1, rgb.shape[2], rgb.shape[3])


def make_inputs(width: int, height: int, scale: int, stamp_ns: int = 1):
    rng = np.random.default_rng(0)
    h, w = height // scale, width // scale
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    rgb = Image(header=header, height=height, width=width, encoding="bgr8", step=3 * width,
                data=rng.integers(0, 256, height * width * 3, dtype=np.uint8).tobytes())
    depth_mm = rng.integers(500, 4000, (h, w)).astype("<u2")
    depth_mm[rng.random((h, w)) < 0.05] = 0
    depth = Image(header=header, height=h, width=w, encoding="16UC1", step=2 * w,
                  data=depth_mm.tobytes())
    info = CameraInfo(header=header, width=width, height=height,
                      k=[525.0, 0, width / 2 - 0.5, 0, 525, height / 2 - 0.5, 0, 0, 1],
                      p=[525.0, 0, width / 2 - 0.5, 0, 0, 525, height / 2 - 0.5, 0, 0, 0, 1, 0])
    return rgb, depth, info


def bench_overhead(up: Upsampler, width: int, height: int, repeats: int) -> None:
    s = up.scale
    rgb_msg, depth_msg, info = make_inputs(width, height, s)
    rgb, depth_m, valid = decode_images(rgb_msg, depth_msg)
    depth_in = np.where(valid, depth_m, np.nan)

    # the network alone, on inputs already normalised and padded as the Upsampler does
    d_valid = depth_m[valid]
    norm = fill_invalid_nearest(np.where(valid, (depth_m - d_valid.min()) / np.ptp(d_valid), 0.0),
                        valid).astype(np.float32)
    ph, pw = network_size(up.model.config, height, width)
    rgb_p = torch.nn.functional.pad(torch.from_numpy(standardise_rgb(rgb))[None], (0, pw - width, 0, ph - height),
                                    mode="replicate")
    depth_p = torch.nn.functional.pad(torch.from_numpy(norm)[None, None],
                                      (0, pw // s - norm.shape[1], 0, ph // s - norm.shape[0]),
                                      mode="replicate")

    def network():
        with torch.inference_mode(), up._autocast():
            up.model(rgb_p.to(up.device), depth_p.to(up.device))

    t_net = timeit(network, repeats)
    depth_hr = up(rgb, depth_in)
    # the Upsampler's own work: the same call with the network swapped for a zero output
    real_model = up.model
    up.model = _NullNetwork(real_model)
    try:
        t_prepost = timeit(lambda: up(rgb, depth_in), repeats)
    finally:
        up.model = real_model
    _, intr = camera_info_to_output(info, width, height, depth_msg.header)

    rclpy.init()
    node = rclpy.create_node("bench_publish")
    sink = rclpy.create_node("bench_sink")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, "bench/image", qos)
    cloud_pub = node.create_publisher(PointCloud2, "bench/points", qos)
    sink.create_subscription(Image, "bench/image", lambda m: None, qos)
    sink.create_subscription(PointCloud2, "bench/points", lambda m: None, qos)
    executor = MultiThreadedExecutor()
    executor.add_node(sink)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    time.sleep(1.0)  # discovery
    image_msg = depth_image(encode_depth(depth_hr), depth_msg.header)
    cloud_msg = cloud_msg_of(depth_hr, intr, depth_msg.header, rgb)

    rows = [
        ("decode rgb + depth msgs", timeit(lambda: decode_images(rgb_msg, depth_msg), repeats)),
        ("Upsampler pre/post (norm, fill, pad, crop)", t_prepost),
        ("encode depth image 32FC1", timeit(
            lambda: depth_image(encode_depth(depth_hr), depth_msg.header), repeats)),
        ("CameraInfo rescale", timeit(lambda: camera_info_to_output(info, width, height,
                                                                    depth_msg.header),
                                      repeats)),
        ("organised XYZRGB cloud msg", timeit(lambda: cloud_msg_of(depth_hr, intr,
                                                                   depth_msg.header, rgb),
                                              repeats)),
        ("publish image + cloud (rclpy)", timeit(lambda: (image_pub.publish(image_msg),
                                                          cloud_pub.publish(cloud_msg)),
                                                 repeats)),
    ]
    executor.shutdown()
    spinner.join(timeout=5)
    node.destroy_node()
    sink.destroy_node()
    rclpy.shutdown()

    print(f"\n## 1. Node overhead at {width}x{height} output, x{s}, {up.device} {up.precision} "
          f"(median of {repeats})")
    print(f"{'step':<46}{'ms':>9}{'% of network':>15}")
    print(f"{'network forward (the model alone)':<46}{t_net * 1e3:>9.2f}{100.0:>14.1f}%")
    total = 0.0
    for name, t in rows:
        total += t
        print(f"{name:<46}{t * 1e3:>9.2f}{100 * t / t_net:>14.1f}%")
    print(f"{'node overhead, total':<46}{total * 1e3:>9.2f}{100 * total / t_net:>14.1f}%")

    plain = np.empty(height * width * 32, np.uint8)
    t_copy = timeit(lambda: plain.copy(), repeats)
    t_points = timeit(lambda: cloud_msg_of(depth_hr, intr, depth_msg.header, rgb), repeats)
    print(f"\n## 2. Organised XYZRGB cloud ({height * width * 32 / 2**20:.1f} MiB) vs a plain copy")
    print(f"cloud build {t_points * 1e3:.2f} ms, numpy copy of the same bytes {t_copy * 1e3:.2f} "
          f"ms: {t_points / t_copy:.1f}x")


def bench_latency(path: Path, width: int, height: int, rate_hz: float, duration_s: float,
                  device: str, method: str = "naima") -> None:
    from naima_ros.ros.node import NaimaNode

    rclpy.init()
    node = NaimaNode(parameter_overrides=[
        Parameter("method", value=method),
        Parameter("checkpoint", value=str(path)), Parameter("device", value=device),
        Parameter("warmup_width", value=width), Parameter("warmup_height", value=height),
        Parameter("qos_overrides./rgb/image_rect_color.subscription.reliability",
                  value="reliable"),
        Parameter("qos_overrides./depth/image_rect.subscription.reliability", value="reliable"),
        Parameter("scale", value=Upsampler.from_checkpoint(path, device="cpu").scale)])
    feeder = rclpy.create_node("bench_feeder")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    rgb_pub = feeder.create_publisher(Image, "rgb/image_rect_color", qos)
    depth_pub = feeder.create_publisher(Image, "depth/image_rect", qos)
    info_pub = feeder.create_publisher(CameraInfo, "rgb/camera_info", qos)
    latencies = []
    feeder.create_subscription(
        Image, "depth_registered/image_rect",
        lambda m: latencies.append(time.time() - (m.header.stamp.sec + m.header.stamp.nanosec
                                                   * 1e-9)), qos)
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.add_node(feeder)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    while not (rgb_pub.get_subscription_count() and depth_pub.get_subscription_count()):
        time.sleep(0.05)
    sent = 0
    t_end = time.monotonic() + duration_s
    while time.monotonic() < t_end:
        rgb, depth, info = make_inputs(width, height, node._slot.model.scale, time.time_ns())
        info_pub.publish(info)
        rgb_pub.publish(rgb)
        depth_pub.publish(depth)
        sent += 1
        time.sleep(1.0 / rate_hz)
    time.sleep(2.0)
    snap = node._stats.snapshot()
    executor.shutdown()
    spinner.join(timeout=5)
    node.destroy_node()
    feeder.destroy_node()
    rclpy.shutdown()
    lat = np.array(latencies[1:]) * 1e3  # the first frame waits for nothing: skip it
    print(f"\n## 3. Latency with input at {rate_hz:.0f} Hz for {duration_s:.0f} s "
          f"({width}x{height}, x{node._slot.model.scale}, method {method})")
    print(f"pairs sent {sent}, received {snap['pairs_received']}, served "
          f"{snap['frames_published']}, superseded {snap['events'].get('superseded', 0)}; "
          f"model p50 {snap['model_p50_ms']:.0f} ms")
    if lat.size:
        p95 = np.percentile(lat, 95)
        print(f"stamp -> output arrival over {lat.size} frames: p50 {np.percentile(lat, 50):.0f} "
              f"ms, p95 {p95:.0f} ms, max {lat.max():.0f} ms; p95 / model p50 = "
              f"{p95 / snap['model_p50_ms']:.2f} (a backlog would grow it without bound)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--scale", type=int, default=8, help="scale of the default checkpoint")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rate", type=float, default=30.0, help="input rate of part 3 (Hz)")
    parser.add_argument("--duration", type=float, default=15.0, help="length of part 3 (s)")
    parser.add_argument("--method", default="naima",
                        help="the node's method in part 3 (a baseline: the node's own path alone)")
    args = parser.parse_args(argv)
    path = checkpoint_path(args.checkpoint, args.scale)
    up = Upsampler.from_checkpoint(path, device=args.device)
    print(f"checkpoint {path} ({up.describe()['preset']}, x{up.scale}); torch threads "
          f"{torch.get_num_threads()}")
    bench_overhead(up, args.width, args.height, args.repeats)
    bench_latency(path, args.width, args.height, args.rate, args.duration, args.device,
                  args.method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
