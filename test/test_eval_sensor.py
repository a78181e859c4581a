"""naima-eval --protocol sensor: simulated and real ToF input, scored in metres; the numbers by hand."""

import csv

import numpy as np
import pytest

from naima_ros.confidence import Prediction
from naima_ros.eval import run
from naima_ros.eval.sensor import metric_frame, score_frame, sensor_seed

from test_eval_run import write_shared_root  # the shared data layout with tiny images


def test_score_frame_by_hand():
    depth = np.full((16, 16), 2.0)
    valid = np.ones((16, 16), bool)
    lr = np.full((4, 4), 2.0, np.float32)
    lr[1, 1] = np.nan  # a hole: ground truth under it is the 4x4 block at rows 4-7, cols 4-7
    pred = np.full((16, 16), 2.0, np.float32)
    pred[4:8, 4:8] = 2.1  # 10 cm off in the hole
    pred[0, 0] = 2.03  # in the 1-px border: shaved, not scored
    pred[10, 10] = 2.05  # 5 cm off elsewhere, scored
    confidence = np.full((16, 16), 0.9, np.float32)
    confidence[4:8, 4:6] = 0.2  # half of the hole below min_confidence
    scores = score_frame(Prediction(pred, confidence), depth, valid, lr, min_confidence=0.5, shave=1)
    inner = 14 * 14
    assert scores["rmse_cm"] == pytest.approx(np.sqrt((16 * 0.1**2 + 0.05**2) / inner) * 100, rel=1e-5)
    assert scores["rmse_holes_cm"] == pytest.approx(10.0, rel=1e-5)
    assert scores["rmse_measured_cm"] == pytest.approx(np.sqrt(0.05**2 / (inner - 16)) * 100, rel=1e-5)
    assert scores["hole_share"] == pytest.approx(16 / inner)
    assert scores["holes_published"] == pytest.approx(0.5)
    conf, err, ok = scores["pixels"]
    assert len(conf) == inner and ok.sum() == inner - 16  # 10 cm > 2 cm + 2 % of 2 m


def test_metric_frames_and_seeds():
    from naima_ros.data.common import RGBDFrame

    frame = RGBDFrame("x", np.zeros((20, 22, 3), np.uint8), np.full((20, 22), 100.0, np.float32),
                      np.ones((20, 22), bool), (0.0, 255.0), "8bit", 1.0, "8bit")
    rgb, depth, valid = metric_frame(frame, 8)
    assert rgb.shape == (16, 16, 3) and np.allclose(depth, 2.0) and valid.all()  # 0.02 m per 8-bit unit
    assert sensor_seed("lu", 0, 0, 8) != sensor_seed("lu", 0, 1, 8) != sensor_seed("nyu", 0, 0, 8)


def test_sensor_protocol_end_to_end(tmp_path, capsys, tiny_checkpoint):
    shared = write_shared_root(tmp_path / "shared", np.random.default_rng(0))
    out = tmp_path / "out"
    code = run.main(["--protocol", "sensor", "--checkpoint", f"tiny={tiny_checkpoint(scale=4)}", "--scales", "4",
                     "--datasets", "lu,nyu,rgbdd", "--draws", "1", "--conditions", "footprint,tof",
                     "--shared-data", str(shared), "--out", str(out), "--no-progress", "--device", "cpu"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    for name in ("sensor_per_image.csv", "sensor_summary.csv", "sensor_confidence.csv", "sensor_results.md",
                 "sensor_reliability.png", "sensor_run.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "sensor_per_image.csv").open()))
    methods = {r["method"] for r in rows}
    assert methods == {"bicubic", "guided_filter", "jbu", "tiny"}
    conditions = {(r["dataset"], r["condition"]) for r in rows}
    assert ("lu", "tof") in conditions and ("nyu", "footprint") in conditions and ("rgbdd", "real") in conditions
    assert ("rgbdd", "tof") not in conditions  # images with a real sensor's LR are scored on it only
    assert all(float(r["rmse_cm"]) > 0 for r in rows)
    assert "## x4: RMSE (cm)" in printed.out and "| tof (" in printed.out


def test_sensor_protocol_bad_input_is_one_message(tmp_path, capsys):
    shared = write_shared_root(tmp_path / "shared", np.random.default_rng(0))
    code = run.main(["--protocol", "sensor", "--baselines", "bicubic_pil", "--datasets", "lu",
                     "--shared-data", str(shared), "--out", str(tmp_path / "o")])
    assert code == 1 and "bicubic_pil is a paper-protocol row" in capsys.readouterr().err
    assert run.main(["--protocol", "sensor", "--conditions", "rain", "--out", str(tmp_path / "o")]) == 2
