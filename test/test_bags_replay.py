"""`naima-bag replay` over real DDS: the node as its own process, a tiny checkpoint, clean stops.

Each test process gets its own ROS_DOMAIN_ID and localhost-only discovery (as test_ros_node);
the node process inherits them. Tests wait on conditions and never assert timing.
"""
import os
import subprocess
import sys

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # 1..100: unique per test process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"  # older distros

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from naima_ros.bags.cli import main  # noqa: E402
from naima_ros.bags.io import BagReader, BagWriter, Topics  # noqa: E402
from naima_ros.bags.make import TimingConfig, make_bag  # noqa: E402
from naima_ros.data.common import frame_from_metres  # noqa: E402
from naima_ros.bags.replay import node_command, parse_params  # noqa: E402

pytestmark = pytest.mark.ros

W, H, S = 64, 48, 8
T = Topics()


@pytest.fixture(scope="module")
def input_bag(tmp_path_factory):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    frames = [frame_from_metres(f"f{i}", rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                                (1.0 + 0.02 * xx + 0.01 * yy + 0.1 * i).astype(np.float32),
                                (50.0, 50.0, 31.5, 23.5)) for i in range(4)]
    path = tmp_path_factory.mktemp("replay") / "in"
    make_bag(path, [frames], timing=TimingConfig(drop_rate=0.0), progress=False)
    return path


def stamps(msgs):
    return {(m.header.stamp.sec, m.header.stamp.nanosec) for m in msgs}


def test_replay_records_what_the_node_publishes(tmp_path, input_bag, tiny_checkpoint, capsys):
    """A driver's own topic names: the node is remapped onto them, outputs renamed too."""
    names = Topics(rgb="/cam/color/image_raw", rgb_info="/cam/color/camera_info",
                   depth="/tof/depth/image_raw", gt="/tof/depth_gt", out_image="/sr/depth",
                   out_info="/sr/camera_info", out_points="/sr/points")
    renamed = tmp_path / "renamed"
    with BagReader(input_bag) as reader, BagWriter(renamed) as writer:
        rename = dict(zip((T.rgb, T.rgb_info, T.depth, T.gt),
                          (names.rgb, names.rgb_info, names.depth, names.gt)))
        for conn, log_ns, raw in reader.raw_messages():
            writer.write_raw(rename[conn.topic], conn.msgtype, log_ns, raw)
    out = tmp_path / "out"
    rc = main(["--no-progress", "replay", str(renamed), str(out),
               "--checkpoint", str(tiny_checkpoint(scale=S)), "--rate", "0.5",
               "--param", "device:=cpu", "--settle", "2",
               "--rgb-topic", names.rgb, "--rgb-info-topic", names.rgb_info,
               "--depth-topic", names.depth, "--gt-topic", names.gt,
               "--out-image-topic", names.out_image, "--out-info-topic", names.out_info,
               "--out-points-topic", names.out_points])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "node exit code 0" in printed.out  # SIGINT: a clean rclpy shutdown
    with BagReader(renamed) as reader:
        counts_in = reader.message_counts
    got = {}
    with BagReader(out) as reader:
        for topic, _, msg in reader.messages():
            got.setdefault(topic, []).append(msg)
    for topic, n in counts_in.items():  # every input message was published and recorded
        assert len(got[topic]) == n, topic
    images = got[names.out_image]
    assert images and stamps(images) <= stamps(got[names.depth])
    assert stamps(got[names.out_info]) == stamps(images) == stamps(got[names.out_points])
    assert all((m.encoding, m.width, m.height) == ("32FC1", W, H) for m in images)
    assert got[T.diagnostics]
    assert not set(got) & {T.out_image, T.out_info, T.out_points}
    log = (tmp_path / "out.node.log").read_text()
    assert "ready: model" in log
    report = tmp_path / "report"
    assert main(["--no-progress", "eval", str(out), "--report", str(report),
                 "--rgb-topic", names.rgb, "--depth-topic", names.depth, "--gt-topic",
                 names.gt, "--out-image-topic", names.out_image]) == 0
    assert "latency (ms)" in capsys.readouterr().out


def test_replay_with_a_baseline_method_needs_no_checkpoint(tmp_path, input_bag, capsys):
    """`--method bicubic`: the node runs without a checkpoint (and without torch)."""
    out = tmp_path / "out"
    rc = main(["--no-progress", "replay", str(input_bag), str(out), "--method", "bicubic",
               "--checkpoint", "/nonexistent_x{scale}.safetensors", "--rate", "0.5",
               "--settle", "2", "--no-points"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    got = {}
    with BagReader(out) as reader:
        for topic, _, msg in reader.messages():
            got.setdefault(topic, []).append(msg)
    assert got[T.out_image] and stamps(got[T.out_image]) <= stamps(got[T.depth])
    assert all((m.encoding, m.width, m.height) == ("32FC1", W, H) for m in got[T.out_image])
    status = {kv.key: kv.value for m in got[T.diagnostics] for s in m.status for kv in s.values}
    assert status["method"] == "bicubic" and status["checkpoint"] == "None"
    assert "ready: method bicubic" in (tmp_path / "out.node.log").read_text()


def test_a_node_that_cannot_start_is_reported_with_its_log(tmp_path, input_bag, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint" * 10)
    out = tmp_path / "out"
    assert main(["--no-progress", "replay", str(input_bag), str(out), "--checkpoint", str(bad),
                 "--scale", "8"]) == 2
    err = capsys.readouterr().err
    assert "the node exited during start-up" in err and "cannot start" in err
    with BagReader(out) as reader:  # finalised, readable, no output; diagnostics (if any) said ERROR
        counts = reader.message_counts
        assert sum(n for topic, n in counts.items() if topic != "/diagnostics") == 0
        levels = [int.from_bytes(s.level) if isinstance(s.level, bytes) else int(s.level)
                  for _, _, msg in reader.messages(["/diagnostics"]) for s in msg.status]
        assert set(levels) <= {1, 2}, levels  # WARN while loading, then ERROR; never OK
        assert not levels or levels[-1] == 2, levels  # the last word is the failed load


def test_no_node_running_times_out_with_a_hint(tmp_path, input_bag, capsys):
    assert main(["--no-progress", "replay", str(input_bag), str(tmp_path / "out"),
                 "--no-node", "--startup-timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert "did not subscribe" in err and "ROS_DOMAIN_ID" in err


def test_node_command_remaps_every_topic_and_passes_parameters(tmp_path):
    topics = Topics(rgb="/cam/color", depth="/tof/depth", out_image="/sr/depth")
    cmd = node_command(tmp_path / "m.safetensors", 8, topics, warmup_size=(64, 48),
                       params=parse_params(["device:=cpu", "publish_points:=false",
                                            "slop=0.05"]))
    text = " ".join(cmd)
    assert "-m naima_ros.ros.node --ros-args" in text
    for arg in ("rgb/image_rect_color:=/cam/color", "depth/image_rect:=/tof/depth",
                "depth_registered/image_rect:=/sr/depth", "rgb/camera_info:=/rgb/camera_info",
                "scale:=8", "warmup_width:=64", "warmup_height:=48", "device:=cpu",
                "publish_points:=false", "slop:=0.05"):
        assert arg in cmd, arg
    assert "method:=naima" in cmd and f"checkpoint:={tmp_path / 'm.safetensors'}" in cmd
    baseline = node_command(None, 8, topics, method="bicubic")
    assert "method:=bicubic" in baseline and not any("checkpoint" in a for a in baseline)
    assert parse_params(["a:=1", "b:=2.5", "c:=true", "d:=x"]) == {"a": 1, "b": 2.5, "c": True,
                                                                 "d": "x"}


def test_the_node_parameters_come_from_the_params_file_and_the_command_line(tmp_path):
    """What replay expects of the node (compressed topics, the depth CameraInfo it waits for with
    register_depth) follows the params file's entries for the node, then --param."""
    from naima_ros.bags.io import BagError
    from naima_ros.bags.replay import _node_values

    params_file = tmp_path / "params.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    register_depth: true\n"
                           "    rgb_transport: compressed\n"
                           "other:\n  ros__parameters:\n    depth_transport: compressedDepth\n")
    values = _node_values(None, str(params_file), "naima")
    assert (values["register_depth"], values["rgb_transport"], values["depth_transport"]) == \
        (True, "compressed", "raw")  # the other node's entry does not apply
    assert _node_values({"register_depth": False}, str(params_file), "naima")["register_depth"] \
        is False  # --param wins
    assert _node_values(None, None, "naima")["register_depth"] is False  # the node's default
    (tmp_path / "bad.yaml").write_text("a: [1,")
    with pytest.raises(BagError, match="cannot read the params file"):
        _node_values(None, str(tmp_path / "bad.yaml"), "naima")


def test_sigterm_stops_the_node_and_keeps_the_bag(tmp_path, input_bag, tiny_checkpoint):
    import re
    import shutil
    import signal
    import time
    ckpt = tmp_path / "sigterm_test_model.safetensors"  # a unique path to find the node by
    shutil.copy(tiny_checkpoint(scale=S), ckpt)
    out = tmp_path / "out"
    err_path = tmp_path / "replay.err"
    with open(err_path, "w") as err_file:  # the progress bar goes there: it says when a message was published
        proc = subprocess.Popen([sys.executable, "-m", "naima_ros.bags.cli", "replay", str(input_bag), str(out),
                                 "--checkpoint", str(ckpt), "--rate", "0.05", "--param", "device:=cpu"],
                                stdout=subprocess.DEVNULL, stderr=err_file, text=True)
        try:
            deadline = time.monotonic() + 120
            # mid-replay: a frame's 4 messages published of 16 (~6 s)
            while max(map(int, re.findall(r"\| *(\d+)/\d+ \[", err_path.read_text())), default=0) < 4:
                assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = err_path.read_text()
    assert proc.returncode == 130, err
    assert "interrupted; the output bag keeps what was written" in err
    with BagReader(out) as reader:  # finalised: readable, holding what was published
        assert 0 < reader.message_counts[T.rgb] <= 4
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(ckpt) not in ps  # the node process is gone


def test_replay_compressed_inputs(tmp_path, capsys):
    """`--param rgb_transport=compressed --param depth_transport=compressedDepth`: the bag holds
    CompressedImage on <rgb>/compressed and <depth>/compressedDepth; the node (remapped on the
    base topics) subscribes exactly those and serves every pair."""
    from naima_ros.bags.io import CAMERA_INFO, TYPESTORE, header
    from naima_ros.image_transport import encode_compressed_color, encode_compressed_depth

    types = TYPESTORE.types
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:H // S, 0:W // S]
    bag = tmp_path / "compressed"
    rgb_topic, depth_topic = f"{T.rgb}/compressed", f"{T.depth}/compressedDepth"

    def compressed(hdr, payload):
        return types["sensor_msgs/msg/CompressedImage"](
            header=hdr, format=payload.format, data=np.frombuffer(payload.data, np.uint8))

    info = types[CAMERA_INFO](
        header=header(1, "cam"), height=H, width=W, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.array([50.0, 0, 31.5, 0, 50.0, 23.5, 0, 0, 1]), r=np.eye(3).ravel(),
        p=np.array([50.0, 0, 31.5, 0, 0, 50.0, 23.5, 0, 0, 0, 1, 0]), binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                      do_rectify=False))
    with BagWriter(bag) as w:
        for i in range(4):
            stamp = 10**9 * (5 + i)
            log = 10**9 + i * 200_000_000
            hdr = header(stamp, "camera_color_optical_frame")
            info.header = hdr
            w.write(T.rgb_info, info, log)
            w.write(rgb_topic, compressed(hdr, encode_compressed_color(
                rng.integers(0, 256, (H, W, 3), dtype=np.uint8), "png")), log + 1)
            w.write(depth_topic, compressed(hdr, encode_compressed_depth(
                (1.0 + 0.1 * xx + 0.05 * yy + 0.1 * i).astype(np.float32))), log + 2)
    out = tmp_path / "out"
    rc = main(["--no-progress", "replay", str(bag), str(out), "--method", "bicubic",
               "--scale", str(S), "--rate", "0.5", "--settle", "2", "--no-points",
               "--param", "rgb_transport=compressed", "--param", "depth_transport=compressedDepth",
               "--param", f"warmup_width={W}", "--param", f"warmup_height={H}"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    got = {}
    with BagReader(out) as reader:
        for topic, _, msg in reader.messages():
            got.setdefault(topic, []).append(msg)
    assert stamps(got[T.out_image]) == stamps(got[depth_topic])  # every pair served
    assert all((m.width, m.height) == (W, H) for m in got[T.out_image])
    log = (tmp_path / "out.node.log").read_text()
    assert f"in: {rgb_topic}, {depth_topic}" in log


def test_replay_of_a_ros1_bag_registers_keeps_the_recorded_qos_and_publishes_clock(tmp_path,
                                                                                   capsys):
    """A ROS 1 bag with an unregistered ToF and a latched depth CameraInfo, replayed to the node
    (registering) while another process watches: the latched topic is offered transient-local
    (a late joiner still gets it), the rest reliable + volatile, and /clock runs on the bag's
    log times from the first message to the last."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from ros1_bag import TOPICS, write_ros1_bag

    bag = tmp_path / "rgbd.bag"
    write_ros1_bag(bag)
    params_file = tmp_path / "params.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    register_depth: true\n")
    with BagReader(bag) as reader:
        logs = {topic: log for topic, log, _ in reader.messages()}  # the last per topic
        first_log = min(log for _, log, _ in reader.messages())
        (info_log, info), = [(log, m) for t, log, m in reader.messages([TOPICS["depth_info"]])]
    last_log = max(logs.values())
    probe_out = tmp_path / "probe.json"
    probe = subprocess.Popen([sys.executable, str(Path(__file__).with_name("replay_probe.py")),
                              str(probe_out), TOPICS["depth_info"], str(info_log),
                              TOPICS["rgb"]])
    try:
        out = tmp_path / "out"
        rc = main(["--no-progress", "replay", str(bag), str(out), "--method", "bicubic",
                   "--scale", "8", "--rate", "0.5", "--settle", "2", "--no-points",
                   # register_depth from a params file: the replay must wait for the
                   # node's depth CameraInfo subscription (the bag latches that message once)
                   "--params-file", str(params_file),
                   "--param", "depth_to_rgb_translation:=[0.05,0.0,0.0]",
                   "--rgb-topic", TOPICS["rgb"], "--rgb-info-topic", TOPICS["rgb_info"],
                   "--depth-topic", TOPICS["depth"], "--depth-info-topic", TOPICS["depth_info"],
                   "--gt-topic", TOPICS["gt"]])
        printed = capsys.readouterr()
        assert rc == 0, printed.err
        probe.wait(timeout=120)
    finally:
        if probe.poll() is None:
            probe.kill()
    seen = json.loads(probe_out.read_text())
    assert seen["qos"][TOPICS["depth_info"]] == {"durability": "TRANSIENT_LOCAL",
                                                 "reliability": "RELIABLE"}
    assert seen["qos"][TOPICS["rgb"]] == {"durability": "VOLATILE", "reliability": "RELIABLE"}
    stamp = info.header.stamp.sec * 10**9 + info.header.stamp.nanosec
    assert seen["latched"] == [stamp]  # joined after it was published, and got it
    clock = seen["clock_ns"]
    assert clock == sorted(clock) and clock[0] == first_log and clock[-1] == last_log
    assert len(set(clock)) > len(logs)  # the time between messages runs too
    got = {}
    with BagReader(out) as reader:
        for topic, _, msg in reader.messages():
            got.setdefault(topic, []).append(msg)
    assert len(got[T.out_image]) == 3  # every pair registered and served
    assert all((m.width, m.height) == (64, 48) for m in got[T.out_image])
    assert "is replayed reliable, transient local, keep last 1, as recorded" in printed.err


def test_playback_qos_follows_the_recorded_offers(tmp_path):
    """rosbag2 offered_qos_profiles (all must agree to offer the stronger policy), ROS 1 latching,
    /tf_static transient-local by default, bags that recorded nothing."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)
    from rosbags.rosbag2 import Writer

    from naima_ros.bags.io import TYPESTORE
    from naima_ros.bags.qos import DEFAULT_DEPTH, PlaybackQos, playback_qos

    never = QosTime(0, 0)

    def offer(reliable, latched):
        return Qos(QosHistory.KEEP_LAST, 1,
                   QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
                   QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
                   never, never, QosLiveliness.AUTOMATIC, never, False)

    path = tmp_path / "qos"
    recorded = {"/latched": [offer(True, True)], "/sensor": [offer(False, False)],
                "/mixed": [offer(True, True), offer(True, False)], "/tf_static": [],
                "/plain": []}
    with Writer(path, version=8) as w:
        for topic, offers in recorded.items():
            conn = w.add_connection(topic, "std_msgs/msg/String", typestore=TYPESTORE,
                                    offered_qos_profiles=offers)
            for k in range(3):
                w.write(conn, k, TYPESTORE.serialize_cdr(
                    TYPESTORE.types["std_msgs/msg/String"](data="x"), "std_msgs/msg/String"))
    with BagReader(path) as reader:
        got = {c.topic: playback_qos(c) for c in reader.connections}
    assert got == {"/latched": PlaybackQos(True, True, 3),
                   "/sensor": PlaybackQos(False, False, DEFAULT_DEPTH),
                   "/mixed": PlaybackQos(True, False, DEFAULT_DEPTH),
                   "/tf_static": PlaybackQos(True, True, 3),
                   "/plain": PlaybackQos(True, False, DEFAULT_DEPTH)}


def test_large_frames_arrive_without_a_profile_in_the_environment(tmp_path):
    """640x480 frames between the replay and the node, FASTDDS_DEFAULT_PROFILES_FILE unset: the replay
    uses the shipped large-data profile for itself and the node (without it, Fast DDS's default shared-memory
    segment lost one frame in three of a 512x384 real-scene bag here). A fresh process, so the profile
    applies to the replay's own participant."""
    rng = np.random.default_rng(1)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [frame_from_metres(f"f{i}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                                (1.0 + 0.002 * xx + 0.001 * yy + 0.1 * i).astype(np.float32),
                                (500.0, 500.0, 319.5, 239.5)) for i in range(6)]
    make_bag(tmp_path / "in", [frames], timing=TimingConfig(drop_rate=0.0), progress=False)
    env = {k: v for k, v in os.environ.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    done = subprocess.run([sys.executable, "-m", "naima_ros.bags.cli", "--no-progress", "replay",
                           str(tmp_path / "in"), str(tmp_path / "out"), "--method", "bicubic",
                           "--rate", "0.2", "--settle", "2"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout + done.stderr
    assert "FASTDDS_DEFAULT_PROFILES_FILE=" in printed and "fastdds_large_data.xml" in printed
    with BagReader(tmp_path / "out") as reader:
        counts = reader.message_counts
    assert counts[T.out_image] == counts[T.depth] == len(frames)
    assert counts[T.out_points] == len(frames)  # 640x480 XYZRGB: 9.8 MB each
