"""`naima-bag run`: the node's serving path over a bag offline, pairing, and bad input bags.

(That `run` and the node give identical outputs and drop reasons for the same pairs is
test_ros_bag_parity.py.)"""
import shutil

import numpy as np
import pytest

from naima_ros.bags.cli import main
from naima_ros.bags.io import BagReader, BagWriter, Topics, rgb_msg
from naima_ros.bags.io import header as make_header
from naima_ros.bags.make import LRConfig, TimingConfig, lr_from_gt, make_bag
from naima_ros.data.common import frame_from_metres
from naima_ros.bags.run import PairMatcher, run_bag
from naima_ros.depth_codec import decode_depth
from naima_ros.inference import Upsampler
from naima_ros.serving import ServeConfig

W, H, S = 64, 48, 8
T = Topics()


def frames(n=3):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for i in range(n):
        depth = (1.0 + 0.02 * xx + 0.01 * yy + 0.1 * i).astype(np.float32)
        out.append(frame_from_metres(f"f{i}", rng.integers(0, 256, (H, W, 3), dtype=np.uint8), depth,
                                     (50.0, 50.0, 31.5, 23.5)))
    return out


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return tiny_checkpoint(scale=S)


@pytest.fixture(scope="module")
def upsampler(ckpt):
    return Upsampler.from_checkpoint(ckpt, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def input_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "in"
    make_bag(path, [frames()], timing=TimingConfig(drop_rate=0.0), progress=False)
    return path


def by_topic(path):
    out = {}
    with BagReader(path) as reader:
        for conn, log_ns, raw in reader.raw_messages():
            out.setdefault(conn.topic, []).append((log_ns, raw))
        msgs = {}
        for topic, log_ns, msg in reader.messages():
            msgs.setdefault(topic, []).append((log_ns, msg))
    return out, msgs


def test_run_round_trip_holds_inputs_and_the_node_outputs(tmp_path, input_bag, ckpt,
                                                          upsampler):
    out = tmp_path / "out"
    assert main(["--no-progress", "run", str(input_bag), str(out), "--checkpoint", str(ckpt),
                 "--device", "cpu"]) == 0
    raw_in, msgs_in = by_topic(input_bag)
    raw_out, msgs = by_topic(out)
    for topic in raw_in:  # every input message copied byte for byte, same log time
        assert raw_out[topic] == raw_in[topic]
    def by_stamp(items):  # outputs are logged when ready, so not necessarily in stamp order
        return sorted(items, key=lambda item: (item[1].header.stamp.sec,
                                               item[1].header.stamp.nanosec))
    depth_in = by_stamp(msgs_in[T.depth])
    images, infos, clouds = (by_stamp(msgs[t]) for t in (T.out_image, T.out_info, T.out_points))
    assert len(images) == len(infos) == len(clouds) == 3
    for (d_log, d), (o_log, image), (_, info), (_, cloud), (_, rgb) in zip(
            depth_in, images, infos, clouds, msgs_in[T.rgb]):
        assert image.header == d.header == info.header == cloud.header
        assert o_log > d_log  # logged when the output exists: arrival + processing time
        assert (image.encoding, image.width, image.height) == ("32FC1", W, H)
        got, valid = decode_depth(image.data, image.encoding, H, W, image.step)
        # the same conversion and model call as the node
        lr, lr_valid = decode_depth(d.data, d.encoding, d.height, d.width, d.step)
        rgb_arr = np.frombuffer(rgb.data, np.uint8).reshape(H, W, 3)
        want = upsampler(rgb_arr.copy(), np.where(lr_valid, lr, np.nan))
        np.testing.assert_allclose(got[valid], want[valid], rtol=1e-5, atol=1e-5)
        assert valid.all()
        np.testing.assert_allclose(info.k, [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1])
        assert (info.width, info.height) == (W, H)
        assert (cloud.height, cloud.width, cloud.point_step) == (H, W, 32)
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
        pts = np.frombuffer(cloud.data, "<f4").reshape(H, W, 8)
        np.testing.assert_array_equal(pts[..., 2], got)


def test_run_options_encoding_points_and_default_scale(tmp_path, input_bag, upsampler):
    out = tmp_path / "out"
    summary = run_bag(input_bag, out, predictor=upsampler, storage="sqlite3", progress=False,
                      config=ServeConfig(output_encoding="16UC1", publish_points=False,
                                         max_depth=1.5))
    assert summary.served == 3 and not summary.dropped
    _, msgs = by_topic(out)
    assert T.out_points not in msgs
    image = msgs[T.out_image][0][1]
    got, valid = decode_depth(image.data, image.encoding, H, W, image.step)
    assert image.encoding == "16UC1"
    assert not valid.all() and (got[valid] <= 1.5).all()  # max_depth masks the output


def test_drops_are_counted_with_the_node_reasons(tmp_path, upsampler):
    """No CameraInfo yet, an RGB of the wrong size, an unmatched depth, all-invalid depth."""
    path = tmp_path / "in"
    f = frames(1)[0]
    lr = lr_from_gt(f.depth_m, f.rgb, LRConfig(S, "32FC1"), np.random.default_rng(0))
    from naima_ros.bags.io import depth_msg
    from naima_ros.bags.make import _camera_info
    with BagWriter(path) as w:
        def pair(i, rgb, depth, info=True):
            t = 10**9 * (i + 1)
            hdr = make_header(t, "cam")
            if info:
                w.write(T.rgb_info, _camera_info(hdr, f.intrinsics, W, H), t)
            if rgb is not None:
                w.write(T.rgb, rgb_msg(hdr, rgb), t)
            w.write(T.depth, depth_msg(hdr, depth, "32FC1"), t + 1)
        pair(0, f.rgb, lr, info=False)                  # missing_camera_info
        pair(1, f.rgb[:40], lr)                          # size_mismatch
        pair(2, None, lr, info=False)                    # sync_unmatched
        pair(3, f.rgb, np.zeros_like(lr))                # all_invalid_depth
        pair(4, f.rgb, lr)                               # served
    lines = []
    summary = run_bag(path, tmp_path / "out", predictor=upsampler, progress=False,
                      log=lines.append)
    assert summary.served == 1
    assert dict(summary.dropped) == {"missing_camera_info": 1, "size_mismatch": 1,
                                     "sync_unmatched": 1, "all_invalid_depth": 1}
    assert len(lines) == 4 and all("dropped [" in line for line in lines)


def test_pair_matcher_approximate_and_exact():
    m = PairMatcher(slop_s=0.02)
    m.add_depth(100_000_000, "d0", 0)
    assert list(m.ready()) == []  # a closer RGB may still come
    m.add_rgb(90_000_000, "r0", 0)
    m.add_rgb(105_000_000, "r1", 0)
    assert list(m.ready()) == []
    m.add_rgb(200_000_000, "r2", 0)
    (kind, depth, rgb), = list(m.ready())
    assert (kind, depth[1], rgb[1]) == ("pair", "d0", "r1")  # the nearest within slop
    m.add_depth(300_000_000, "d1", 0)
    assert [k for k, _, _ in m.ready(final=True)] == ["unmatched"]
    # a stamp seen before (a bag loop, a restarted driver) pairs again with its new RGB frame
    m.add_rgb(105_000_000, "r1 again", 0)
    m.add_depth(105_000_000, "d0 again", 0)
    (kind, depth, rgb), = list(m.ready(final=True))
    assert (kind, depth[1], rgb[1]) == ("pair", "d0 again", "r1 again")
    exact = PairMatcher(slop_s=0.02, exact=True)
    exact.add_rgb(5, "r", 0)
    exact.add_depth(6, "d", 0)
    assert [k for k, _, _ in exact.ready(final=True)] == ["unmatched"]


def test_missing_topic_names_it_and_writes_nothing(tmp_path, input_bag, ckpt, capsys):
    out = tmp_path / "out"
    assert main(["run", str(input_bag), str(out), "--checkpoint", str(ckpt),
                 "--depth-topic", "/tof/depth"]) == 2
    err = capsys.readouterr().err
    assert "/tof/depth (--depth-topic)" in err and "/depth/image_rect" in err
    assert not out.exists()


def test_unknown_encoding_midway_is_the_node_drop(tmp_path, ckpt, capsys):
    """Frame 3 of 4 has a YUV RGB image: as in the node, a counted `unsupported_encoding` drop
    with a warning naming the topic and the encoding; the other frames are served."""
    good = tmp_path / "good"
    make_bag(good, [frames(4)], timing=TimingConfig(drop_rate=0.0), progress=False)
    bad = tmp_path / "bad"
    with BagReader(good) as reader, BagWriter(bad) as writer:
        n_rgb = 0
        for conn, log_ns, raw in reader.raw_messages():
            if conn.topic == T.rgb:
                n_rgb += 1
                if n_rgb == 3:
                    from naima_ros.bags.io import TYPESTORE
                    msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
                    msg.encoding = "yuv422"
                    raw = TYPESTORE.serialize_cdr(msg, conn.msgtype)
            writer.write_raw(conn.topic, conn.msgtype, log_ns, raw)
    out = tmp_path / "out"
    assert main(["--no-progress", "run", str(bad), str(out), "--checkpoint", str(ckpt),
                 "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "[unsupported_encoding]" in captured.err and "/depth/image_rect" in captured.err
    assert "'yuv422' is not supported" in captured.err
    assert "3 frames served of 4 pairs; dropped: unsupported_encoding 1" in captured.out
    _, msgs = by_topic(out)  # finalised: readable, with the outputs of the served frames
    assert len(msgs[T.out_image]) == 3


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_input_is_named_and_left_alone(tmp_path, input_bag, ckpt, capsys, storage):
    src = tmp_path / "src"
    if storage == "mcap":
        shutil.copytree(input_bag, src)
    else:
        make_bag(src, [frames()], storage="sqlite3", progress=False)
    data = next(p for p in src.iterdir() if p.suffix in (".mcap", ".db3"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size * 2 // 3])
    size = data.stat().st_size
    out = tmp_path / "out"
    assert main(["run", str(src), str(out), "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert str(data) in err and "truncated" in err
    assert data.stat().st_size == size and not out.exists()


def test_offline_defaults_are_the_node_parameters():
    """`run` options and `ServeConfig` take their defaults from the node's parameter table."""
    from dataclasses import fields

    from naima_ros.bags.cli import build_parser
    from naima_ros.serving import DEFAULTS
    for f in fields(ServeConfig):
        want = DEFAULTS[f.name]  # a ROS double array is a tuple in the (immutable) config
        assert getattr(ServeConfig(), f.name) == (tuple(want) if isinstance(want, list)
                                                  else want), f.name
    args = build_parser().parse_args(["run", "in", "out"])
    assert (args.method, args.device, args.precision) == (DEFAULTS["method"], DEFAULTS["device"],
                                                          DEFAULTS["precision"])
    for name in ("output_encoding", "stamp_source", "points_stride", "min_depth", "max_depth",
                 "max_input_pixels", "slop", "rgb_transport", "depth_transport"):
        assert getattr(args, name) == DEFAULTS[name], name
    assert args.resize_rgb_to_multiple == DEFAULTS["resize_rgb_to_multiple"]
    assert args.exact_sync == DEFAULTS["exact_sync"]
    assert (not args.no_points, not args.points_xyz) == (DEFAULTS["publish_points"],
                                                         DEFAULTS["points_rgb"])


def test_run_with_a_baseline_needs_no_checkpoint(tmp_path, input_bag):
    """`--method bicubic` serves without a checkpoint, through the node's predictor loading."""
    from naima_ros.predictors import load_predictor

    out = tmp_path / "out"
    assert main(["--no-progress", "run", str(input_bag), str(out), "--method", "bicubic",
                 "--checkpoint", "/nonexistent_x{scale}.safetensors"]) == 0
    _, msgs_in = by_topic(input_bag)
    _, msgs = by_topic(out)
    bicubic = load_predictor("bicubic", scale=S)
    for (_, d), (_, rgb), (_, image) in zip(msgs_in[T.depth], msgs_in[T.rgb],
                                            sorted(msgs[T.out_image],
                                                   key=lambda m: m[1].header.stamp.sec * 10**9
                                                   + m[1].header.stamp.nanosec)):
        assert image.header == d.header
        got = decode_depth(image.data, image.encoding, H, W, image.step)[0]
        lr, lr_valid = decode_depth(d.data, d.encoding, d.height, d.width, d.step)
        want = bicubic(np.frombuffer(rgb.data, np.uint8).reshape(H, W, 3).copy(),
                       np.where(lr_valid, lr, np.nan))
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
