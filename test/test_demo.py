"""The one-command demo, end to end over real DDS, with a tiny checkpoint and a short sequence."""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # 1..100: unique per test process
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"  # older distros

import pytest  # noqa: E402

from naima_ros import demo  # noqa: E402
from naima_ros.bags.io import BagReader, Topics  # noqa: E402

pytestmark = pytest.mark.ros


def test_demo_makes_replays_evaluates_and_reports(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "demo"
    rc = demo.main(["--out", str(out), "--checkpoint", str(tiny_checkpoint(scale=8)),
                    "--frames", "3", "--size", "64x48", "--rate", "1", "--no-progress"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    for text in ("[1/3] sample bag", "[2/3] replayed over DDS", "[3/3] evaluated", "naima",
                 "bicubic", "guided_filter", "latency (ms)", "dropped by the node", "report:"):
        assert text in printed.out, text
    with BagReader(out / "sample_bag") as reader:
        assert "motorcycle" in reader.frame_names().values()
    with BagReader(out / "replayed_bag") as reader:
        assert reader.message_counts.get(Topics().out_image, 0) >= 1
    report = out / "report"
    for name in ("report.md", "frames.csv", "per_frame_error.png", "latency_hist.png",
                 "strip.png"):
        assert (report / name).is_file(), name
    assert "motorcycle" in (report / "frames.csv").read_text()


def test_demo_without_its_checkpoint_says_so(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--checkpoint",
                      str(tmp_path / "missing.safetensors")]) == 1
    assert "missing.safetensors does not exist" in capsys.readouterr().err


def test_demo_default_checkpoint_missing_is_a_clear_message(tmp_path, capsys, monkeypatch):
    """A checkout without the committed demo checkpoint (or an install without it)."""
    import naima_ros.bags.run as run
    from naima_ros.bags.io import BagError

    def missing(scale):
        raise BagError(f"checkpoint 'checkpoints/naima_light_x{scale}_demo.safetensors' not "
                       f"found; pass --checkpoint")
    monkeypatch.setattr(run, "default_checkpoint", missing)
    assert demo.main(["--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "naima_light_x8_demo.safetensors" in err and "--checkpoint" in err
    assert not (tmp_path / "o").exists()  # nothing started, nothing written
