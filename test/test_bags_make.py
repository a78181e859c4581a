"""`naima-bag make` and the bag I/O: rosbag2 v8 (mcap, sqlite3), topics, stamps, LR synthesis."""
import json
import shutil

import numpy as np
import pytest
import yaml

from naima_ros.bags.cli import main
from naima_ros.bags.io import BagError, BagReader, BagWriter, Topics, depth_msg, header
from naima_ros.bags.make import (LRConfig, TimingConfig, fit_frame, frames_from_source, lr_from_gt,
                                 make_bag)
from naima_ros.data.common import RGBDFrame, frame_from_metres
from naima_ros.data.synthetic import BAG_SEED0, generate_scene
from naima_ros.depth_codec import decode_color, decode_depth

W, H, S = 64, 48, 8


def flat_frame(depth=2.0, name="flat") -> RGBDFrame:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return frame_from_metres(name, rgb, np.full((H, W), depth, np.float32), (50.0, 50.0, 31.5, 23.5))


def read_all(path):
    with BagReader(path) as reader:
        return reader.topics, list(reader.messages())


def metadata(path):
    return yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


@pytest.mark.parametrize("storage,encoding", [("mcap", "16UC1"), ("sqlite3", "32FC1")])
def test_make_writes_a_v8_bag_with_the_four_topics(tmp_path, storage, encoding):
    out = tmp_path / "bag"
    summary = make_bag(out, [[flat_frame(1.5 + 0.1 * i, f"f{i}") for i in range(5)]],
                       lr=LRConfig(S, encoding), timing=TimingConfig(drop_rate=0.0),
                       storage=storage, progress=False)
    assert (summary.frames, summary.rgb, summary.depth, summary.size) == (5, 5, 5, (W, H))
    meta = metadata(out)
    assert meta["version"] == 8
    assert meta["storage_identifier"] == storage
    assert meta["relative_file_paths"][0].endswith({"mcap": ".mcap", "sqlite3": ".db3"}[storage])

    topics, msgs = read_all(out)
    t = Topics()
    assert topics == {t.rgb: "sensor_msgs/msg/Image", t.rgb_info: "sensor_msgs/msg/CameraInfo",
                      t.depth: "sensor_msgs/msg/Image", t.gt: "sensor_msgs/msg/Image"}
    by_topic = {}
    for topic, log_ns, msg in msgs:
        by_topic.setdefault(topic, []).append((log_ns, msg))
    assert {k: len(v) for k, v in by_topic.items()} == {k: 5 for k in topics}
    for i, (log_ns, msg) in enumerate(by_topic[t.depth]):
        assert (msg.encoding, msg.width, msg.height) == (encoding, W // S, H // S)
        assert msg.header.frame_id == "camera_color_optical_frame"
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        assert log_ns > stamp  # received after it was stamped
        depth_m, valid = decode_depth(msg.data, msg.encoding, msg.height, msg.width, msg.step,
                                      bool(msg.is_bigendian))
        assert valid.all()
        np.testing.assert_allclose(depth_m, 1.5 + 0.1 * i, atol=1e-3)
        gt = by_topic[t.gt][i][1]
        assert (gt.encoding, gt.width, gt.height, gt.header.stamp) == (encoding, W, H,
                                                                        msg.header.stamp)
    rgb = by_topic[t.rgb][0][1]
    assert (rgb.encoding, rgb.width, rgb.height) == ("rgb8", W, H)
    np.testing.assert_array_equal(decode_color(rgb.data, "rgb8", H, W, rgb.step),
                                  flat_frame().rgb)
    info = by_topic[t.rgb_info][0][1]
    assert info.header.stamp == rgb.header.stamp and (info.width, info.height) == (W, H)
    np.testing.assert_allclose(info.k, [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1])
    np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], np.reshape(info.k, (3, 3)))
    # stamps: 10 Hz with jitter, strictly increasing, the depth a few ms off the RGB
    stamps = np.array([m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
                       for _, m in by_topic[t.depth]])
    assert (np.diff(stamps) > 0).all()
    np.testing.assert_allclose(np.diff(stamps), 1e8, atol=2e7)
    assert len(set(np.diff(stamps))) > 1  # jittered, not exactly periodic


def test_drops_gap_custom_data_and_renamed_topics(tmp_path):
    topics = Topics(rgb="/cam/color/image_raw", rgb_info="/cam/color/camera_info",
                    depth="/tof/depth", gt="/tof/gt")
    out = tmp_path / "bag"
    summary = make_bag(out, [[flat_frame(name=f"a{i}") for i in range(30)],
                             [flat_frame(name="b")]],
                       timing=TimingConfig(drop_rate=0.3, gap_s=2.0), topics=topics, seed=3,
                       progress=False)
    assert summary.dropped_rgb + summary.dropped_depth > 0
    with BagReader(out) as reader:
        assert set(reader.topics) == {topics.rgb, topics.rgb_info, topics.depth, topics.gt}
        counts = reader.message_counts
        names = reader.frame_names()
        make_info = json.loads(reader.custom_data["naima.make"])
    assert counts[topics.gt] == 31  # ground truth for every frame, even a lost one
    assert counts[topics.depth] == 31 - summary.dropped_depth
    assert counts[topics.rgb] == counts[topics.rgb_info] == 31 - summary.dropped_rgb
    assert sorted(names.values())[-1] == "b" and len(names) == 31
    stamps = sorted(names)
    assert (stamps[-1] - stamps[-2]) / 1e9 > 2.0  # the pause before the second source
    assert make_info["scale"] == 8 and make_info["drop_rate"] == 0.3


def test_lr_from_gt_averages_valid_footprints():
    rng = np.random.default_rng(0)
    depth = np.full((16, 16), 2.0, np.float32)
    depth[:8, :8] = np.nan  # a whole LR pixel without ground truth
    depth[:8, 8:] = np.where(np.arange(8)[None, :] < 3, np.nan, 4.0)  # 3/8 missing: kept
    depth[8:, :8] = np.where(np.arange(8)[None, :] < 5, np.nan, 1.0)  # 5/8 missing: lost
    lr = lr_from_gt(depth, np.zeros((16, 16, 3), np.uint8), LRConfig(scale=8), rng)
    assert lr.shape == (2, 2)
    assert np.isnan(lr[0, 0]) and np.isnan(lr[1, 0])
    assert lr[0, 1] == pytest.approx(4.0) and lr[1, 1] == pytest.approx(2.0)
    # a depth edge inside a footprint gives the mixed ("flying") pixel a ToF camera reports
    edge = np.full((8, 8), 1.0, np.float32)
    edge[:, 4:] = 3.0
    assert lr_from_gt(edge, np.zeros((8, 8, 3), np.uint8), LRConfig(scale=8), rng)[0, 0] == \
        pytest.approx(2.0)


def test_tof_holes_and_noise_degrade_the_lr():
    frame = next(iter(frames_from_source("procedural:1", height=96, width=128, frames=1,
                                         seed=0)))
    clean = lr_from_gt(frame.depth_m, frame.rgb, LRConfig(8), np.random.default_rng(0))
    holes = lr_from_gt(frame.depth_m, frame.rgb, LRConfig(8, tof_holes=True),
                       np.random.default_rng(0))
    noisy = lr_from_gt(frame.depth_m, frame.rgb, LRConfig(8, tof_noise=True),
                       np.random.default_rng(0))
    assert np.isfinite(clean).all()
    assert 0 < np.isnan(holes).sum() < holes.size / 2
    assert np.isfinite(noisy).all() and 0 < np.abs(noisy - clean).max() < 0.5


def test_fit_frame_scales_and_crops_with_intrinsics():
    rng = np.random.default_rng(1)
    frame = frame_from_metres("big", rng.integers(0, 256, (100, 200, 3), dtype=np.uint8),
                              np.full((100, 200), 3.0, np.float32), (100.0, 100.0, 99.5, 49.5))
    out = fit_frame(frame, 64, 48)  # scale 0.48 -> 96 x 48, then crop 16 px each side
    assert out.rgb.shape == (48, 64, 3) and out.depth_m.shape == (48, 64)
    fx, fy, cx, cy = out.intrinsics
    assert fx == pytest.approx(48.0) and fy == pytest.approx(48.0)
    assert cx == pytest.approx(31.5) and cy == pytest.approx(23.5)  # the centre stays centred
    assert fit_frame(frame, 200, 100) is frame


def test_procedural_sequence_pans_coherently():
    frames = list(frames_from_source("procedural:3", height=48, width=64, frames=3, seed=0))
    assert [f.name for f in frames] == ["procedural_s0_f00", "procedural_s0_f01",
                                        "procedural_s0_f02"]
    # consecutive frames share most of the room: the principal point moves with the pan
    assert frames[0].intrinsics[2] > frames[1].intrinsics[2] > frames[2].intrinsics[2]
    assert all(np.isfinite(f.depth_m).all() and f.rgb.dtype == np.uint8 for f in frames)
    # the rooms are held-out scenes: training sets draw generate_scene(0 ..), the bag BAG_SEED0 + seed
    room = generate_scene(BAG_SEED0, 48, 64 + 32)
    assert np.array_equal(frames[0].rgb, room.rgb[:, :64])
    assert not np.array_equal(frames[0].rgb, generate_scene(0, 48, 96).rgb[:, :64])


def test_motorcycle_and_shared_dataset_sources(tmp_path, shared_data):
    out = tmp_path / "bag"
    assert main(["--no-progress", "make", str(out), "--source", "motorcycle",
                 "--source", "nyu:1", "--shared-data", str(shared_data), "--size", "128x96",
                 "--drop-rate", "0"]) == 0
    with BagReader(out) as reader:
        assert sorted(reader.frame_names().values()) == ["motorcycle", "nyu/1000"]
        gts = [m for _, _, m in reader.messages([Topics().gt])]
    depth_m, valid = decode_depth(gts[0].data, "16UC1", 96, 128, gts[0].step)
    assert 0.8 < valid.mean() < 1.0  # the Motorcycle ground truth has holes; they stay holes
    assert 1.0 < np.nanmedian(depth_m) < 5.0


def test_cli_refuses_to_replace_and_reports_bad_sources(tmp_path, capsys):
    out = tmp_path / "bag"
    make_bag(out, [[flat_frame()]], progress=False)
    before = sorted(p.name for p in out.iterdir())
    assert main(["make", str(out), "--source", "procedural:1"]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == before  # the existing bag is untouched
    assert main(["make", str(tmp_path / "x"), "--source", "kinect"]) == 2
    assert "unknown source 'kinect'" in capsys.readouterr().err
    plain = tmp_path / "notes"
    plain.mkdir()
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        BagWriter(plain, overwrite=True)
    assert main(["--no-progress", "make", str(out), "--source", "procedural:2", "--size",
                 "64x48", "--overwrite"]) == 0
    assert read_all(out)[0]


def test_writer_finalises_what_was_written_when_the_caller_fails(tmp_path):
    out = tmp_path / "bag"
    with pytest.raises(RuntimeError, match="boom"):
        with BagWriter(out, "sqlite3") as writer:
            writer.write("/d", depth_msg(header(10**9, "f"), np.ones((2, 2)), "32FC1"), 10**9)
            raise RuntimeError("boom")
    topics, msgs = read_all(out)
    assert topics == {"/d": "sensor_msgs/msg/Image"} and len(msgs) == 1


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="no metadata.yaml"):
        BagReader(tmp_path / "empty")
    out = tmp_path / "bag"
    make_bag(out, [[flat_frame()] * 3], progress=False)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    mcap = next(broken.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(BagError, match=f"truncated.*|{mcap}") as info:
        BagReader(broken)
    assert str(mcap) in str(info.value)


def test_dataset_from_its_own_folder_and_8bit_units(tmp_path, shared_data):
    folder = shared_data / "gdsr_test" / "Middlebury"
    frame = next(frames_from_source(f"middlebury:1@{folder}", height=None, width=None,
                                    frames=1, seed=0))
    assert frame.name.startswith("middlebury/")
    assert 0.1 < np.nanmax(frame.depth_m) <= 255 * 0.02  # 8-bit units at 2 cm each
    with pytest.raises(BagError, match="tofdsr@PATH"):
        next(frames_from_source("tofdsr", height=None, width=None, frames=1, seed=0))
    with pytest.raises(BagError, match="a path is accepted for"):
        next(frames_from_source("rgbdd360@/x", height=None, width=None, frames=1, seed=0))


def test_bag_tools_import_without_rclpy():
    """Only `replay` needs rclpy (imported when a replay starts); the rest runs without ROS."""
    import subprocess
    import sys
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('rclpy', 'sensor_msgs', 'std_msgs'):\n"
            "            raise ImportError('blocked ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import naima_ros.bags.cli, naima_ros.bags.make, naima_ros.bags.run\n"
            "import naima_ros.bags.evaluate, naima_ros.bags.report, naima_ros.bags.replay\n"
            "import naima_ros.demo\n"
            "from naima_ros.bags.run import default_checkpoint\n"
            "try:\n"
            "    default_checkpoint(8)\n"
            "except Exception as exc:\n"
            "    assert 'naima_light_x8_demo' in str(exc), exc\n"
            "assert 'rclpy' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("little_endian", [True, False])
def test_raw_stamp_reads_the_header_without_decoding(little_endian):
    from naima_ros.bags.io import TYPESTORE, raw_stamp_ns
    msg = depth_msg(header(1_700_000_123_456_789_012, "cam"), np.ones((4, 4)), "16UC1")
    raw = bytes(TYPESTORE.serialize_cdr(msg, msg.__msgtype__, little_endian=little_endian))
    assert raw_stamp_ns(raw) == 1_700_000_123_456_789_012
    with pytest.raises(BagError, match="topic /x"):
        raw_stamp_ns(raw[:8], "/x")


def test_fit_frame_only_crops_a_barely_larger_frame():
    rng = np.random.default_rng(2)
    frame = frame_from_metres("m", rng.integers(0, 256, (500, 741, 3), dtype=np.uint8),
                              rng.random((500, 741)).astype(np.float32), (995.0, 995.0, 311.2, 254.9))
    out = fit_frame(frame, 736, 496)
    np.testing.assert_array_equal(out.rgb, frame.rgb[2:498, 2:738])
    np.testing.assert_array_equal(out.depth_m, frame.depth_m[2:498, 2:738])
    assert out.intrinsics == (995.0, 995.0, 309.2, 252.9)
