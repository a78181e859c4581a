"""naima-train: config precedence, loss, schedule, exact resume, kill safety, DDP (gloo, 2 processes)."""

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import numpy as np
import torch
import yaml

from naima_ros.checkpoint import load_checkpoint
from naima_ros.train import (ToFInputs, TrainConfig, gradient_loss, load_config, lr_at, lr_at_epoch, main,
                             training_loss)

REPO = Path(__file__).resolve().parents[1]
TINY = ["--preset=light", "--scale=8", "--dataset=synthetic", "--synthetic_count=4", "--synthetic_size=[96, 128]",
        "--patch=64", "--batch_size=2", "--repeat=1", "--lr=1e-3", "--milestones=[1]", "--seed=3"]


def weights(path):
    model, _ = load_checkpoint(path)
    return {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}


def test_config_precedence_and_validation(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"preset": "light", "epochs": 7, "lr": 1, "milestones": [2, 3]}))
    cfg = load_config(str(path), ["--epochs=9", "--grad-loss=diff"])
    assert (cfg.preset, cfg.epochs, cfg.lr, cfg.milestones, cfg.grad_loss) == ("light", 9, 1.0, (2, 3), "diff")
    with pytest.raises(ValueError, match=r"unknown training config key\(s\) \['epoch'\]"):
        load_config(None, ["--epoch=3"])
    with pytest.raises(ValueError, match="epochs='many': expected int"):
        load_config(None, ["--epochs=many"])
    with pytest.raises(ValueError, match="must look like --key=value"):
        load_config(None, ["epochs"])
    with pytest.raises(ValueError, match="grad_loss must be"):
        load_config(None, ["--grad_loss=laplace"])
    with pytest.raises(ValueError, match="patch 100 must be a multiple of scale 8"):
        load_config(None, ["--patch=100"])
    # the procedural scenes' one name; "synthetic", their earlier one, is still accepted
    cfg = load_config(None, ["--dataset=synthetic", "--val_set=synthetic"])
    assert (cfg.dataset, cfg.val_set) == ("procedural", "procedural")
    with pytest.raises(ValueError, match="unknown val_set 'nyu'"):
        load_config(None, ["--val_set=nyu"])


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "config" / "train").glob("*.yaml")))
def test_shipped_configs_parse(name):
    cfg = load_config(str(REPO / "config" / "train" / f"{name}.yaml"), [])
    if name.startswith("nyu"):  # the paper's recipe, docs/model.md §5
        assert (cfg.preset, cfg.batch_size, cfg.repeat, cfg.epochs, cfg.lr) == ("reference", 1, 2, 200, 1e-4)
        assert (cfg.milestones, cfg.gamma, cfg.grad_loss, cfg.grad_weight) == ((50, 100, 150), 0.3, "sobel", 0.1)
        assert cfg.patch == {4: 420, 8: 448, 16: 448}[cfg.scale]


def test_sobel_gradient_loss_on_a_ramp():
    """pred = x-ramp of slope 1, target 0: Sobel-x response is 8 inside (zero padding changes the border)."""
    pred = torch.arange(6.0).repeat(6, 1)[None, None]
    target = torch.zeros_like(pred)
    loss = gradient_loss(pred, target, "sobel", None)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    gx = torch.nn.functional.conv2d(pred, kx.view(1, 1, 3, 3), padding=1)
    gy = torch.nn.functional.conv2d(pred, kx.t().reshape(1, 1, 3, 3), padding=1)
    assert gx[0, 0, 2, 2] == 8
    assert loss.item() == pytest.approx(gx.abs().mean().item() + gy.abs().mean().item())
    assert gradient_loss(pred, target, "diff", None).item() == pytest.approx(1.0 * 30 / 30 + 0.0)


def test_masked_loss_ignores_invalid_pixels():
    cfg = TrainConfig(preset="light", masked_loss=True, grad_weight=0.0)
    pred, target = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    pred[..., 0, 0] = 100.0
    valid = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    valid[..., 0, 0] = False
    assert training_loss(pred, target, cfg, valid).item() == 0.0
    cfg.masked_loss = False
    assert training_loss(pred, target, cfg, valid).item() == pytest.approx(100 / 16)


def test_rmse_pixel_loss_is_the_masked_rmse():
    cfg = TrainConfig(preset="light", masked_loss=True, grad_weight=0.0, pixel_loss="rmse")
    pred, target = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    pred[..., 0, :2] = torch.tensor([3.0, 4.0])
    valid = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    assert training_loss(pred, target, cfg, valid).item() == pytest.approx((25 / 16) ** 0.5)
    valid[..., 0, 1] = False  # the 4 is not counted
    assert training_loss(pred, target, cfg, valid).item() == pytest.approx((9 / 15) ** 0.5)
    perfect = torch.zeros(1, 1, 4, 4, requires_grad=True)
    training_loss(perfect, target, cfg, valid).backward()
    assert torch.isfinite(perfect.grad).all()
    with pytest.raises(ValueError, match="pixel_loss must be"):
        load_config(None, ["--pixel_loss=huber"])


def test_lr_schedule_equals_multisteplr():
    cfg = TrainConfig()
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    for epoch in range(200):
        assert lr_at_epoch(cfg, epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()


def test_resume_continues_exactly(tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(TINY + ["--epochs=3", f"--out={straight}"]) == 0
    # stopped inside epoch 1: a zero wall-time budget stops after the first optimizer step
    assert main(TINY + ["--epochs=3", "--max_minutes=0", f"--out={resumed}"]) == 0
    assert "wall-time budget of 0 min reached at epoch 1 step 1/2" in capsys.readouterr().out
    training = load_checkpoint(resumed / "last.safetensors")[1]["training"]
    assert (training["epochs_completed"], training["next_epoch"], training["next_step"]) == (0, 0, 1)
    assert training["stopped_early"] is True
    assert main(TINY + ["--epochs=3", f"--out={resumed}"]) == 0
    assert "resuming at epoch 0 step 1" in capsys.readouterr().out
    a, b = weights(straight / "last.safetensors"), weights(resumed / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted run"
    log = (resumed / "log.csv").read_text().splitlines()
    assert len(log) == 5 and (resumed / "training.png").stat().st_size > 0  # header, partial epoch 1, 1, 2, 3


def test_cosine_schedule_with_warmup():
    cfg = TrainConfig(schedule="cosine", lr=1e-3, warmup_steps=4, min_lr_ratio=0.1, epochs=3)
    lrs = [lr_at(cfg, e, s, 10) for e in range(3) for s in range(10)]  # 30 planned steps
    assert lrs[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert lrs[4] == pytest.approx(1e-3)
    # half cosine from lr at step 4 to lr * min_lr_ratio at step 30 (one past the last)
    assert lrs[17] == pytest.approx(1e-4 + 9e-4 * 0.5 * (1 + math.cos(math.pi * 13 / 26)))
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] > 1e-4
    assert lr_at(cfg, 3, 0, 10) == pytest.approx(1e-4)  # past the plan: the floor
    with pytest.raises(ValueError, match="schedule must be"):
        load_config(None, ["--schedule=linear"])


NEW_RECIPE = ["--preset=light_guided", "--model_overrides={encoder: none}", "--schedule=cosine", "--warmup_steps=2",
              "--grad_clip=0.5", "--synthetic_style=benchmark", "--synthetic_inverse_prob=0.5", "--tof_prob=0.5"]


def test_resume_continues_exactly_with_the_new_recipe(tmp_path, capsys):
    """Per-step cosine lr, clipping, benchmark-style/inverse-depth scenes and ToF inputs keep resume exact."""
    args = [a for a in TINY if not a.startswith("--preset")] + NEW_RECIPE + ["--epochs=2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(args + [f"--out={straight}"]) == 0
    assert main(args + ["--max_minutes=0", f"--out={resumed}"]) == 0
    assert main(args + [f"--out={resumed}"]) == 0
    assert "resuming at epoch 0 step 1" in capsys.readouterr().out
    a, b = weights(straight / "last.safetensors"), weights(resumed / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted run"
    meta = load_checkpoint(straight / "last.safetensors")[1]
    assert meta["preset"] == "light_guided" and meta["semantic_encoder"]["name"] == "none"


def test_init_from_starts_a_run_from_a_checkpoint(tmp_path, capsys):
    source = tmp_path / "source"
    assert main(TINY + ["--epochs=1", f"--out={source}"]) == 0
    tuned = tmp_path / "tuned"  # lr 0: the run's weights are exactly the source's
    assert main(TINY + ["--epochs=1", "--lr=0", f"--init_from={source / 'last.safetensors'}", f"--out={tuned}"]) == 0
    a, b = weights(source / "last.safetensors"), weights(tuned / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = ["--model_overrides={upsampler_rcabs: 2}", f"--init_from={source / 'last.safetensors'}"]
    assert main(TINY + ["--epochs=1", *other, f"--out={tmp_path / 'other'}"]) != 0
    assert "holds another model" in capsys.readouterr().err
    # init_partial: a semantic encoder added to the trained trunk; what fits is copied, the projectors are fresh
    added = tmp_path / "added"
    assert main(TINY + ["--epochs=1", "--lr=0", "--init_partial=true", f"--init_from={source / 'last.safetensors'}",
                        "--model_overrides={encoder: efficientnet_lite0, token_shuffle: 1}", f"--out={added}"]) == 0
    assert "tensors copied" in capsys.readouterr().out
    c = weights(added / "last.safetensors")
    assert torch.equal(c["depth_stem.weight"], a["depth_stem.weight"])
    assert torch.equal(c["upsampler.head.weight"], a["upsampler.head.weight"])
    assert c["gtas.0.token_projector.conv3x3.weight"].shape != a["gtas.0.token_projector.conv3x3.weight"].shape
    assert load_checkpoint(added / "last.safetensors")[1]["semantic_encoder"]["pretrained"] is True


def test_tof_inputs_degrade_only_the_lr_input():
    from naima_ros.data.datasets import TrainDataset

    data = TrainDataset(None, scale=8, patch=64, synthetic_count=2, synthetic_size=(96, 128), seed=1)
    tof = ToFInputs(data, prob=1.0, scale=8, seed=1)
    tof.set_epoch(0)
    clean, faulty = data[0], tof[0]
    assert torch.equal(clean["depth_hr"], faulty["depth_hr"]) and torch.equal(clean["rgb"], faulty["rgb"])
    assert not torch.equal(clean["depth_lr"], faulty["depth_lr"])
    assert torch.isfinite(faulty["depth_lr"]).all()
    assert torch.equal(tof[0]["depth_lr"], faulty["depth_lr"])  # a pure function of (seed, epoch, index)


def test_area_lr_synthesis_reaches_training_and_validation():
    """lr_synthesis=area: the training input and the validation input are footprint means of the target."""
    from naima_ros.data.datasets import TrainDataset
    from naima_ros.data.synthetic import generate_scene
    from naima_ros.model.naima import build_model
    from naima_ros.train import validate

    with pytest.raises(ValueError, match="lr_synthesis must be one of antialias, plain, area, got 'box'"):
        load_config(None, ["--lr_synthesis=box"])
    assert load_config(None, ["--lr_synthesis=area"]).lr_synthesis == "area"
    data = TrainDataset(None, scale=8, patch=64, synthetic_count=1, synthetic_size=(96, 128), seed=1,
                        lr_synthesis="area")
    sample = data[0]
    torch.testing.assert_close(sample["depth_lr"], torch.nn.functional.avg_pool2d(sample["depth_hr"], 8))
    frames = [generate_scene(5, 96, 128).to_frame("v")]
    model = build_model("light", 8, seed=0, warn_untrained=False)
    bicubic_input, area_input = (validate(model, frames, 8, torch.device("cpu"), method) for method in
                                 ("antialias", "area"))
    assert bicubic_input["val_rmse_bicubic"] != area_input["val_rmse_bicubic"]


def test_kill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "naima_ros.train"] + TINY + ["--epochs=50", f"--out={out}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (out / "last.resume.safetensors").exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.3)  # somewhere inside a later epoch or a checkpoint write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    model, meta = load_checkpoint(out / "last.safetensors")
    assert meta["training"]["epochs_completed"] >= 1
    assert main(TINY + [f"--epochs={meta['training']['next_epoch'] + 1}", f"--out={out}"]) == 0


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    """torchrun, 2 processes × batch 1 on gloo == 1 process × batch 2 (DDP averages gradients)."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun is installed with torch"
    common = [a for a in TINY if not a.startswith("--batch_size")] + ["--epochs=2", "--masked_loss=false"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "naima_ros.train", *common,
                          "--batch_size=1", f"--out={tmp_path / 'ddp'}"], capture_output=True, text=True,
                         timeout=900, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 process(es)" in res.stdout
    assert main(common + ["--batch_size=2", f"--out={tmp_path / 'single'}"]) == 0
    a, b = weights(tmp_path / "ddp" / "last.safetensors"), weights(tmp_path / "single" / "last.safetensors")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, f"DDP and single-process weights differ by {worst}"


def test_cli_errors_exit_nonzero(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read training config" in capsys.readouterr().err
    assert main(["--dataset=nyu", "--data_path=" + str(tmp_path / "nyu.mat"), f"--out={tmp_path}/o",
                 "--preset=light", "--patch=64"]) == 2
    assert "nyu.mat" in capsys.readouterr().err
    assert main(["--print-config", "--epochs=3"]) == 0
    assert "epochs: 3" in capsys.readouterr().out


def test_sensor_inputs_train_resume_exactly_and_validate_on_the_sensor(tmp_path, capsys):
    """inputs: sensor: simulated ToF LR in metres, the node's normalisation, validity to the model; resume exact."""
    args = TINY + ["--model_overrides={encoder: none, validity_input: true}", "--inputs=sensor", "--sensor_prob=0.8",
                   "--epochs=2", "--val_every=1", "--val_images=2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(args + [f"--out={straight}"]) == 0
    assert main(args + ["--max_minutes=0", f"--out={resumed}"]) == 0
    assert main(args + [f"--out={resumed}"]) == 0
    a, b = weights(straight / "last.safetensors"), weights(resumed / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted run"
    log = (straight / "log.csv").read_text().splitlines()
    assert "val_rmse" in log[0] and len(log) == 3 and log[-1].split(",")[-1] != ""
    assert a["validity_stem.weight"].abs().sum() > 0  # the validity input was used and learned from
    assert main(TINY + ["--inputs=sensor", "--tof_prob=0.5", f"--out={tmp_path / 'x'}"]) == 2
    assert "tof_prob and synthetic_inverse_prob must be 0" in capsys.readouterr().err


def test_sensor_samples_are_what_the_node_prepares(tmp_path):
    """A sensor sample's LR is normalised by its own robust range and the target by the same numbers."""
    from naima_ros.data.datasets import TrainDataset
    from naima_ros.data.synthetic import ProceduralScenes
    from naima_ros.frames import normalisation_range
    from naima_ros.train import SensorInputs

    frames = ProceduralScenes(2, (96, 128), seed=0)
    data = SensorInputs(TrainDataset(list(frames), scale=8, patch=64, seed=1), 1.0, 8, 1, "antialias")
    sample = data[0]
    assert sample["depth_lr"].shape == (1, 8, 8) and sample["valid_lr"].dtype == torch.bool
    lo, hi = (float(v) for v in TrainDataset(list(frames), scale=8, patch=64, seed=1)[0]["minmax"])
    assert torch.isfinite(sample["depth_lr"]).all() and torch.isfinite(sample["depth_hr"]).all()
    valid = sample["valid_lr"][0].numpy()
    # the filled LR keeps the measured values where valid: its robust range maps them to roughly [0, 1]
    assert -0.2 < float(sample["depth_lr"][0][valid].min()) and float(sample["depth_lr"][0][valid].max()) < 1.2
    assert hi > lo and normalisation_range(np.ones((2, 2)), np.ones((2, 2), bool))[1] == 1e-6


def test_relative_rmse_weighs_each_sample_by_its_bicubic_error():
    from naima_ros.train import RELATIVE_FLOOR, relative_rmse

    target = torch.zeros(2, 1, 16, 16)
    depth_lr = torch.zeros(2, 1, 4, 4)
    depth_lr[1] = 0.5  # sample 1's bicubic is 0.5 off everywhere; sample 0's is exact
    pred = torch.full((2, 1, 16, 16), 0.1)
    expected = (0.1 / RELATIVE_FLOOR + 0.1 / (0.5 + RELATIVE_FLOOR)) / 2
    assert relative_rmse(pred, target, None, depth_lr).item() == pytest.approx(expected, rel=1e-4)
    mask = torch.ones_like(pred, dtype=torch.bool)
    mask[:, :, :8] = False  # masked pixels count for neither
    pred[:, :, :8] = 5.0
    assert relative_rmse(pred, target, mask, depth_lr).item() == pytest.approx(expected, rel=1e-4)
