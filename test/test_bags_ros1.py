"""naima-bag on a ROS 1 .bag: read as ROS 2 messages, `run` and `eval` with registration of an
unregistered ToF, a damaged bag's message, types without a ROS 2 equal."""
import numpy as np
import pytest
from rosbags.rosbag1 import Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

import ros1_bag
from naima_ros.bags.cli import main
from naima_ros.bags.io import BagError, BagReader
from ros1_bag import TOPICS, write_ros1_bag

TOPIC_ARGS = ["--rgb-topic", TOPICS["rgb"], "--rgb-info-topic", TOPICS["rgb_info"],
              "--depth-topic", TOPICS["depth"], "--depth-info-topic", TOPICS["depth_info"]]
REGISTER = ["--register-depth", "--depth-to-rgb-translation", "0.05", "0", "0"]


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("ros1") / "rgbd.bag"
    write_ros1_bag(path)
    return path


def test_a_ros1_bag_reads_as_ros2_messages(bag):
    with BagReader(bag) as reader:
        assert reader.is_ros1 and not reader.skipped
        assert reader.topics[TOPICS["depth_info"]] == "sensor_msgs/msg/CameraInfo"
        assert reader.topics[TOPICS["tf_static"]] == "tf2_msgs/msg/TFMessage"
        got = {}
        for topic, log_ns, msg in reader.messages():
            got.setdefault(topic, []).append((log_ns, msg))
    (_, info), = got[TOPICS["depth_info"]]
    np.testing.assert_array_equal(info.k, ros1_bag.TOF_K)  # ROS 1's K is ROS 2's k
    assert (info.width, info.height, info.header.frame_id) == (16, 12, "camera_depth_optical_frame")
    rgb_info = got[TOPICS["rgb_info"]][1][1]
    np.testing.assert_array_equal(rgb_info.p, ros1_bag.RGB_P)
    assert [m.header.stamp.nanosec for _, m in got[TOPICS["depth"]]] == [0, 100_000_000,
                                                                         200_000_000]
    depth = got[TOPICS["depth"]][0][1]
    assert (depth.encoding, depth.width, depth.height) == ("32FC1", 16, 12)
    np.testing.assert_array_equal(np.frombuffer(depth.data.tobytes(), "<f4"), 2.0)
    (_, tf), = got[TOPICS["tf_static"]]
    assert tf.transforms[0].child_frame_id == "camera_depth_optical_frame"
    assert tf.transforms[0].transform.translation.x == 0.05


def test_run_and_eval_register_the_tof_of_a_ros1_bag(tmp_path, bag, capsys):
    out = tmp_path / "out"
    # unregistered and not told: the ToF's 16x12 has the RGB's aspect ratio, so it is served as if it
    # were registered (resampled onto the x8 grid; nothing in the data says otherwise)
    assert main(["--no-progress", "run", str(bag), str(out), "--method", "bicubic", "--scale", "8",
                 *TOPIC_ARGS]) == 0
    assert "3 frames served of 3 pairs; dropped: none" in capsys.readouterr().out
    assert main(["--no-progress", "run", str(bag), str(out), "--overwrite", "--method",
                 "bicubic", "--scale", "8", *REGISTER, *TOPIC_ARGS]) == 0
    assert "3 frames served of 3 pairs; dropped: none" in capsys.readouterr().out
    with BagReader(out) as reader:
        assert not reader.is_ros1  # the output is a rosbag2
        counts = reader.message_counts
        outputs = [m for _, _, m in reader.messages(["/depth_registered/image_rect"])]
    assert counts[TOPICS["tf_static"]] == 1 and counts[TOPICS["depth_info"]] == 1  # copied
    depth = np.frombuffer(outputs[0].data.tobytes(), "<f4")
    assert (outputs[0].width, outputs[0].height) == (64, 48)
    assert np.isfinite(depth).mean() > 0.5 and np.allclose(depth[np.isfinite(depth)], 2.0)
    report = tmp_path / "report"
    assert main(["--no-progress", "eval", str(out), "--report", str(report), "--scale", "8",
                 "--gt-topic", TOPICS["gt"], *REGISTER, *TOPIC_ARGS]) == 0
    table = capsys.readouterr().out
    for method in ("naima", "bicubic", "guided_filter"):  # the baselines got registered depth
        row = next(line.split() for line in table.splitlines() if line.startswith(method))
        assert row[1] == "3" and float(row[2]) < 0.01, table


def test_registration_options_are_checked(tmp_path, bag, capsys):
    assert main(["--no-progress", "run", str(bag), str(tmp_path / "o"), "--method", "bicubic",
                 "--register-depth", "--depth-to-rgb-rotation", "0", "0", "0", "0",
                 *TOPIC_ARGS]) == 2
    assert "depth_to_rgb_rotation must be a quaternion" in capsys.readouterr().err


def test_a_damaged_ros1_bag_names_itself_and_the_repair(tmp_path, bag, capsys):
    cut = tmp_path / "cut.bag"
    cut.write_bytes(bag.read_bytes()[:300])
    assert main(["--no-progress", "run", str(cut), str(tmp_path / "o"), "--method",
                 "bicubic"]) == 2
    err = capsys.readouterr().err
    assert f"cannot open ROS 1 bag {cut}" in err and "rosbag reindex" in err
    with pytest.raises(BagError, match="not a ROS 1 bag"):
        (tmp_path / "text.bag").write_text("not a bag")
        BagReader(tmp_path / "text.bag")


def test_types_without_a_ros2_equal(tmp_path):
    """A type ROS 2 lacks keeps the bag's definition (and is copied by `run`); a ROS 2 type
    whose ROS 1 namesake lays out other fields is left out, and naming it says why."""
    store = get_typestore(Stores.EMPTY)  # a ROS 1 bag's own definitions, one of them not ROS 2's
    store.register(get_types_from_msg("float64 value\nstring note", "my_msgs/msg/Reading"))
    store.register(get_types_from_msg("string key\nint32 value", "diagnostic_msgs/msg/KeyValue"))
    path = tmp_path / "custom.bag"
    with Writer(path) as w:
        reading = w.add_connection("/reading", "my_msgs/msg/Reading", typestore=store)
        kv = w.add_connection("/kv", "diagnostic_msgs/msg/KeyValue", typestore=store)
        w.write(reading, 5, store.serialize_ros1(store.types["my_msgs/msg/Reading"](
            value=1.5, note="ok"), "my_msgs/msg/Reading"))
        w.write(kv, 6, store.serialize_ros1(store.types["diagnostic_msgs/msg/KeyValue"](
            key="k", value=3), "diagnostic_msgs/msg/KeyValue"))
    with BagReader(path) as reader:
        assert "lay out their fields differently" in reader.skipped["/kv"]
        (conn,) = reader.connections
        (_, _, raw), = reader.raw_messages()
        assert conn.msgtype == "my_msgs/msg/Reading" and "float64 value" in conn.msgdef.data
        with pytest.raises(BagError, match="/kv .*left out of this ROS 1 bag"):
            reader.require({"depth": "/kv"})
    from naima_ros.bags.io import BagWriter
    with BagWriter(tmp_path / "copy") as writer:
        writer.write_raw(conn.topic, conn.msgtype, 5, raw, source=conn)
    from rosbags.highlevel import AnyReader
    with AnyReader([tmp_path / "copy"]) as any_reader:
        (c,) = any_reader.connections
        (_, _, data), = any_reader.messages()
        msg = any_reader.deserialize(data, c.msgtype)
    assert (msg.value, msg.note) == (1.5, "ok")
