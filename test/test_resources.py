"""Checkpoint lookup shared by the node and the bag tools (ROS-free)."""
from pathlib import Path

import pytest

from naima_ros.resources import SHIPPED_CHECKPOINTS, resolve_checkpoint


def test_resolve_checkpoint_placeholder_cwd_and_share_dirs(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "m_x4.safetensors"
    target.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("models/m_x{scale}.safetensors", 4) == tmp_path / target.relative_to(
        tmp_path)
    assert resolve_checkpoint(str(target), 8) == target  # absolute, no placeholder
    with pytest.raises(FileNotFoundError) as err:
        resolve_checkpoint("checkpoints/absent_x{scale}.safetensors", 16)
    message = str(err.value)
    assert "checkpoints/absent_x16.safetensors" in message
    # looked in the current directory, the venv's share/naima_ros and the source tree
    assert str(tmp_path) in message and "share/naima_ros" in message
    assert str(Path(__file__).resolve().parents[1]) in message
    with pytest.raises(ValueError, match="placeholder"):
        resolve_checkpoint("m_{size}.safetensors", 8)


def test_shipped_names_the_package_model_of_each_scale():
    for scale, name in SHIPPED_CHECKPOINTS.items():
        path = resolve_checkpoint("shipped", scale)
        assert path.is_file() and path.as_posix().endswith(name)
    with pytest.raises(FileNotFoundError, match="no shipped checkpoint for x2"):
        resolve_checkpoint("shipped", 2)


def test_the_shipped_x8_and_x16_are_semantics_aware_with_the_pretrained_encoder():
    pytest.importorskip("torch", reason="loading a checkpoint needs torch (the Jazzy CI venv has none)")
    from naima_ros.checkpoint import load_checkpoint

    for scale in (8, 16):
        name = SHIPPED_CHECKPOINTS[scale]
        model, meta = load_checkpoint(resolve_checkpoint("shipped", scale), expect_scale=scale)
        assert meta["preset"] == "light" and meta["semantic_encoder"]["name"] == "efficientnet_lite0", name
        assert meta["semantic_encoder"]["pretrained"] is True, name
        assert model.config.scale == scale


def test_the_x8_models_were_trained_for_the_lr_they_are_documented_for():
    """The benchmark x8 (the default until issue 19) learned bicubic LR (the benchmarks'); the _area x8 footprint
    means (a ToF pixel's; docs/results.md)."""
    pytest.importorskip("torch", reason="loading a checkpoint needs torch (the Jazzy CI venv has none)")
    from naima_ros.checkpoint import load_checkpoint

    for name, lr_synthesis in (("naima_semantic_x8", "antialias"), ("naima_semantic_x8_area", "area")):
        model, meta = load_checkpoint(resolve_checkpoint(f"checkpoints/{name}.safetensors", 8), expect_scale=8)
        assert meta["training"]["config"].get("lr_synthesis", "antialias") == lr_synthesis
        assert meta["semantic_encoder"]["pretrained"] is True


def test_the_shipped_models_learned_mostly_clean_lr_and_sensor_input_and_carry_a_calibration():
    """`shipped` is the mixed models (results/sensor/README.md): sensor inputs with at most 30 % simulated ToF in
    their last stage, the validity input channel, and their own confidence calibration; `sensor` learned more ToF."""
    pytest.importorskip("torch", reason="loading a checkpoint needs torch (the Jazzy CI venv has none)")
    from naima_ros.checkpoint import load_checkpoint
    from naima_ros.resources import SENSOR_CHECKPOINTS

    for scale in (4, 8, 16):
        model, shipped = load_checkpoint(resolve_checkpoint("shipped", scale), expect_scale=scale)
        _, sensor = load_checkpoint(resolve_checkpoint(SENSOR_CHECKPOINTS[scale], scale), expect_scale=scale)
        last, before = shipped["training"]["config"], sensor["training"]["config"]
        assert last["inputs"] == before["inputs"] == "sensor"
        assert last["sensor_prob"] <= 0.3 < before["sensor_prob"]
        assert model.config.validity_input is True
        assert "confidence" in shipped and "confidence" in sensor
