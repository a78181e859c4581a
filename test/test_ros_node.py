"""NaimaNode over real DDS (rclpy + Fast DDS), in-process, serving with the real predictors.

The shared node runs once per method: `naima` (the network, a tiny checkpoint; skipped where torch
is not importable, e.g. the Jazzy job) and `bicubic` (a baseline: no torch anywhere). Tests about
checkpoints and model swaps need the network and only run with it.

Each test process gets its own ROS_DOMAIN_ID and localhost-only discovery; each node lives in its
own namespace. Tests wait on conditions with generous timeouts and never assert timing.
"""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # 1..100: unique per test process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"  # older distros

import importlib.util  # noqa: E402
import itertools  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from naima_ros.depth_codec import decode_depth  # noqa: E402
from naima_ros.predictors import load_predictor  # noqa: E402
from naima_ros.ros.node import ModelLoadError, NaimaNode  # noqa: E402
from ros_waits import wait_for  # noqa: E402

pytestmark = pytest.mark.ros

HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="method naima needs torch (not installed)")
METHODS = [pytest.param("naima", marks=needs_torch), "bicubic"]
TIMEOUT = 60.0  # s; generous: the machine may be loaded
SCALE = 8
LR_H, LR_W = 6, 8  # -> 48 x 64 output
K = [40.0, 0.0, 31.5, 0.0, 41.0, 23.5, 0.0, 0.0, 1.0]
_stamps = itertools.count(1000 * 10)  # units of 0.1 s: strictly increasing across the module


def reliable_inputs(namespace: str, depth: int = 20) -> dict:
    """qos_overrides of the node's inputs: reliable, deeper history (an in-process burst)."""
    return {f"qos_overrides.{namespace}/{topic}.subscription.{policy}": value
            for topic in ("rgb/image_rect_color", "depth/image_rect", "rgb/camera_info")
            for policy, value in (("reliability", "reliable"), ("depth", depth))}


def next_stamp_ns() -> int:
    return next(_stamps) * 100_000_000



# ---------------------------------------------------------------------- frames
def lr_depth_m(h=LR_H, w=LR_W) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (1.0 + 0.1 * xx + 0.05 * yy).astype(np.float32)


def rgb_pixels(hh, ww) -> np.ndarray:
    rng = np.random.default_rng(hh * 1000 + ww)
    return rng.integers(0, 256, (hh, ww, 3), dtype=np.uint8)


def image_msg(stamp_ns, pixels: np.ndarray, encoding: str, frame="camera_color_optical_frame",
              step=None, data=None, bigendian=False) -> Image:
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame
    msg.height, msg.width = pixels.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = bigendian
    raw = pixels.tobytes()
    msg.step = step if step is not None else len(raw) // max(msg.height, 1)
    msg.data = data if data is not None else raw
    return msg


def depth_msg(stamp_ns, depth_m=None, encoding="16UC1", **kw) -> Image:
    depth_m = lr_depth_m() if depth_m is None else depth_m
    if encoding in ("16UC1", "mono16"):
        pixels = np.where(np.isfinite(depth_m), np.rint(depth_m * 1000), 0).astype(
            ">u2" if kw.get("bigendian") else "<u2")
    else:
        pixels = depth_m.astype(">f4" if kw.get("bigendian") else "<f4")
    return image_msg(stamp_ns, pixels, encoding, **kw)


def rgb_msg(stamp_ns, hh=LR_H * SCALE, ww=LR_W * SCALE, encoding="rgb8", **kw) -> Image:
    return image_msg(stamp_ns, rgb_pixels(hh, ww), encoding, **kw)


def camera_info(ww=LR_W * SCALE, hh=LR_H * SCALE, k=K) -> CameraInfo:
    info = CameraInfo()
    info.header.frame_id = "camera_color_optical_frame"
    info.width, info.height = ww, hh
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [float(v) for v in k]
    info.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    info.p = [float(k[0]), 0.0, float(k[2]), 0.0, 0.0, float(k[4]), float(k[5]), 0.0,
              0.0, 0.0, 1.0, 0.0]
    return info


# ---------------------------------------------------------------------- model wrapper
class ControlledPredictor:
    """A real predictor, with test controls: a one-shot failure, a delay, a warm-up record."""

    def __init__(self, predictor):
        self.upsampler = predictor
        self.fail_next = False
        self.delay_s = 0.0
        self.gain = 1.0  # != 1: a model gone wrong (its output no longer matches its input)
        self.warmups = []
        self.calls = 0

    @property
    def scale(self):
        return self.upsampler.scale

    def describe(self):
        return self.upsampler.describe()

    def warmup(self, height, width, iterations=1):
        self.warmups.append((height, width, iterations))
        self.upsampler.warmup(height, width)

    def predict(self, rgb, depth, min_confidence=None):
        self.calls += 1
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("injected inference failure")
        if self.delay_s:
            time.sleep(self.delay_s)
        out = self.upsampler.predict(rgb, depth, min_confidence)
        return out if self.gain == 1.0 else out._replace(depth=out.depth * np.float32(self.gain))


# ---------------------------------------------------------------------- DDS harness
class Harness:
    """A test node in the naima node's namespace: publishes inputs, records every output."""

    def __init__(self, context, executor, namespace):
        self.ns = namespace
        self.node = rclpy.create_node("harness", namespace=namespace, context=context)
        self.lock = threading.Lock()
        self.images, self.infos, self.clouds = {}, {}, {}
        self.diag = {}
        self.status = None  # (level, message) of the node's last /diagnostics status
        # diagnostic_updater's naming: "<node without the leading slash>: <task>"
        self.status_name = f"{namespace.lstrip('/')}/naima: depth super-resolution"
        self.statuses = {}  # name -> (level, message, hardware_id, values) of every status seen
        self.logs = []
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.make_publishers()
        self.info_pub = self.node.create_publisher(CameraInfo, "rgb/camera_info", qos)
        for msg_type, topic, store in (
                (Image, "depth_registered/image_rect", self.images),
                (CameraInfo, "depth_registered/camera_info", self.infos),
                (PointCloud2, "depth_registered/points", self.clouds)):
            self.node.create_subscription(msg_type, topic, self._store(store), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 50)
        self.node.create_subscription(
            Log, "/rosout", self._log,
            QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL))
        executor.add_node(self.node)

    def make_publishers(self):
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.rgb_pub = self.node.create_publisher(Image, "rgb/image_rect_color", qos)
        self.depth_pub = self.node.create_publisher(Image, "depth/image_rect", qos)

    def destroy_publishers(self):
        self.node.destroy_publisher(self.rgb_pub)
        self.node.destroy_publisher(self.depth_pub)

    def _store(self, store):
        def callback(msg):
            with self.lock:
                store[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
        return callback

    def _diagnostics(self, msg):
        for status in msg.status:
            level = int.from_bytes(status.level, "little")
            with self.lock:
                self.statuses[status.name] = (level, status.message, status.hardware_id,
                                              {kv.key: kv.value for kv in status.values})
                if status.name == self.status_name:  # the node's main status
                    self.diag = self.statuses[status.name][3]
                    self.status = (level, status.message)

    def _log(self, msg):
        with self.lock:
            self.logs.append((msg.name, msg.level, msg.msg))

    @property
    def logger_name(self):
        return f"{self.ns.strip('/').replace('/', '.')}.naima"

    # -- helpers used by tests
    def connect(self, naima: NaimaNode):
        pubs = [self.info_pub] + [pub for pub, which in ((self.rgb_pub, "rgb"),
                                                         (self.depth_pub, "depth"))
                                  if naima.get_parameter(f"{which}_transport").value == "raw"]
        wait_for(lambda: all(pub.get_subscription_count() >= 1 for pub in pubs),
                 what="naima subscriptions to match")
        wait_for(lambda: self.diag, what="first diagnostics")

    def counter(self, key: str) -> int:
        with self.lock:
            return int(self.diag.get(key, 0))

    def send_info(self, info=None):
        self.info_pub.publish(info or camera_info())

    def send(self, rgb: Image, depth: Image):
        self.rgb_pub.publish(rgb)
        self.depth_pub.publish(depth)

    def output(self, stamp_ns, timeout=TIMEOUT, points=True):
        key = divmod(stamp_ns, 1_000_000_000)

        def ready():
            with self.lock:
                have = key in self.images and key in self.infos
                return have and (not points or key in self.clouds)
        wait_for(ready, timeout=timeout, what=f"outputs stamped {stamp_ns} (node status {self.status}, "
                 f"{self.diag})")
        with self.lock:
            return self.images[key], self.infos[key], self.clouds.get(key)

    def serve_good(self, **kw):
        """Send a good pair; return its outputs (proves the node is up and serving)."""
        t = next_stamp_ns()
        self.send(rgb_msg(t), depth_msg(t))
        return self.output(t, **kw)

    def expect_drop(self, reason: str, send):
        """Run `send()`; wait for the drop counter of `reason` to grow and for its warning."""
        before = self.counter(f"dropped.{reason}")
        with self.lock:
            n_logs = len(self.logs)
        send()
        wait_for(lambda: self.counter(f"dropped.{reason}") > before,
                 what=f"dropped.{reason} to grow past {before}")
        wait_for(lambda: self.warnings(f"[{reason}]", since=n_logs),
                 what=f"a warning on /rosout naming {reason}")
        return self.warnings(f"[{reason}]", since=n_logs)

    def warnings(self, text, since=0):
        with self.lock:
            return [m for name, level, m in self.logs[since:]
                    if name == self.logger_name and level == Log.WARN and text in m]


class Running:
    """A NaimaNode + Harness spinning in a background executor."""

    def __init__(self, context, checkpoint, namespace, overrides=None, info=True,
                 method="naima"):
        self.controlled = []
        self.method = method
        self.fail_load = None  # a message: the next model load raises it

        def factory(method, **kwargs):
            if self.fail_load:
                why, self.fail_load = self.fail_load, None
                raise RuntimeError(why)
            up = ControlledPredictor(load_predictor(method, **kwargs))
            self.controlled.append(up)
            return up

        params = {"method": method, "checkpoint": str(checkpoint), "scale": SCALE,
                  "device": "cpu",
                  "warmup_iterations": 1, "warmup_width": 64, "warmup_height": 48,
                  **reliable_inputs(namespace),
                  "diagnostic_updater.period": 0.2, "warn_throttle": 0.0,
                  "max_input_pixels": 64 * 48, "min_depth": 0.1, "max_depth": 10.0,
                  # no filled hole is published: the square holes these tests check (filling and
                  # the confidence topic: test_ros_any_depth.py)
                  "min_confidence": 1.0}
        params.update(overrides or {})
        params = {k: v for k, v in params.items() if v is not None}  # None: the node's default
        self.executor = MultiThreadedExecutor(num_threads=3, context=context)
        self.node = NaimaNode(namespace=namespace, context=context, predictor_factory=factory,
                              parameter_overrides=[Parameter(k, value=v)
                                                   for k, v in params.items()])
        self.executor.add_node(self.node)
        self.h = Harness(context, self.executor, namespace)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.h.connect(self.node)
        if info:
            self.h.send_info()
            wait_for(lambda: self.node._info is not None, what="camera_info at the node")

    @property
    def up(self) -> ControlledPredictor:
        return self.controlled[-1]

    def close(self):
        self.executor.shutdown(timeout_sec=5)
        self.node.destroy_node()
        self.h.node.destroy_node()


def checkpoint_for(request, method: str, scale: int = SCALE) -> str:
    """A tiny real checkpoint for the network; a baseline needs none (nor torch)."""
    if method != "naima":
        return "unused_x{scale}.safetensors"
    return str(request.getfixturevalue("tiny_checkpoint")(scale=scale))


@pytest.fixture(scope="module", params=METHODS)
def running(request, context):
    """The shared node, once per method."""
    r = Running(context, checkpoint_for(request, request.param), f"/naima_main_{request.param}",
                method=request.param)
    yield r
    r.close()


@pytest.fixture
def network(running):
    """The shared node, for tests about checkpoints and the network itself."""
    if running.method != "naima":
        pytest.skip("about the network's checkpoint: method naima only")
    return running


@pytest.fixture
def fresh(request, context):
    """Factory of a node of its own (for tests that change its state or need none yet)."""
    made = []

    def make(namespace, method="naima", **kw):
        checkpoint = kw.pop("checkpoint", None) or checkpoint_for(request, method)
        r = Running(context, checkpoint, f"{namespace}_{method}", method=method, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# ---------------------------------------------------------------------- outputs
def test_outputs_image_camera_info_and_cloud(running):
    h = running.h
    t = next_stamp_ns()
    depth = lr_depth_m()
    depth[2, 3] = 0.0  # one invalid LR cell -> an 8 x 8 NaN block in the output
    rgb = rgb_msg(t)
    dmsg = depth_msg(t, depth, frame="tof_optical_frame")
    h.send(rgb, dmsg)
    image, info, cloud = h.output(t)

    assert (image.encoding, image.height, image.width) == ("32FC1", 48, 64)
    # the output lies on the RGB camera's grid with its K: the RGB frame, the depth stamp
    assert image.header.frame_id == rgb.header.frame_id == "camera_color_optical_frame"
    assert (image.header.stamp.sec, image.header.stamp.nanosec) == (dmsg.header.stamp.sec,
                                                                    dmsg.header.stamp.nanosec)
    out, valid = decode_depth(image.data, image.encoding, image.height, image.width, image.step,
                              image.is_bigendian)
    assert not valid[16:24, 24:32].any()
    assert valid.sum() == 48 * 64 - 64
    assert ((out[valid] >= 0.1) & (out[valid] <= 10.0)).all()

    # CameraInfo: same stamp/frame as the image; the RGB is already 8 x depth, so K is unchanged
    assert info.header == image.header and (info.width, info.height) == (64, 48)
    np.testing.assert_allclose(info.k, K)
    np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], np.reshape(K, (3, 3)))
    assert (info.binning_x, info.binning_y, info.roi.width) == (0, 0, 0)

    # organised XYZRGB cloud in PCL layout, z = the published depth, NaN for invalid
    assert cloud.header == image.header
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (48, 64, 32, 64 * 32)
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 16, 7, 1)]
    assert not cloud.is_dense and not cloud.is_bigendian
    pts = np.frombuffer(cloud.data, dtype="<f4").reshape(48, 64, 8)
    np.testing.assert_array_equal(pts[..., 2], out)
    u = np.arange(64, dtype=np.float32)
    np.testing.assert_allclose(pts[..., 0][valid],
                               ((u[None, :] - K[2]) / K[0] * out)[valid], rtol=1e-5, atol=1e-6)
    sent_rgb = np.frombuffer(rgb.data, np.uint8).reshape(48, 64, 3).astype(np.uint32)
    packed = pts[..., 4].view(np.uint32)
    np.testing.assert_array_equal(packed, (sent_rgb[..., 0] << 16) | (sent_rgb[..., 1] << 8)
                                  | sent_rgb[..., 2])


def test_diagnostics_report_model_and_rates(running):
    h = running.h
    h.serve_good()
    wait_for(lambda: h.counter("frames_published") >= 1, what="frames_published")
    wait_for(lambda: h.diag.get("latency_p95_ms", "nan") != "nan", what="latency")
    with h.lock:
        d = dict(h.diag)
    assert d["ready"] == "True" and d["method"] == running.method and d["scale"] == "8"
    if running.method == "naima":
        assert d["device"] == "cpu" and d["precision"] == "fp32"
        assert d["preset"] == "light" and d["checkpoint"].endswith(".safetensors")
    else:  # a baseline: no network, no checkpoint
        assert d["device"] == "cpu" and d["checkpoint"] == "None" and d["preset"] == "None"
    for key in ("input_rate_hz", "output_rate_hz", "latency_p50_ms", "latency_p95_ms",
                "memory_rss_mb", "dropped_total", "pairs_received"):
        assert key in d
    assert float(d["latency_p95_ms"]) >= float(d["latency_p50_ms"]) > 0
    assert float(d["memory_rss_mb"]) > 0


def test_warmup_runs_before_ready(running):
    # warm-up happened in the constructor, i.e. before the subscriptions existed
    assert running.up.warmups == [(48, 64, 1)]


# ---------------------------------------------------------------------- bad-input matrix
BAD_INPUTS = {
    "rgb_encoding": ("unsupported_encoding",
                     lambda t: (rgb_msg(t, encoding="yuv422"), depth_msg(t))),
    "depth_encoding": ("unsupported_encoding",
                       lambda t: (rgb_msg(t), image_msg(t, np.zeros((LR_H, LR_W), np.uint8),
                                                        "8UC1"))),
    "size_mismatch": ("size_mismatch", lambda t: (rgb_msg(t, hh=40, ww=56), depth_msg(t))),
    "another_aspect_ratio": ("size_mismatch", lambda t: (rgb_msg(t, hh=36, ww=64), depth_msg(t))),
    "empty_rgb": ("empty_image", lambda t: (image_msg(t, np.zeros((0, 0, 3), np.uint8), "rgb8"),
                                            depth_msg(t))),
    "empty_depth": ("empty_image", lambda t: (rgb_msg(t), image_msg(t, np.zeros((0, 8), "<u2"),
                                                                    "16UC1"))),
    "all_invalid_depth": ("all_invalid_depth",
                          lambda t: (rgb_msg(t), depth_msg(t, np.zeros((LR_H, LR_W))))),
    "out_of_range_depth": ("all_invalid_depth",
                           lambda t: (rgb_msg(t), depth_msg(t, np.full((LR_H, LR_W), 50.0),
                                                            "32FC1"))),
    "all_nan_depth": ("all_invalid_depth",
                      lambda t: (rgb_msg(t), depth_msg(t, np.full((LR_H, LR_W), np.nan),
                                                       "32FC1"))),
    "zero_stamp": ("zero_stamp", lambda t: (rgb_msg(0), depth_msg(0))),
    "oversized": ("oversized", lambda t: (rgb_msg(t, hh=96, ww=128),
                                          depth_msg(t, lr_depth_m(12, 16)))),
    "step_too_small": ("malformed_image",
                       lambda t: (rgb_msg(t, step=64 * 3 - 1, data=bytes((64 * 3 - 1) * 48)),
                                  depth_msg(t))),
    "data_too_short": ("malformed_image",
                       lambda t: (rgb_msg(t, data=bytes(64 * 3 * 48 - 5)), depth_msg(t))),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_counted_warned_and_node_keeps_serving(running, case):
    reason, make = BAD_INPUTS[case]
    h = running.h
    t = next_stamp_ns()
    h.expect_drop(reason, lambda: h.send(*make(t)))
    h.serve_good()


def test_backwards_stamp_dropped_then_served(running):
    h = running.h
    t = next_stamp_ns()
    h.send(rgb_msg(t), depth_msg(t))
    h.output(t)
    back = t - 500_000_000  # half a second older than the last served pair
    h.expect_drop("stamp_backwards", lambda: h.send(rgb_msg(back), depth_msg(back)))
    h.serve_good()


def test_large_backwards_jump_resets_and_serves(running):
    """A jump back of more than 1 s (bag loop, restarted clock) restarts time instead of dropping
    everything after it; it is counted as an event and warned about."""
    h = running.h
    h.serve_good()
    before = h.counter("events.time_jump_reset")
    t = next_stamp_ns() - 30 * 1_000_000_000
    h.send(rgb_msg(t), depth_msg(t))
    h.output(t)
    wait_for(lambda: h.counter("events.time_jump_reset") > before, what="time_jump_reset")
    assert h.warnings("time jumped back")
    h.serve_good()


def test_nan_camera_info_dropped(running):
    h = running.h
    bad = camera_info(k=[np.nan] + K[1:])
    h.send_info(bad)
    wait_for(lambda: np.isnan(running.node._info.k[0]), what="bad camera_info at the node")
    t = next_stamp_ns()
    lines = h.expect_drop("invalid_camera_info", lambda: h.send(rgb_msg(t), depth_msg(t)))
    assert "NaN" in lines[0]
    h.send_info()
    wait_for(lambda: np.isfinite(running.node._info.k[0]), what="good camera_info at the node")
    h.serve_good()


def test_camera_info_of_another_size_dropped(running):
    h = running.h
    h.send_info(camera_info(ww=128, hh=96))
    wait_for(lambda: running.node._info.width == 128, what="camera_info at the node")
    t = next_stamp_ns()
    lines = h.expect_drop("invalid_camera_info", lambda: h.send(rgb_msg(t), depth_msg(t)))
    assert "128x96" in lines[0] and "64x48" in lines[0]
    h.send_info()
    wait_for(lambda: running.node._info.width == 64, what="camera_info at the node")
    h.serve_good()


def test_inference_exception_dropped_then_served(running):
    h = running.h
    running.up.fail_next = True
    t = next_stamp_ns()
    lines = h.expect_drop("inference_error", lambda: h.send(rgb_msg(t), depth_msg(t)))
    assert "injected inference failure" in lines[0]
    h.serve_good()


def test_step_padding_and_big_endian_decode_like_plain_data(running):
    """Padded rows and big-endian depth are valid input: the output equals the plain frame's."""
    h = running.h
    t = [next_stamp_ns() for _ in range(4)]
    pixels = rgb_pixels(48, 64)
    padded_rows = np.concatenate([pixels.reshape(48, -1), np.full((48, 7), 0xEE, np.uint8)], 1)
    padded_rgb = image_msg(t[1], pixels, "rgb8", step=64 * 3 + 7, data=padded_rows.tobytes())
    pairs = [(rgb_msg(t[0]), depth_msg(t[0], encoding="16UC1")),
             (padded_rgb, depth_msg(t[1], encoding="16UC1", bigendian=True)),
             (rgb_msg(t[2]), depth_msg(t[2], encoding="32FC1")),
             (rgb_msg(t[3]), depth_msg(t[3], encoding="32FC1", bigendian=True))]
    out = []
    for pair, stamp in zip(pairs, t):
        h.send(*pair)
        image = h.output(stamp)[0]
        out.append(decode_depth(image.data, image.encoding, image.height, image.width,
                                image.step, image.is_bigendian)[0])
    np.testing.assert_allclose(out[1], out[0], rtol=1e-5)
    np.testing.assert_allclose(out[3], out[2], rtol=1e-5)


def test_nan_and_inf_depth_pixels_are_invalid_not_fatal(running):
    h = running.h
    t = next_stamp_ns()
    depth = lr_depth_m()
    depth[0, 0], depth[5, 7] = np.nan, np.inf
    h.send(rgb_msg(t), depth_msg(t, depth, "32FC1"))
    image = h.output(t)[0]
    out, valid = decode_depth(image.data, "32FC1", 48, 64, image.step, image.is_bigendian)
    assert not valid[:8, :8].any() and not valid[40:, 56:].any()
    assert valid.sum() == 48 * 64 - 128 and np.isfinite(out[valid]).all()


@pytest.mark.parametrize("method", METHODS)
def test_missing_camera_info_dropped_until_it_arrives(fresh, method):
    r = fresh("/naima_noinfo", method=method, info=False)
    h = r.h
    t = next_stamp_ns()
    h.expect_drop("missing_camera_info", lambda: h.send(rgb_msg(t), depth_msg(t)))
    h.send_info()
    wait_for(lambda: r.node._info is not None, what="camera_info at the node")
    h.serve_good()


def test_publisher_restart_is_detected_and_serving_resumes(running):
    h = running.h
    before = h.counter("events.publisher_restart")
    # an unmatched half-pair queued before the restart must not pair with new data
    h.rgb_pub.publish(rgb_msg(next_stamp_ns()))
    h.destroy_publishers()
    wait_for(lambda: running.node._rgb_sub.get_publisher_count() == 0, what="publisher gone")
    lost = f"{h.ns}/rgb/image_rect_color has no publisher"  # the resolved topic name
    assert h.warnings(lost) or wait_for(lambda: h.warnings(lost),
                                                      what="publisher-lost warning")
    h.make_publishers()
    h.connect(running.node)
    wait_for(lambda: h.counter("events.publisher_restart") > before, what="publisher_restart")
    assert wait_for(lambda: h.warnings("publisher restarted"), what="restart warning")
    h.serve_good()


def test_burst_at_10x_serves_newest_and_counts_superseded(running):
    h = running.h
    running.up.delay_s = 1.0  # the model is now far slower than the burst
    try:
        before_superseded = h.counter("events.superseded")
        before_pairs = h.counter("pairs_received")
        stamps = [next_stamp_ns() for _ in range(20)]
        for t in stamps:
            h.send(rgb_msg(t), depth_msg(t))
            time.sleep(0.005)
        h.output(stamps[-1])  # the newest pair is always served
        # Inputs are best effort with a shallow history (sensor-data QoS): under load DDS itself may
        # discard part of a burst, so only "more than one pair arrived" is guaranteed.
        wait_for(lambda: h.counter("pairs_received") >= before_pairs + 2, what="burst pairs")
        wait_for(lambda: h.counter("events.superseded") > before_superseded,
                 what="superseded pairs")
        with h.lock:
            served = [t for t in stamps if divmod(t, 1_000_000_000) in h.images]
        assert len(served) < len(stamps)
        # normal with a camera faster than the model: an event, not a drop, not a warning
        assert not h.warnings("superseded") and h.counter("dropped.superseded") == 0
    finally:
        running.up.delay_s = 0.0
    h.serve_good()


def test_compressed_inputs_image_transport_style(fresh):
    """rgb_transport compressed + depth_transport compressedDepth: CompressedImage on
    <topic>/compressed and <topic>/compressedDepth, served like the decoded raw frames; a PNG
    header declaring too many pixels is an `oversized` drop before decoding, garbage is
    `malformed_image`."""
    from sensor_msgs.msg import CompressedImage

    from naima_ros.image_transport import encode_compressed_color, encode_compressed_depth

    ns = "/naima_compressed_bicubic"
    overrides = {"rgb_transport": "compressed", "depth_transport": "compressedDepth"}
    overrides.update({f"qos_overrides.{ns}/{topic}.subscription.reliability": "reliable"
                      for topic in ("rgb/image_rect_color/compressed",
                                    "depth/image_rect/compressedDepth")})
    r = fresh("/naima_compressed", method="bicubic", overrides=overrides)
    h = r.h
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    rgb_pub = h.node.create_publisher(CompressedImage, "rgb/image_rect_color/compressed", qos)
    depth_pub = h.node.create_publisher(CompressedImage, "depth/image_rect/compressedDepth", qos)
    wait_for(lambda: rgb_pub.get_subscription_count() and depth_pub.get_subscription_count(),
             what="the node's compressed subscriptions")

    def compressed(stamp, payload):
        msg = CompressedImage(format=payload.format, data=payload.data)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.header.frame_id = "camera_color_optical_frame"
        return msg

    def send(stamp, rgb_payload, depth_payload):
        rgb_pub.publish(compressed(stamp, rgb_payload))
        depth_pub.publish(compressed(stamp, depth_payload))

    pixels, depth = rgb_pixels(48, 64), lr_depth_m()
    t = next_stamp_ns()
    send(t, encode_compressed_color(pixels, "png"), encode_compressed_depth(depth, "16UC1"))
    image = h.output(t)[0]
    got = decode_depth(image.data, image.encoding, 48, 64, image.step, image.is_bigendian)[0]
    want = load_predictor("bicubic", scale=SCALE)(pixels, np.round(depth * 1000) / 1000)
    np.testing.assert_allclose(got, want, rtol=1e-5, equal_nan=True)
    big = encode_compressed_color(rgb_pixels(96, 128), "png")  # > max_input_pixels = 64 x 48
    t = next_stamp_ns()
    lines = h.expect_drop("oversized", lambda: send(t, big, encode_compressed_depth(depth)))
    assert "128x96" in lines[0] or "12288" in lines[0], lines[0]
    t = next_stamp_ns()
    garbage = big._replace(data=b"\x89PNG\r\n\x1a\n" + bytes(40))
    h.expect_drop("malformed_image", lambda: send(t, garbage, encode_compressed_depth(depth)))
    t = next_stamp_ns()
    send(t, encode_compressed_color(pixels, "jpeg"), encode_compressed_depth(depth, "32FC1"))
    assert h.output(t)[0].width == 64  # jpeg and 32FC1 inverse-depth payloads are served too


def test_register_depth_reprojects_onto_the_rgb_grid(fresh):
    """register_depth: a plane 2 m away seen by a depth camera 0.8 m to the left of the RGB
    camera (same intrinsics): on the RGB grid the depth is 2 m, shifted by fx t / z = 2 LR
    columns, and the 2 columns no depth point reaches are holes (8 x 8 NaN blocks at x8)."""
    r = fresh("/naima_register", method="bicubic",
              overrides={"register_depth": True, "depth_to_rgb_translation": [0.8, 0.0, 0.0]})
    h = r.h
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    depth_info_pub = h.node.create_publisher(CameraInfo, "depth/camera_info", qos)
    plane = np.full((LR_H, LR_W), 2.0, np.float32)
    t = next_stamp_ns()
    h.expect_drop("missing_camera_info", lambda: h.send(rgb_msg(t), depth_msg(t, plane)))
    wait_for(depth_info_pub.get_subscription_count, what="depth/camera_info subscription")
    lr_k = [K[0] / 8, 0.0, (K[2] + 0.5) / 8 - 0.5, 0.0, K[4] / 8, (K[5] + 0.5) / 8 - 0.5,
            0.0, 0.0, 1.0]  # the RGB camera's K at 8 x 6
    depth_info_pub.publish(camera_info(ww=LR_W, hh=LR_H, k=lr_k))
    wait_for(lambda: r.node._depth_info is not None, what="depth camera_info at the node")
    t = next_stamp_ns()
    h.send(rgb_msg(t), depth_msg(t, plane, frame="tof_optical_frame"))
    image = h.output(t)[0]
    assert image.header.frame_id == "camera_color_optical_frame"
    out, valid = decode_depth(image.data, image.encoding, 48, 64, image.step, image.is_bigendian)
    assert not valid[:, :16].any()  # LR columns 0 and 1: nothing lands there
    assert valid[:, 16:].all()
    np.testing.assert_allclose(out[:, 16:], 2.0, rtol=1e-5)


def test_unpaired_or_dropped_inputs_warn_with_the_reason_then_ok(fresh):
    """Inputs arrive but nothing is served: a WARN status that says why (and a log line), until
    pairs are served again."""
    r = fresh("/naima_stall", method="bicubic")
    h = r.h
    h.serve_good()
    wait_for(lambda: h.status == (0, "running"), what="OK running")

    def send_while(make, until):
        def loop():
            while not until.is_set():
                t = next_stamp_ns()
                h.send(*make(t))
                time.sleep(0.1)
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    for make, why in (
            # depth stamped 25 ms after RGB, slop 20 ms: the synchronizer pairs nothing
            (lambda t: (rgb_msg(t), depth_msg(t + 25_000_000)),
             "no RGB/depth pair within slop 0.02 s: depth stamps trail RGB by 25 ms"),
            (lambda t: (rgb_msg(t + 30_000_000), depth_msg(t)),
             "depth stamps lead RGB by 30 ms"),
            # pairs, but every one is dropped
            (lambda t: (rgb_msg(t, hh=40, ww=56), depth_msg(t)), "pairs are dropped "
             "[size_mismatch]: rgb 56x40 and depth 8x6 have different aspect ratios")):
        done = threading.Event()
        thread = send_while(make, done)
        try:
            wait_for(lambda: h.status and h.status[0] == 1 and why in h.status[1],
                     what=f"WARN '{why}'")
            assert h.warnings(why)
        finally:
            done.set()
            thread.join()
        h.serve_good()
        wait_for(lambda: h.status == (0, "running"), what="OK again once pairs are served")


def test_startup_status_resolved_topics_and_error_when_the_model_fails(context):
    """A WARN "loading model" status while the model loads, the ready line naming the remapped
    topics, and an ERROR status when the model cannot be loaded."""
    listener = rclpy.create_node("startup_listener", context=context)
    statuses, logs = [], []

    def diagnostics(msg):
        statuses.extend((s.name, int.from_bytes(s.level, "little"), s.message)
                        for s in msg.status if s.name.startswith("naima_startup/naima: depth"))

    listener.create_subscription(DiagnosticArray, "/diagnostics", diagnostics, 50)
    listener.create_subscription(
        Log, "/rosout", lambda m: logs.append(m.msg) if m.name == "naima_startup.naima" else None,
        QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.TRANSIENT_LOCAL))
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(listener)
    threading.Thread(target=executor.spin, daemon=True).start()
    release, failure = threading.Event(), {}

    def factory(method, **kwargs):
        release.wait(TIMEOUT)  # the load lasts as long as the test wants
        if failure:
            raise RuntimeError(failure["why"])
        return load_predictor(method, **kwargs)

    def start(**kw):
        made = {}

        def construct():
            try:
                made["node"] = NaimaNode(
                    namespace="/naima_startup", context=context, predictor_factory=factory,
                    parameter_overrides=[Parameter("method", value="bicubic"),
                                         Parameter("diagnostic_updater.period", value=0.1),
                                         Parameter("warmup_iterations", value=0)], **kw)
            except ModelLoadError as exc:
                made["error"] = exc
        thread = threading.Thread(target=construct, daemon=True)
        thread.start()
        return thread, made

    try:
        thread, made = start(cli_args=["--ros-args", "-r",
                                       "rgb/image_rect_color:=/cam/color/image_raw"])
        wait_for(lambda: any(level == 1 and "loading bicubic x8" in message
                             for _, level, message in statuses), what="WARN loading status")
        release.set()
        thread.join(TIMEOUT)
        made["node"].destroy_node()
        ready = wait_for(lambda: [m for m in logs if m.startswith("ready:")], what="ready line")
        assert "in: /cam/color/image_raw, /naima_startup/depth/image_rect" in ready[0]
        assert "out: /naima_startup/depth_registered/image_rect" in ready[0]

        release.clear()
        failure["why"] = "weights are corrupt"
        statuses.clear()
        thread, made = start()
        wait_for(lambda: any(level == 1 for _, level, _ in statuses), what="WARN loading")
        release.set()
        thread.join(TIMEOUT)
        assert "weights are corrupt" in str(made["error"])
        wait_for(lambda: any(level == 2 and "model failed to load" in message
                             and "weights are corrupt" in message
                             for _, level, message in statuses), what="ERROR status")
    finally:
        release.set()
        executor.shutdown(timeout_sec=5)
        listener.destroy_node()


def test_ctrl_c_mid_inference_shuts_down_cleanly(context):
    """SIGINT while the model runs: exit status 0 and nothing on stderr about the publishers."""
    import select
    import signal
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys, time
        import naima_ros.model_slot as model_slot
        from naima_ros.ros import node

        load = model_slot.load_predictor

        def slow(method, **kwargs):  # a baseline that takes 2 s per frame
            predictor = load(method, **kwargs)
            class Slow:
                scale = predictor.scale
                def describe(self):
                    return predictor.describe()
                def warmup(self, h, w):
                    pass
                def predict(self, rgb, depth, min_confidence=None):
                    print("inference started", flush=True)
                    time.sleep(2.0)
                    return predictor.predict(rgb, depth, min_confidence)
            return Slow()

        model_slot.load_predictor = slow
        sys.exit(node.main(["naima_node", "--ros-args", "-r", "__ns:=/naima_sigint",
                            "-p", "method:=bicubic", "-p", "warmup_iterations:=0"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    harness = rclpy.create_node("sigint_harness", namespace="/naima_sigint", context=context)
    try:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        rgb_pub = harness.create_publisher(Image, "rgb/image_rect_color", qos)
        depth_pub = harness.create_publisher(Image, "depth/image_rect", qos)
        info_pub = harness.create_publisher(CameraInfo, "rgb/camera_info", qos)
        wait_for(lambda: min(p.get_subscription_count() for p in (rgb_pub, depth_pub,
                                                                   info_pub)) >= 1,
                 what="the node's subscriptions")
        for _ in range(20):  # until a pair reaches the model
            info_pub.publish(camera_info())
            time.sleep(0.2)
            t = next_stamp_ns()
            rgb_pub.publish(rgb_msg(t))
            depth_pub.publish(depth_msg(t))
            if select.select([proc.stdout], [], [], 2.0)[0]:
                break
        line = proc.stdout.readline()
        assert line.strip() == "inference started", (line, proc.poll())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
        harness.destroy_node()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "RCLError" not in err and "context is invalid" not in err, err


@pytest.mark.parametrize("shut_down", [True, False])
def test_rcl_error_after_ctrl_c_is_a_clean_exit_and_otherwise_raised(shut_down):
    """rclpy's executor can raise RCLError when Ctrl-C shuts the context down between its ok() check and its wait
    set (seen on Jazzy): exit 0. The same error with the context still valid is a real failure: non-zero."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.impl.implementation_singleton import rclpy_implementation
        from naima_ros.ros import node

        def spin(self):  # the race, made deterministic
            if {shut_down}:
                rclpy.shutdown()
            raise rclpy_implementation.RCLError("failed to initialize wait set: the given context is not valid")

        SingleThreadedExecutor.spin = spin
        sys.exit(node.main(["naima_node", "--ros-args", "-r", "__ns:=/naima_rcl_error",
                            "-p", "method:=bicubic", "-p", "warmup_iterations:=0"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT,
                          env=dict(os.environ))
    if shut_down:
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    else:
        assert proc.returncode != 0 and "RCLError" in proc.stderr, proc.stderr


def test_warnings_are_throttled_but_every_drop_counted(running):
    h = running.h
    running.node.set_parameters([Parameter("warn_throttle", value=3600.0)])
    try:
        before = h.counter("dropped.zero_stamp")
        with h.lock:
            n_logs = len(h.logs)
        for _ in range(3):
            h.send(rgb_msg(0), depth_msg(0))
            wait_for(lambda n=h.counter("dropped.zero_stamp"): h.counter("dropped.zero_stamp")
                     > n, what="zero_stamp drop")
        h.serve_good()
        assert h.counter("dropped.zero_stamp") >= before + 3
        assert len(h.warnings("[zero_stamp]", since=n_logs)) <= 1
    finally:
        running.node.set_parameters([Parameter("warn_throttle", value=0.0)])


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize("name,value,reason", [
    ("scale", 12, "scale must be one of"),
    ("scale", 5, ""),  # outside the declared range step: rejected by rclpy's range check
    ("device", "gpu0", "device must be"),
    ("precision", "fp8", "precision must be one of"),
    ("output_encoding", "8UC1", "output_encoding must be one of"),
    ("min_depth", 20.0, "min_depth (20.0) must be below max_depth"),
    ("points_stride", 0, ""),
    ("queue_size", 10, ""),  # read-only after start-up
    ("method", "nearest", "method must be one of"),
])
def test_invalid_parameters_rejected_with_reason(running, name, value, reason):
    before = running.node.get_parameter(name).value
    result = running.node.set_parameters([Parameter(name, value=value)])[0]
    assert not result.successful
    assert reason in result.reason and result.reason
    assert running.node.get_parameter(name).value == before


@pytest.mark.parametrize("name,value,reason", [
    ("checkpoint", "/nonexistent/model.safetensors", "not found"),
    ("checkpoint", "x{bogus}.safetensors", "only placeholder allowed is {scale}"),
    ("scale", 4, "checkpoint is x8, expected x4"),
])
def test_invalid_checkpoint_parameters_rejected_with_reason(network, name, value, reason):
    test_invalid_parameters_rejected_with_reason(network, name, value, reason)


def test_corrupt_checkpoint_rejected(network, tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x80\x04not a safetensors file at all")
    result = network.node.set_parameters([Parameter("checkpoint", value=str(bad))])[0]
    assert not result.successful and "safetensors" in result.reason


def test_set_parameters_service_over_dds(running, context):
    """A remote `ros2 param set`: rejection with a reason, then a valid change."""
    client = running.h.node.create_client(SetParameters, f"{running.h.ns}/naima/set_parameters")
    try:
        assert client.wait_for_service(timeout_sec=TIMEOUT)

        def call(param):
            future = client.call_async(SetParameters.Request(parameters=[param.to_parameter_msg()]))
            wait_for(future.done, what="set_parameters response")
            return future.result().results[0]

        bad = call(Parameter("output_encoding", value="rgb8"))
        assert not bad.successful and "output_encoding must be one of" in bad.reason
        ok = call(Parameter("points_stride", value=2))
        assert ok.successful
        _, _, cloud = running.h.serve_good()
        assert (cloud.height, cloud.width) == (24, 32)
    finally:
        running.node.set_parameters([Parameter("points_stride", value=1)])
        running.h.node.destroy_client(client)


def test_qos_defaults_and_per_topic_overrides(fresh):
    """Inputs sensor-data style and outputs reliable by default; every publisher and subscription
    has read-only qos_overrides parameters, and an override takes effect on the wire."""
    ns = "/naima_qos_bicubic"
    points = f"qos_overrides.{ns}/depth_registered/points.publisher.reliability"
    rgb = f"qos_overrides.{ns}/rgb/image_rect_color.subscription.reliability"
    defaults = {name: None for name in reliable_inputs(ns)}
    r = fresh("/naima_qos", method="bicubic",
              overrides={**defaults, rgb: "reliable", points: "best_effort"})
    node, h = r.node, r.h
    entities = {name.rsplit(".", 1)[0] for name in node._parameters
                if name.startswith("qos_overrides.")}
    assert entities == {f"qos_overrides.{topic}" for topic in (
        f"{ns}/rgb/image_rect_color.subscription", f"{ns}/depth/image_rect.subscription",
        f"{ns}/rgb/camera_info.subscription", f"{ns}/depth_registered/image_rect.publisher",
        f"{ns}/depth_registered/confidence.publisher",
        f"{ns}/depth_registered/camera_info.publisher", f"{ns}/depth_registered/points.publisher",
        "/diagnostics.publisher")}
    assert {name.rsplit(".", 1)[1] for name in node._parameters
            if name.startswith(f"qos_overrides.{ns}/depth/image_rect.")} >= {
        "history", "depth", "reliability"}
    assert not node.set_parameters([Parameter(points, value="reliable")])[0].successful

    def reliability(info_by_topic, topic):
        (info,) = [i for i in info_by_topic(f"{ns}/{topic}") if i.node_name == "naima"]
        return info.qos_profile.reliability

    graph = h.node
    assert reliability(graph.get_subscriptions_info_by_topic, "rgb/image_rect_color") == \
        ReliabilityPolicy.RELIABLE  # overridden
    assert reliability(graph.get_subscriptions_info_by_topic, "depth/image_rect") == \
        ReliabilityPolicy.BEST_EFFORT
    assert reliability(graph.get_publishers_info_by_topic, "depth_registered/image_rect") == \
        ReliabilityPolicy.RELIABLE
    assert reliability(graph.get_publishers_info_by_topic, "depth_registered/points") == \
        ReliabilityPolicy.BEST_EFFORT  # overridden; the other outputs and inputs keep theirs
    # (the harness's reliable cloud subscription does not match a best-effort cloud)
    t = next_stamp_ns()
    h.send(rgb_msg(t), depth_msg(t))
    h.output(t, points=False)


def test_runtime_output_parameters(running):
    h, node = running.h, running.node
    try:
        node.set_parameters([Parameter("output_encoding", value="16UC1"),
                             Parameter("points_rgb", value=False)])
        image, _, cloud = h.serve_good()
        assert image.encoding == "16UC1" and image.step == 128
        mm = np.frombuffer(image.data, np.uint16)
        assert mm.max() > 0 and mm.dtype == np.uint16
        assert cloud.point_step == 16 and [f.name for f in cloud.fields] == ["x", "y", "z"]
        node.set_parameters([Parameter("publish_points", value=False)])
        t = next_stamp_ns()
        h.send(rgb_msg(t), depth_msg(t))
        h.output(t, points=False)
        time.sleep(0.5)
        with h.lock:
            assert divmod(t, 1_000_000_000) not in h.clouds
    finally:
        node.set_parameters([Parameter("output_encoding", value="32FC1"),
                             Parameter("points_rgb", value=True),
                             Parameter("publish_points", value=True)])


@pytest.mark.parametrize("method", METHODS)
def test_resize_rgb_to_multiple(fresh, method):
    """RGB 66 x 50 with depth 8 x 6 at x8: served at the RGB's size with its own CameraInfo by
    default (the depth resampled onto the RGB's grid), resized to 64 x 48 when enabled, with the
    CameraInfo rescaled to the output (earlier versions)."""
    r = fresh("/naima_resize", method=method, overrides={"max_input_pixels": 100_000})
    h = r.h
    info = camera_info(ww=66, hh=50, k=[40.0, 0, 33.0, 0, 41.0, 25.0, 0, 0, 1])
    h.send_info(info)
    wait_for(lambda: r.node._info.width == 66, what="camera_info at the node")
    t = next_stamp_ns()
    h.send(rgb_msg(t, hh=50, ww=66), depth_msg(t))
    image, out_info, cloud = h.output(t)
    assert (image.width, image.height) == (out_info.width, out_info.height) == (66, 50)
    np.testing.assert_allclose(out_info.k, info.k)
    assert r.node.set_parameters([Parameter("resize_rgb_to_multiple", value=True)])[0].successful
    t = next_stamp_ns()
    h.send(rgb_msg(t, hh=50, ww=66), depth_msg(t))
    image, out_info, cloud = h.output(t)
    assert (image.width, image.height) == (64, 48) and (out_info.width, out_info.height) == (64,
                                                                                             48)
    sx, sy = 64 / 66, 48 / 50
    np.testing.assert_allclose(out_info.k[0], 40.0 * sx)
    np.testing.assert_allclose(out_info.k[2], (33.0 + 0.5) * sx - 0.5)
    np.testing.assert_allclose(out_info.k[4], 41.0 * sy)
    np.testing.assert_allclose(out_info.k[5], (25.0 + 0.5) * sy - 0.5)
    assert (cloud.width, cloud.height) == (64, 48)
    # a different aspect ratio cannot be registered: still a drop
    h.send_info(camera_info(ww=96, hh=48))
    wait_for(lambda: r.node._info.width == 96, what="camera_info at the node")
    t = next_stamp_ns()
    lines = h.expect_drop("size_mismatch", lambda: h.send(rgb_msg(t, hh=48, ww=96),
                                                          depth_msg(t)))
    assert "aspect" in lines[0]


# ---------------------------------------------------------------------- model swaps
@needs_torch
def test_scale_and_checkpoint_swap_in_background(fresh, tiny_checkpoint):
    r = fresh("/naima_swap")
    h, node = r.h, r.node
    ckpt4 = tiny_checkpoint(scale=4)
    result = node.set_parameters_atomically([Parameter("scale", value=4),
                                             Parameter("checkpoint", value=str(ckpt4))])
    assert result.successful, result.reason
    wait_for(lambda: h.diag.get("scale") == "4", what="x4 model in diagnostics")
    assert h.counter("events.model_swap") == 1
    assert r.up.warmups == [(48, 64, 1)]  # the new model was warmed up before the swap
    # depth 16 x 12 with rgb 64 x 48 is x4
    h.send_info()
    t = next_stamp_ns()
    h.send(rgb_msg(t), depth_msg(t, lr_depth_m(12, 16)))
    image = h.output(t)[0]
    assert (image.width, image.height) == (64, 48)
    t = next_stamp_ns()  # x8 frames on the x4 model: served at the RGB's size (the ratio is the frames')
    h.send(rgb_msg(t), depth_msg(t))
    image = h.output(t)[0]
    assert (image.width, image.height) == (64, 48)
    t = next_stamp_ns()  # another aspect ratio: a drop naming the sizes and the model's scale
    lines = h.expect_drop("size_mismatch", lambda: h.send(rgb_msg(t, hh=40, ww=64), depth_msg(t)))
    assert "model scale 4" in lines[0] and "8x6" in lines[0] and "64x40" in lines[0]


@needs_torch
def test_checkpoint_tensors_checked_before_success(network, tiny_checkpoint, tmp_path):
    """A file whose metadata is fine but whose tensors do not fit its model (a missing tensor,
    a wrong shape) is refused by `set_parameters` itself, from the safetensors header."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    ckpt8 = str(tiny_checkpoint(scale=8))
    with safe_open(ckpt8, framework="pt") as f:
        metadata = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    name = sorted(state)[-1]
    missing, reshaped = dict(state), dict(state)
    del missing[name]
    reshaped[name] = torch.zeros(tuple(state[name].shape) + (2,))
    for label, tensors, why in (("missing", missing, "1 missing"),
                                ("reshaped", reshaped, "tensor shapes do not match")):
        bad = tmp_path / f"{label}_x8.safetensors"
        save_file(tensors, str(bad), metadata=metadata)
        result = network.node.set_parameters([Parameter("checkpoint", value=str(bad))])[0]
        assert not result.successful and why in result.reason and name in result.reason, \
            result.reason
        assert network.node.get_parameter("checkpoint").value == ckpt8
    ok = tmp_path / "same_x8.safetensors"
    save_file(state, str(ok), metadata=metadata)  # the same tensors under another name: fine
    assert network.node.set_parameters([Parameter("checkpoint", value=str(ok))])[0].successful
    wait_for(lambda: network.h.diag.get("checkpoint") == str(ok), what="the new file serving")
    assert network.node.set_parameters([Parameter("checkpoint", value=ckpt8)])[0].successful
    wait_for(lambda: network.h.diag.get("checkpoint") == ckpt8, what="the old file back")


def test_a_scale_other_than_the_frames_ratio_is_served_at_the_rgb_size(fresh):
    """`scale` 4 while x8 frames arrive: served at the RGB's size (the method runs at the frames'
    ratio); with resize_rgb_to_multiple the RGB is resized to 4 x the depth, as earlier versions did."""
    r = fresh("/naima_scale", method="bicubic")
    node = r.node
    r.h.serve_good()  # rgb 64x48, depth 8x6 arrive
    assert node.set_parameters([Parameter("scale", value=4)])[0].successful
    wait_for(lambda: r.h.diag.get("scale") == "4", what="x4 serving")
    t = next_stamp_ns()
    r.h.send(rgb_msg(t), depth_msg(t))
    assert (r.h.output(t)[0].width, r.h.output(t)[0].height) == (64, 48)
    assert node.set_parameters([Parameter("resize_rgb_to_multiple", value=True)])[0].successful
    t = next_stamp_ns()
    r.h.send(rgb_msg(t), depth_msg(t))  # 64x48 resized to 4 x 8x6 = 32x24
    image = r.h.output(t)[0]
    assert (image.width, image.height) == (32, 24)


@needs_torch
def test_failed_swap_keeps_old_model_and_reverts(fresh, tiny_checkpoint, tmp_path):
    """A checkpoint that passes every check and then fails to load (here: an injected failure of
    the load itself): the old model keeps serving and the parameter goes back."""
    import shutil

    ckpt8 = str(tiny_checkpoint(scale=8))
    r = fresh("/naima_badswap")
    h, node = r.h, r.node
    wrong = tmp_path / "fails_to_load_x8.safetensors"
    shutil.copy(ckpt8, wrong)
    r.fail_load = "CUDA out of memory (injected)"
    result = node.set_parameters([Parameter("checkpoint", value=str(wrong))])[0]
    assert result.successful  # the checks pass; the load happens in the background
    wait_for(lambda: h.counter("events.model_swap_failed") >= 1, what="model_swap_failed")
    wait_for(lambda: node.get_parameter("checkpoint").value == ckpt8,
             what="checkpoint parameter reverted")
    wait_for(lambda: h.diag.get("model_swap", "").startswith("failed"), what="swap state")
    assert "out of memory (injected)" in h.diag["model_swap"]
    assert h.diag["checkpoint"] == ckpt8
    wait_for(lambda: h.status[0] == 1 and "model swap failed" in h.status[1], what="WARN")
    h.serve_good()  # still the old x8 model


@needs_torch
def test_method_switch_network_to_baseline_and_back(fresh):
    """`method` swaps like a model: bicubic serves while the network is away, then it returns."""
    r = fresh("/naima_method")
    h, node = r.h, r.node
    assert node.set_parameters([Parameter("method", value="bicubic")])[0].successful
    wait_for(lambda: h.diag.get("method") == "bicubic", what="bicubic in diagnostics")
    assert h.diag["checkpoint"] == "None"
    t = next_stamp_ns()
    rgb, dmsg = rgb_msg(t), depth_msg(t)
    h.send(rgb, dmsg)
    image = h.output(t)[0]
    got = decode_depth(image.data, image.encoding, 48, 64, image.step, image.is_bigendian)[0]
    # what the baseline itself gives for the decoded inputs
    want = load_predictor("bicubic", scale=SCALE)(rgb_pixels(48, 64), lr_depth_m())
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
    assert node.set_parameters([Parameter("method", value="naima")])[0].successful
    wait_for(lambda: h.diag.get("method") == "naima", what="naima back in diagnostics")
    assert h.diag["preset"] == "light" and h.counter("events.model_swap") == 2
    h.serve_good()


def test_startup_fails_clearly_without_checkpoint(context):
    with pytest.raises(ModelLoadError, match=r"not found; looked in: .*nowhere_x8"):
        NaimaNode(namespace="/naima_fail", context=context,
                  parameter_overrides=[Parameter("checkpoint", value="nowhere_x{scale}.st")])


# ---------------------------------------------------------------------- Humble's rclpy
def test_humble_api_shape_keeps_publisher_tracking_and_parameter_side_effects(
        fresh, monkeypatch):
    """rclpy without the matched event and the post-set callback (Humble): publisher restarts are
    found by polling and accepted parameters still take effect."""
    import rclpy.node

    from naima_ros.ros import compat

    class HumbleSubscriptionEventCallbacks:  # rclpy.qos_event's signature on Humble
        def __init__(self, *, deadline=None, incompatible_qos=None, liveliness=None,
                     message_lost=None, use_default_callbacks=True):
            pass

    monkeypatch.setattr(compat, "subscription_event_callbacks_class",
                        lambda: HumbleSubscriptionEventCallbacks)
    monkeypatch.delattr(rclpy.node.Node, "add_post_set_parameters_callback")
    r = fresh("/naima_humble", method="bicubic")
    h, node = r.h, r.node
    assert node._publisher_watch is not None and not node._native_post_set
    h.serve_good()
    # post-set side effects through the on-set path: outputs, throttle, a model swap
    assert node.set_parameters([Parameter("points_stride", value=2),
                                Parameter("warn_throttle", value=0.5)])[0].successful
    assert node._throttle.period_s == 0.5
    assert (h.serve_good()[2].width, node.get_parameter("points_stride").value) == (32, 2)
    assert node.set_parameters([Parameter("method", value="guided_filter")])[0].successful
    wait_for(lambda: h.diag.get("method") == "guided_filter", what="guided_filter serving")
    rejected = node.set_parameters([Parameter("min_depth", value=50.0)])[0]
    assert not rejected.successful and node._values["min_depth"] == 0.1
    # publisher restart, seen by the diagnostics timer's polling
    before = h.counter("events.publisher_restart")
    h.destroy_publishers()
    assert wait_for(lambda: h.warnings("has no publisher"), what="publisher-lost warning")
    h.make_publishers()
    h.connect(node)
    wait_for(lambda: h.counter("events.publisher_restart") > before, what="publisher_restart")
    h.serve_good()


def test_a_baseline_node_never_imports_torch():
    """method:=bicubic: the node starts, warms up and is destroyed without torch being imported."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys
        import rclpy
        from rclpy.parameter import Parameter
        from naima_ros.ros.node import NaimaNode
        rclpy.init()
        node = NaimaNode(parameter_overrides=[Parameter("method", value="bicubic"),
                                              Parameter("warmup_width", value=64),
                                              Parameter("warmup_height", value=48)])
        ready = node._slot.model.summary()
        node.destroy_node()
        rclpy.shutdown()
        print(ready, "| torch imported:", "torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=TIMEOUT, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "method bicubic (x8, no network) | torch imported: False"
