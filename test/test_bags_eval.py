"""`naima-bag eval`: scores, latency, drops, units and the report, on bags with known outputs."""
import csv

import numpy as np
import pytest

from naima_ros.bags.cli import main
from naima_ros.bags.evaluate import baseline_predictions, evaluate_bag
from naima_ros.bags.io import TYPESTORE, BagReader, BagWriter, Topics, decode_depth_msg, depth_msg
from naima_ros.bags.make import LRConfig, TimingConfig, make_bag
from naima_ros.data.common import frame_from_metres
from naima_ros.eval.metrics import rmse

W, H, S = 64, 48, 8
T = Topics()
LATENCY_NS = 50_000_000


def frames(n=4):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for i in range(n):
        depth = (1.0 + 0.03 * xx + 0.01 * yy + 0.1 * i).astype(np.float32)
        depth[10:30, 20:40] = 0.8  # an object in front: a depth edge for the baselines
        out.append(frame_from_metres(f"f{i}", rng.integers(0, 256, (H, W, 3), dtype=np.uint8), depth,
                                     (50.0, 50.0, 31.5, 23.5)))
    return out


def fake_node_bag(tmp_path, encoding="16UC1", skip=(1,), output=lambda gt: gt, diag=None):
    """Inputs from `make`, plus outputs as a node would record them: output(GT), 50 ms later."""
    src = tmp_path / f"in_{encoding}"
    make_bag(src, [frames()], lr=LRConfig(S, encoding), timing=TimingConfig(drop_rate=0.0),
             progress=False)
    out = tmp_path / f"out_{encoding}"
    with BagReader(src) as reader, BagWriter(out, custom_data=reader.custom_data) as writer:
        writer.declare(T.out_image, "sensor_msgs/msg/Image")  # as run and replay do
        gts, depth_logs = {}, []
        for conn, log_ns, raw in reader.raw_messages():
            writer.write_raw(conn.topic, conn.msgtype, log_ns, raw)
            msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == T.gt:
                gts[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
            elif conn.topic == T.depth:
                depth_logs.append((log_ns, msg))
        for i, (log_ns, d) in enumerate(depth_logs):
            if i in skip:
                continue
            gt_m, _ = decode_depth_msg(gts[(d.header.stamp.sec, d.header.stamp.nanosec)], T.gt)
            writer.write(T.out_image, depth_msg(d.header, output(gt_m), "32FC1"),
                         log_ns + LATENCY_NS)
        if diag:
            writer.write(T.diagnostics, diag, depth_logs[-1][0] + 10**9)
    return out


def diagnostics(**drops):
    t = TYPESTORE.types
    kv = t["diagnostic_msgs/msg/KeyValue"]
    values = [kv(key="frames_published", value="3")] + [
        kv(key=f"dropped.{k}", value=str(v)) for k, v in drops.items()]
    status = t["diagnostic_msgs/msg/DiagnosticStatus"](level=0, name="/naima: depth",
                                                       message="ok", hardware_id="cpu",
                                                       values=values)
    from naima_ros.bags.io import header
    return t["diagnostic_msgs/msg/DiagnosticArray"](header=header(1, ""), status=[status])


def test_perfect_output_scores_zero_and_baselines_match_direct_calls(tmp_path):
    ev = evaluate_bag(fake_node_bag(tmp_path), progress=False)
    assert ev.unit == "mm" and ev.scale == S
    assert [f.served for f in ev.frames] == [True, False, True, True]
    assert [f.name for f in ev.frames] == ["f0", "f1", "f2", "f3"]
    for f in ev.served:
        assert f.rmse["naima"] < 0.01 and f.mae["naima"] < 0.01  # mm: float32 rounding only
        assert f.coverage["naima"] == 1.0
        assert f.latency_ms == pytest.approx(LATENCY_NS / 1e6)
        assert f.rmse["bicubic"] > 1.0 and f.rmse["guided_filter"] > 1.0
    # the baselines on frame 0, recomputed here from the same arrays
    fr = frames()[0]
    gt_mm = np.rint(fr.depth_m * 1000) / 1000  # the 16UC1 ground truth
    from naima_ros.bags.make import lr_from_gt
    lr = np.rint(lr_from_gt(fr.depth_m, fr.rgb, LRConfig(S), np.random.default_rng(0)) * 1000)
    lr = (lr / 1000).astype(np.float32)
    preds = baseline_predictions(fr.rgb, lr, min_depth=0.1, max_depth=10.0)
    want = rmse(preds["bicubic"].depth * 1000, gt_mm * 1000)
    assert ev.frames[0].rmse["bicubic"] == pytest.approx(want, rel=1e-4)
    assert ev.mean("rmse", "naima") < 0.01
    assert ev.mean("rmse", "bicubic") == pytest.approx(
        np.mean([f.rmse["bicubic"] for f in ev.served]))


def test_coverage_units_and_diagnostics(tmp_path):
    def half(gt):
        out = gt.copy()
        out[:, : W // 2] = np.nan
        return out + 0.01  # 1 cm off where valid
    bag = fake_node_bag(tmp_path, encoding="32FC1", skip=(), output=half,
                        diag=diagnostics(superseded=2, size_mismatch=1))
    ev = evaluate_bag(bag, progress=False)
    assert ev.unit == "m"
    assert len(ev.served) == 4
    for f in ev.served:
        assert f.coverage["naima"] == pytest.approx(0.5)
        assert f.rmse["naima"] == pytest.approx(0.01, abs=1e-5)
        assert f.mae["naima"] == pytest.approx(0.01, abs=1e-5)
        assert f.coverage["bicubic"] == 1.0
    assert ev.node_drops == {"superseded": 2, "size_mismatch": 1}
    assert "superseded 2" in ev.table()


def test_cli_eval_writes_the_report(tmp_path, capsys):
    bag = fake_node_bag(tmp_path)
    report = tmp_path / "report"
    assert main(["--no-progress", "eval", str(bag), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    for word in ("naima", "bicubic", "guided_filter", "RMSE mm", "latency (ms): p50 50",
                 "4 depth frames in the bag, 3 served, 1 dropped"):
        assert word in printed
    for name in ("report.md", "frames.csv", "per_frame_error.png", "latency_hist.png",
                 "strip.png"):
        assert (report / name).stat().st_size > 0, name
    for name in ("per_frame_error.png", "latency_hist.png", "strip.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (report / "report.md").read_text()
    assert "| naima | 3 |" in md and "![qualitative strip](strip.png)" in md
    rows = list(csv.DictReader((report / "frames.csv").open()))
    assert [r["served"] for r in rows] == ["1", "0", "1", "1"]
    assert float(rows[0]["latency_ms"]) == pytest.approx(50.0)
    assert rows[1]["rmse_naima_mm"] == ""
    assert not list(report.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_cli_eval_scores_the_baselines_asked_for(tmp_path, capsys):
    bag = fake_node_bag(tmp_path)
    report = tmp_path / "report"
    assert main(["--no-progress", "eval", str(bag), "--report", str(report), "--baselines", "jbu"]) == 0
    printed = capsys.readouterr().out
    assert "jbu" in printed and "bicubic" not in printed and "guided_filter" not in printed
    rows = list(csv.DictReader((report / "frames.csv").open()))
    assert "rmse_jbu_mm" in rows[0] and "rmse_bicubic_mm" not in rows[0]
    assert float(rows[0]["rmse_jbu_mm"]) > 1.0 and float(rows[0]["coverage_naima"]) == 1.0
    with pytest.raises(SystemExit):
        main(["eval", str(bag), "--report", str(report), "--baselines", "dctnet"])
    assert "unknown baseline(s) dctnet" in capsys.readouterr().err


def test_bad_bags_give_clear_errors(tmp_path, capsys):
    src = tmp_path / "in"
    make_bag(src, [frames(2)], progress=False)
    assert main(["eval", str(src), "--report", str(tmp_path / "r")]) == 2
    assert "/depth_registered/image_rect (--out-image-topic)" in capsys.readouterr().err
    bag = fake_node_bag(tmp_path)
    assert main(["eval", str(bag), "--report", str(tmp_path / "r"), "--gt-topic", "/gt"]) == 2
    assert "no topic /gt (--gt-topic)" in capsys.readouterr().err
    # a ground truth in an encoding nobody knows
    odd = tmp_path / "odd"
    with BagReader(bag) as reader, BagWriter(odd) as writer:
        for conn, log_ns, raw in reader.raw_messages():
            if conn.topic == T.gt:
                msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
                msg.encoding = "8UC3"
                raw = TYPESTORE.serialize_cdr(msg, conn.msgtype)
            writer.write_raw(conn.topic, conn.msgtype, log_ns, raw)
    assert main(["eval", str(odd), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "topic /depth_gt/image_rect" in err and "8UC3" in err
    assert main(["eval", str(bag), "--report", str(tmp_path / "r"), "--strip-frame",
                 "middle"]) == 2
    assert "--strip-frame" in capsys.readouterr().err


def test_a_node_that_served_nothing_still_gets_a_report(tmp_path, capsys):
    bag = fake_node_bag(tmp_path, skip=(0, 1, 2, 3))
    report = tmp_path / "report"
    assert main(["--no-progress", "eval", str(bag), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "4 depth frames in the bag, 0 served, 4 dropped by the node (100%)" in printed
    md = (report / "report.md").read_text()
    assert "| naima | 0 | nan |" in md and "strip.png" not in md and "RMSE (mm)" in md
    assert (report / "latency_hist.png").is_file()


def compress_inputs(raw_bag, tmp_path):
    """The same recording with its inputs as image_transport records them: lossless PNG RGB on
    <rgb>/compressed and 16UC1 compressedDepth on <depth>/compressedDepth."""
    from naima_ros.bags.io import COMPRESSED_IMAGE, decode_rgb_msg
    from naima_ros.image_transport import encode_compressed_color, encode_compressed_depth

    out = tmp_path / "compressed_inputs"
    make = TYPESTORE.types[COMPRESSED_IMAGE]
    with BagReader(raw_bag) as reader, BagWriter(out, custom_data=reader.custom_data) as writer:
        for conn, log_ns, raw in reader.raw_messages():
            if conn.topic not in (T.rgb, T.depth):
                writer.write_raw(conn.topic, conn.msgtype, log_ns, raw)
                continue
            msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == T.rgb:
                topic, payload = f"{T.rgb}/compressed", encode_compressed_color(decode_rgb_msg(msg, T.rgb), "png")
            else:
                topic, payload = f"{T.depth}/compressedDepth", encode_compressed_depth(
                    decode_depth_msg(msg, T.depth)[0], "16UC1")
            writer.write(topic, make(header=msg.header, format=payload.format,
                                     data=np.frombuffer(payload.data, np.uint8)), log_ns)
    return out


def test_compressed_inputs_score_as_the_raw_recording(tmp_path, capsys):
    raw_bag = fake_node_bag(tmp_path, skip=())
    compressed = compress_inputs(raw_bag, tmp_path)
    raw = evaluate_bag(raw_bag, progress=False, baselines=("bicubic", "guided_filter"))
    ev = evaluate_bag(compressed, progress=False, baselines=("bicubic", "guided_filter"),
                      rgb_transport="compressed", depth_transport="compressedDepth")
    assert ev.scale == S and len(ev.served) == len(raw.served) == 4
    for a, b in zip(ev.served, raw.served):
        assert a.rmse.keys() == b.rmse.keys() == {"naima", "bicubic", "guided_filter"}
        for method in a.rmse:  # lossless transports: the baselines see the same inputs
            assert a.rmse[method] == pytest.approx(b.rmse[method], rel=1e-6, abs=1e-6), method
    from naima_ros.bags.io import BagError
    with pytest.raises(BagError, match="has no topic /rgb/image_rect_color"):  # read as raw: no inputs
        evaluate_bag(compressed, progress=False)
    assert main(["eval", str(compressed), "--report", str(tmp_path / "rep"), "--no-progress",
                 "--rgb-transport", "compressed", "--depth-transport", "compressedDepth"]) == 0
    assert "guided_filter" in capsys.readouterr().out


def test_unserved_frames_the_node_never_counted_are_called_lost_on_the_way(tmp_path):
    """One frame is not served (skip=(1,)): explained by a counted drop, or flagged as lost between processes
    when the node's diagnostics count none; without diagnostics nothing is claimed."""
    counted = evaluate_bag(fake_node_bag(tmp_path / "a", diag=diagnostics(superseded=1)), progress=False)
    assert counted.never_reached() == "" and "never counted" not in counted.table()
    lost = evaluate_bag(fake_node_bag(tmp_path / "b", diag=diagnostics()), progress=False)
    assert lost.node_drops == {}
    assert lost.never_reached().startswith("1 unserved frame(s) the node never counted as a drop")
    assert "Fast DDS profile" in lost.table()
    silent = evaluate_bag(fake_node_bag(tmp_path / "c"), progress=False)
    assert silent.node_drops is None and silent.never_reached() == ""


def test_min_confidence_outside_0_1_is_a_clear_error(tmp_path, capsys):
    bag = fake_node_bag(tmp_path)
    assert main(["eval", str(bag), "--report", str(tmp_path / "r"), "--min-confidence", "1.5"]) == 2
    assert "--min-confidence must be in [0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
