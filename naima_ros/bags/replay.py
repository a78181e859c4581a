"""`naima-bag replay`: play a bag to the node over real DDS and record what it publishes.

The only module of `naima_ros.bags` that needs rclpy (imported when a replay starts).

1. Start the node as its own process (`python -m naima_ros.ros.node --ros-args ...`, i.e.
   `naima_node`) with the checkpoint, the bag's frame size for the warm-up and remaps from the
   node's relative topic names to the bag's; or use a node that is already running (`--no-node`).
2. Wait until the node subscribes to every input topic and publishes its output image.
3. Publish every message of the bag, as recorded (CDR bytes, no re-serialisation; a ROS 1 bag's
   converted to ROS 2 types), at the recorded log-time spacing divided by `rate`, with the QoS
   its recording offered (`naima_ros.bags.qos`: a latched /tf_static stays transient-local), and
   write it to the output bag with the wall time of its publication as log time. /clock carries
   the bag's time as `ros2 bag play --clock` does (each message's log time as it is published,
   and the time in between at `CLOCK_HZ`), so nodes with use_sim_time run on the recording's
   clock.
4. Record the node's outputs and /diagnostics with their receive wall time as log time, as
   `ros2 bag record` does, so `eval` reads latency as output log time - input log time.
5. After the last message, wait until no output has arrived for the settle time, then stop the
   node with SIGINT (SIGTERM, then SIGKILL, if it does not exit) and finalise the bag. The bag is
   finalised whatever happens, Ctrl-C included.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from naima_ros.bags.io import (CAMERA_INFO, COMPRESSED_IMAGE, DIAGNOSTIC_ARRAY, IMAGE, POINT_CLOUD,
                               BagError, BagReader, BagWriter, Topics)
from naima_ros.bags.qos import playback_qos
from naima_ros.bags.run import bag_scale, default_checkpoint
from naima_ros.contract import DEFAULTS, TOPICS
from naima_ros.params_file import node_parameters
from naima_ros.resources import FASTDDS_PROFILE_ENV, large_data_profile, resolve_checkpoint

__all__ = ["ReplaySummary", "node_command", "replay_bag"]

STOP_TIMEOUT_S = 15.0  # SIGINT -> exit; then SIGTERM, then SIGKILL
CLOCK_HZ = 40.0  # /clock between two messages: ros2 bag play --clock's default rate
CLOCK_TOPIC = "/clock"


@dataclass
class ReplaySummary:
    published: int = 0
    recorded: collections.Counter = field(default_factory=collections.Counter)
    wall_s: float = 0.0
    node_returncode: int | None = None
    node_log: str = ""
    checkpoint: str = ""

    def line(self) -> str:
        rec = ", ".join(f"{t} {n}" for t, n in sorted(self.recorded.items())) or "nothing"
        return (f"published {self.published} messages in {self.wall_s:.1f} s; recorded {rec}; "
                f"node exit code {self.node_returncode}")


def _ros_type(msgtype: str):
    """The rclpy message class of 'pkg/msg/Name'."""
    from naima_ros.ros.topics import message_class

    try:
        return message_class(msgtype)
    except (ImportError, AttributeError) as exc:
        raise BagError(f"message type {msgtype} is not installed for rclpy ({exc})") from exc


def node_command(checkpoint: Path | None, scale: int, topics: Topics, *,
                 method: str = DEFAULTS["method"], node_name: str = "naima",
                 warmup_size: tuple[int, int] | None = None, params: dict | None = None,
                 params_file: str | None = None) -> list[str]:
    """The `naima_node` command line for a replay (`python -m naima_ros.ros.node`); `checkpoint`
    None for a baseline method."""
    cmd = [sys.executable, "-m", "naima_ros.ros.node", "--ros-args", "-r", f"__node:={node_name}"]
    if params_file:
        cmd += ["--params-file", str(params_file)]
    values = {"method": method, "scale": scale}
    if checkpoint is not None:
        values["checkpoint"] = str(checkpoint)
    if warmup_size:
        values.update(warmup_width=warmup_size[0], warmup_height=warmup_size[1])
    values.update(params or {})
    for key, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cmd += ["-p", f"{key}:={text}"]
    # the node's names onto the bag's (every contract topic the bag has a role for)
    for role, topic in TOPICS.items():
        if hasattr(topics, role):
            cmd += ["-r", f"{topic.name}:={getattr(topics, role)}"]
    return cmd


def _parse_param(value: str):
    """A `-p key:=value` value as the node would read it (bool, int, float or string)."""
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _first_size(reader: BagReader, topic: str) -> tuple[int, int] | None:
    for _, _, msg in reader.messages([topic]):
        reader.read_count = 0
        if not hasattr(msg, "width"):  # a CompressedImage: the node warms up at its default
            return None
        return int(msg.width), int(msg.height)
    return None


class _Node:
    """The node under test as a child process, with its output in a log file."""

    def __init__(self, cmd: list[str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> int | None:
        """SIGINT (a clean rclpy shutdown), then SIGTERM, then SIGKILL; returns the exit code."""
        try:
            for sig, wait_s in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGTERM, 5.0),
                                (signal.SIGKILL, 5.0)):
                if self.proc.poll() is not None:
                    break
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(wait_s)
                except subprocess.TimeoutExpired:
                    continue
            return self.proc.poll()
        finally:
            self._log.close()


class _DdsSession:
    """Our side of the DDS graph: publishers of the bag's topics, raw recorders of the node's.

    Recording goes into a `BagWriter` under a lock (the executor thread records, the caller's
    thread publishes); after `stop_recording` late callbacks are ignored, so nothing is written
    into a bag that is being closed.
    """

    def __init__(self, topics: Topics, play: dict[str, object], record: dict[str, str], log,
                 clock: bool = True):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        self.topics = topics
        self.lock = threading.Lock()
        self.writer: BagWriter | None = None
        self.recorded: collections.Counter = collections.Counter()
        self.last_event = time.monotonic()
        self.longest_output_gap = 0.0  # ~ the model time once the node is saturated
        self._last_output: float | None = None
        self._rclpy = rclpy
        self.context = Context()
        rclpy.init(args=["naima-bag"], context=self.context)
        self.node = rclpy.create_node("naima_bag_replay", context=self.context)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                         reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {}
        for topic, conn in play.items():  # each with the QoS its recording offered
            offer = playback_qos(conn)
            profile = QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=offer.depth,
                reliability=ReliabilityPolicy.RELIABLE if offer.reliable
                else ReliabilityPolicy.BEST_EFFORT,
                durability=DurabilityPolicy.TRANSIENT_LOCAL if offer.transient_local
                else DurabilityPolicy.VOLATILE)
            try:
                self.pubs[topic] = self.node.create_publisher(_ros_type(conn.msgtype), topic,
                                                              profile)
            except BagError as exc:
                log(f"note: {topic} is copied but not published: {exc}")
            else:
                if offer.transient_local or not offer.reliable:
                    log(f"note: {topic} is replayed {offer.describe()}, as recorded")
        self.clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self._clock = Clock()
            # reliable, keep last 1: matches rclpy's best-effort time source and reliable readers
            self.clock_pub = self.node.create_publisher(
                Clock, CLOCK_TOPIC, QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        for topic, msgtype in record.items():
            self.node.create_subscription(_ros_type(msgtype), topic,
                                          self._recorder(topic, msgtype), qos, raw=True)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def _recorder(self, topic: str, msgtype: str):
        def callback(raw: bytes) -> None:
            now_ns, now = time.time_ns(), time.monotonic()
            with self.lock:
                if self.writer is None:
                    return
                self.writer.write_raw(topic, msgtype, now_ns, raw)
                self.recorded[topic] += 1
                if topic == self.topics.out_image:
                    self.last_event = now
                    if self._last_output is not None:
                        self.longest_output_gap = max(self.longest_output_gap,
                                                      now - self._last_output)
                    self._last_output = now
        return callback

    def start_recording(self, writer: BagWriter, record: dict[str, str]) -> None:
        with self.lock:
            for topic, msgtype in record.items():  # listed even if the node publishes nothing
                writer.declare(topic, msgtype)
            self.writer = writer

    def stop_recording(self) -> None:
        with self.lock:
            self.writer = None

    def publish_clock(self, bag_ns: int) -> None:
        """/clock = `bag_ns` (if this session publishes a clock)."""
        if self.clock_pub is not None:
            self._clock.clock.sec, self._clock.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
            self.clock_pub.publish(self._clock)

    def sleep_until(self, wall_due: float, bag_ns_at) -> None:
        """Sleep until `wall_due` (time.monotonic), publishing `bag_ns_at(now)` on /clock at
        CLOCK_HZ meanwhile."""
        while True:
            left = wall_due - time.monotonic()
            if left <= 0:
                return
            if self.clock_pub is None:
                time.sleep(left)
                return
            time.sleep(min(left, 1.0 / CLOCK_HZ))
            if time.monotonic() < wall_due:
                self.publish_clock(bag_ns_at(time.monotonic()))

    def publish(self, topic: str, msgtype: str, raw: bytes, source) -> None:
        """Publish (if the topic has a publisher) and record with the publication time."""
        if topic in self.pubs:
            self.pubs[topic].publish(raw)
        with self.lock:
            if self.writer is not None:
                self.writer.write_raw(topic, msgtype, time.time_ns(), raw, source=source)
            self.last_event = time.monotonic()

    def wait_ready(self, node: _Node | None, timeout: float, register: bool = False) -> None:
        """Until the node subscribes to the inputs (and the depth CameraInfo when it registers:
        a latched one is not delivered to a volatile subscription that joins later) and
        publishes its output image."""
        inputs = self.topics.inputs() + ((self.topics.depth_info,) if register else ())
        needed = [t for t in inputs if t in self.pubs]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node is not None and not node.alive():
                raise BagError(f"the node exited during start-up (code "
                               f"{node.proc.returncode}); its log:\n{node.tail()}")
            if all(self.pubs[t].get_subscription_count() > 0 for t in needed) and \
                    self.node.count_publishers(self.topics.out_image) > 0:
                time.sleep(0.5)  # let discovery finish in the other direction too
                return
            time.sleep(0.1)
        tail = f"; its log:\n{node.tail()}" if node is not None else \
            " (is a node running on these topics, in this ROS_DOMAIN_ID?)"
        raise BagError(f"the node did not subscribe to {', '.join(needed)} within "
                       f"{timeout:.0f} s" + tail)

    def wait_settled(self, settle_s: float, timeout: float) -> None:
        """After the last message: until nothing happened for max(settle_s, 1.5 x the longest
        time between two outputs), so a slow model's last pair is kept; at most `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                idle = time.monotonic() - self.last_event
                settle = max(settle_s, 1.5 * self.longest_output_gap)
            if idle > settle:
                return
            time.sleep(0.05)

    def close(self) -> None:
        self.stop_recording()
        self.executor.shutdown(timeout_sec=5)
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
        self._spinner.join(timeout=5)


@contextlib.contextmanager
def _large_data_profile(log):
    """Fast DDS loses large images between processes without the shipped profile (docs/robot.md): this process
    and the node it starts use it while the replay runs, unless the environment names one or another RMW."""
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    profile = None if os.environ.get(FASTDDS_PROFILE_ENV) or rmw != "rmw_fastrtps_cpp" else large_data_profile()
    if profile is None:
        yield
        return
    log(f"note: {FASTDDS_PROFILE_ENV}={profile} (large images between processes)")
    os.environ[FASTDDS_PROFILE_ENV] = str(profile)
    try:
        yield
    finally:
        os.environ.pop(FASTDDS_PROFILE_ENV, None)


def replay_bag(input_bag: str | Path, output_bag: str | Path, *,
               method: str = DEFAULTS["method"], checkpoint: str | Path | None = None,
               scale: int | None = None, rate: float = 1.0,
               topics: Topics = Topics(), params: dict | None = None,
               params_file: str | None = None, start_node: bool = True,
               node_name: str = "naima", startup_timeout: float = 180.0, settle_s: float = 3.0,
               finish_timeout: float = 120.0, record_points: bool = True,
               storage: str = "mcap", overwrite: bool = False, progress: bool = True,
               clock: bool = True, log=print) -> ReplaySummary:
    """Replay `input_bag` to the node over DDS; write inputs + recorded outputs to `output_bag`.

    Args:
        input_bag: a bag with the RGB, CameraInfo and depth topics (and usually ground truth).
        output_bag: the bag to create.
        method: the node's `method` (a baseline needs no checkpoint).
        checkpoint: for the node (default: the node's default checkpoint for `scale`), looked
            up as the node does (`naima_ros.resources.resolve_checkpoint`).
        scale: default: the bag's RGB/depth width ratio.
        rate: playback speed factor (1 = recorded rate, 0.5 = half speed).
        topics: topic names in the bag; the node is remapped onto them.
        params: extra node parameters {name: value}.
        params_file: a node parameters YAML (e.g. config/naima.yaml). Its entries for the node
            and `params` decide what the replay expects of the node: the compressed topics of
            rgb_transport / depth_transport, and with register_depth the depth CameraInfo
            subscription it waits for.
        start_node: start the node (False: a node is already running on these topics).
        node_name: the node's name.
        startup_timeout: seconds for the node to load, warm up and subscribe.
        settle_s: after the last message, stop once no output arrived for this long (at least
            1.5 x the longest time between two outputs, so a slow model's last frame is kept).
        finish_timeout: upper bound of that wait.
        record_points: record depth_registered/points too (large).
        clock: publish the bag's time on /clock (a /clock the bag recorded is then not replayed).
        storage, overwrite: of the output bag.
        progress: show a progress bar.
        log: where status lines go.

    Raises:
        BagError: bad input bag, missing checkpoint, or a node that exits or never subscribes
            (with the tail of its log).
    """
    from tqdm import tqdm

    if rate <= 0:
        raise BagError(f"--rate must be positive, got {rate}")
    summary = ReplaySummary()
    output_bag = Path(output_bag)
    # compressed inputs (params rgb_transport / depth_transport): the bag holds, and the node
    # subscribes, <base topic>/compressed[Depth]; the node is remapped on the base topics
    base_topics = topics
    node_values = _node_values(params, params_file, node_name)
    transports = (node_values["rgb_transport"], node_values["depth_transport"])
    topics = dataclasses.replace(topics, **{
        role: getattr(topics, role) if transport == "raw"
        else f"{getattr(topics, role)}/{transport}"
        for role, transport in zip(("rgb", "depth"), transports)})
    with BagReader(input_bag) as reader:
        reader.require({"rgb": topics.rgb, "rgb_info": topics.rgb_info, "depth": topics.depth},
                       {"rgb": IMAGE if transports[0] == "raw" else COMPRESSED_IMAGE,
                        "rgb_info": CAMERA_INFO,
                        "depth": IMAGE if transports[1] == "raw" else COMPRESSED_IMAGE})
        in_types = reader.topics
        skipped = [t for t in topics.outputs() + (topics.diagnostics,) if t in in_types]
        if skipped:
            log(f"note: not replaying {', '.join(skipped)} from the input bag (the node's "
                f"outputs are recorded fresh)")
        if clock and CLOCK_TOPIC in in_types:
            skipped.append(CLOCK_TOPIC)
            log(f"note: not replaying the recorded {CLOCK_TOPIC}: the replay publishes the "
                f"bag's time there")
        for topic, why in reader.skipped.items():
            log(f"note: {topic} is left out of the ROS 1 bag: {why}")
        play = {c.topic: c for c in reader.connections if c.topic not in skipped}
        record = {topics.out_image: IMAGE, topics.out_confidence: IMAGE, topics.out_info: CAMERA_INFO,
                  topics.diagnostics: DIAGNOSTIC_ARRAY}
        if record_points:
            record[topics.out_points] = POINT_CLOUD
        if start_node:
            scale = scale or bag_scale(reader, topics) or DEFAULTS["scale"]
            ckpt = None
            if method == "naima":
                try:
                    ckpt = resolve_checkpoint(str(checkpoint), scale).resolve() if checkpoint \
                        else default_checkpoint(scale).resolve()
                except (FileNotFoundError, ValueError) as exc:
                    raise BagError(str(exc)) from exc
                summary.checkpoint = str(ckpt)
            cmd = node_command(ckpt, scale, base_topics, method=method, node_name=node_name,
                               warmup_size=_first_size(reader, topics.rgb), params=params,
                               params_file=params_file)
        total = sum(c for t, c in reader.message_counts.items() if t in play)

        t_start = time.monotonic()
        with _large_data_profile(log):
            session = _DdsSession(topics, play, record, log, clock=clock)
            node = None
            try:
                with BagWriter(output_bag, storage, overwrite=overwrite,
                               custom_data=reader.custom_data) as writer:
                    session.start_recording(writer, record)
                    try:
                        if start_node:
                            log_path = output_bag.with_name(output_bag.name + ".node.log")
                            summary.node_log = str(log_path)
                            log(f"starting the node: {' '.join(cmd[1:4])} ... (log: {log_path})")
                            node = _Node(cmd, log_path)
                        session.wait_ready(node, startup_timeout,
                                           register=bool(node_values["register_depth"]))
                        with tqdm(total=total, desc=f"replay x{rate:g}", unit="msg",
                                  disable=not progress) as bar:
                            t0_wall, first_log = time.monotonic() + 0.2, None
                            for conn, log_ns, raw in reader.raw_messages(play):
                                if first_log is None:
                                    first_log = log_ns
                                    session.publish_clock(first_log)
                                session.sleep_until(
                                    t0_wall + (log_ns - first_log) / 1e9 / rate,
                                    lambda now, due=log_ns: min(due, max(first_log, first_log + int(
                                        (now - t0_wall) * rate * 1e9))))
                                session.publish_clock(log_ns)
                                session.publish(conn.topic, conn.msgtype, bytes(raw), conn)
                                summary.published += 1
                                bar.update()
                                bar.set_postfix(outputs=session.recorded[topics.out_image])
                                if node is not None and not node.alive():
                                    raise BagError(f"the node exited during the replay (code "
                                                   f"{node.proc.returncode}); its log:\n"
                                                   f"{node.tail()}")
                        session.wait_settled(settle_s, finish_timeout)
                    finally:
                        session.stop_recording()
            finally:
                if node is not None:
                    summary.node_returncode = node.stop()
                session.close()
                summary.recorded = collections.Counter(session.recorded)
                summary.wall_s = time.monotonic() - t_start
    return summary


def _node_values(params: dict | None, params_file: str | None, node_name: str) -> dict:
    """The node's parameters as it will resolve them: the defaults, the params file's entries
    for it, then `params` (the command line's -p, which win).

    Raises:
        BagError: the params file cannot be read or is not YAML.
    """
    values = dict(DEFAULTS)
    if params_file:
        try:
            values.update(node_parameters(params_file, node_name))
        except (OSError, yaml.YAMLError) as exc:
            raise BagError(f"cannot read the params file {params_file}: {exc}") from exc
    values.update(params or {})
    return values


def parse_params(pairs: list[str]) -> dict:
    """`name:=value` (or name=value) strings -> {name: typed value}."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition(":=")
        if not sep:
            key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BagError(f"--param expects NAME:=VALUE, got {pair!r}")
        out[key] = _parse_param(value)
    return out
