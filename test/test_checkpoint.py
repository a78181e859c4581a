"""Checkpoints: exact round trip, seeded backbone regeneration, clear errors, atomic writes, naima-convert."""

import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from naima_ros.checkpoint import (CheckpointError, atomic_write, check_checkpoint, load_checkpoint, read_metadata,
                                  save_checkpoint, use_seeded_backbone)
from naima_ros.model import build_model
from naima_ros import convert_cli as convert_mod
from parity_fill import filled_reference_state_dict, load_fixture, reference_keys


@pytest.fixture(scope="module")
def light_model():
    model = build_model("light", 8, seed=1, warn_untrained=False)
    return use_seeded_backbone(model, 3)


def test_round_trip_is_exact_and_backbone_is_regenerated(tmp_path, light_model):
    path = tmp_path / "m.safetensors"
    meta = save_checkpoint(path, light_model, preset="light", training={"epochs": 2}, metrics={"rmse": 1.5})
    assert meta["backbone"] == {"identity": light_model.backbone_identity, "seed": 3, "stored": False}
    # the random backbone is not stored: the file is far smaller than the model
    assert os.path.getsize(path) < 4 * sum(p.numel() for p in light_model.parameters()) / 2
    loaded, meta2 = load_checkpoint(path)
    assert meta2["training"] == {"epochs": 2} and meta2["metrics"] == {"rmse": 1.5}
    assert meta2["config"] == light_model.config.to_dict()
    a, b = light_model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "UNTRAINED" in loaded.backbone_identity


def test_overrides_are_recorded_and_rebuilt(tmp_path):
    model = build_model("naima", 4, warn_untrained=False, num_feats=16, gta_rcabs=1, upsampler_groups=1)
    save_checkpoint(tmp_path / "o.safetensors", model, preset="naima")
    meta = read_metadata(tmp_path / "o.safetensors")
    assert meta["overrides"] == {"num_feats": 16, "gta_rcabs": 1, "upsampler_groups": 1}
    loaded, _ = load_checkpoint(tmp_path / "o.safetensors")
    assert loaded.config == model.config
    assert loaded.backbone.pos_embed.shape == model.backbone.pos_embed.shape  # stored backbone


# check_checkpoint makes load_checkpoint's checks without reading a weight: both must refuse alike
LOADERS = pytest.mark.parametrize("load", [load_checkpoint, check_checkpoint], ids=["load", "header"])


@LOADERS
def test_expected_scale_and_preset(tmp_path, light_model, load):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, light_model, preset="light")
    with pytest.raises(CheckpointError, match=r"m.safetensors: checkpoint is x8, expected x4"):
        load(path, expect_scale=4)
    with pytest.raises(CheckpointError, match=r"preset is 'light', expected 'naima'"):
        load(path, expect_preset="naima")


def test_header_check_accepts_what_loads(tmp_path, light_model):
    """The seeded random backbone is not stored: the header check, too, regenerates its keys."""
    path = tmp_path / "m.safetensors"
    meta = save_checkpoint(path, light_model, preset="light")
    assert meta["backbone"]["seed"] is not None
    assert check_checkpoint(path, expect_scale=8, expect_preset="light") == load_checkpoint(path)[1]


def test_missing_truncated_corrupt_and_foreign_files(tmp_path, light_model):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*absent.safetensors"):
        load_checkpoint(tmp_path / "absent.safetensors")
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, light_model, preset="light")
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.safetensors"):
        load_checkpoint(tmp_path / "trunc.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="garbage.safetensors: not a readable safetensors"):
        load_checkpoint(tmp_path / "garbage.safetensors")
    with open(tmp_path / "pickle.safetensors", "wb") as f:
        pickle.dump({"a": 1}, f)
    with pytest.raises(CheckpointError, match="pickle.safetensors"):
        load_checkpoint(tmp_path / "pickle.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="without naima metadata"):
        load_checkpoint(tmp_path / "foreign.safetensors")


@LOADERS
def test_missing_keys_and_wrong_shapes_are_named(tmp_path, light_model, load):
    path = tmp_path / "m.safetensors"
    meta = save_checkpoint(path, light_model, preset="light")
    from safetensors.torch import load_file

    state = load_file(str(path))
    del state["upsampler.head.bias"]
    save_file(state, str(tmp_path / "missing.safetensors"), metadata={"naima": json.dumps(meta)})
    with pytest.raises(CheckpointError, match=r"missing.safetensors: keys do not match: 1 missing .*head.bias"):
        load(tmp_path / "missing.safetensors")
    state = load_file(str(path))
    state["upsampler.head.bias"] = torch.zeros(3)
    save_file(state, str(tmp_path / "shape.safetensors"), metadata={"naima": json.dumps(meta)})
    expected = r"shape.safetensors: tensor shapes do not match.*upsampler.head.bias.* of a light x8 model"
    with pytest.raises(CheckpointError, match=expected):
        load(tmp_path / "shape.safetensors")
    bad = dict(meta, preset="huge")
    save_file(load_file(str(path)), str(tmp_path / "preset.safetensors"), metadata={"naima": json.dumps(bad)})
    with pytest.raises(CheckpointError, match="unknown preset 'huge'"):
        load(tmp_path / "preset.safetensors")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def fail(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temporary left behind
    atomic_write(path, lambda tmp: open(tmp, "wb").write(b"new"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o666 & ~umask


def test_naima_convert_reference_pth_reproduces_parity(tmp_path, capsys):
    sd = filled_reference_state_dict(4)
    torch.save({"model": sd, "optimizer": {}, "epoch": 200}, tmp_path / "last.pth")
    out = tmp_path / "ref_x4.safetensors"
    assert convert_mod.main([str(tmp_path / "last.pth"), str(out), "--scale", "4"]) == 0
    model, meta = load_checkpoint(out)
    assert meta["preset"] == "reference" and meta["backbone"]["stored"] is True
    fx = load_fixture(4)
    with torch.inference_mode():
        assert (model(fx["rgb"], fx["depth"]) - fx["output"]).abs().max() <= 1e-4


def test_naima_convert_errors_exit_nonzero(tmp_path, capsys):
    sd = filled_reference_state_dict(4)
    torch.save(sd, tmp_path / "x4.pth")
    assert convert_mod.main([str(tmp_path / "x4.pth"), str(tmp_path / "o.safetensors"), "--scale", "8"]) == 2
    assert "does not match the reference x8 model" in capsys.readouterr().err
    assert convert_mod.main([str(tmp_path / "nope.pth"), str(tmp_path / "o.safetensors"), "--scale", "4"]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
    assert len(reference_keys(4)) == len(sd)
