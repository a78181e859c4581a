"""bench/gpu_check.py: its CPU --smoke mode runs every stage and writes the JSON the GPU run will write."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_mode_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    res = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--smoke", "--out", str(out)],
                         capture_output=True, text=True, timeout=900, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(out.read_text())
    assert report["smoke"] is True and report["device"] == "cpu"
    precision = report["precision"]
    assert [(c["preset"], c["size"]) for c in precision] == [("reference", [56, 56]), ("reference", [112, 112]),
                                                             ("light_guided", [48, 64])]
    for case in precision:
        assert case["fp32_finite"]
        for name in ("fp16", "bf16"):
            assert case[name]["finite"] and 0 <= case[name]["max_rel_to_max_fp32"] < 0.2, (case, name)
    (latency,) = report["latency"]
    assert latency["finite"] and latency["median_ms"] > 0 and latency["network_size"] == [48, 64]
    training = report["training"]
    assert training["steps"] == 2 and training["all_finite"] and len(training["losses"]) == 2
    predictor = report["predictor"]
    assert predictor["frames"] == 3 and predictor["min_finite_share"] > 0.9
    assert set(report["stage_seconds"]) == {"precision", "latency", "training", "predictor"}
