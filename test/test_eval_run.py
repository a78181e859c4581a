"""naima-eval: protocols against independent computations, the CLI on small real-format datasets
and on the shared data, the README's bicubic anchors, outputs, and bad input."""

import csv
import json
import shutil

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from naima_ros.checkpoint import load_checkpoint
from naima_ros.data.common import RGBDFrame
from naima_ros.data import middlebury_lu
from naima_ros.data.registry import DATASETS
from naima_ros.eval import methods as eval_methods
from naima_ros.eval import paper, protocols, run
from naima_ros.inference import Upsampler

H, W = 40, 56  # test images: not multiples of 16, smaller than the reference's smallest square (112)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


# ----------------------------------------------------------------------------- small real-format datasets

def _rgb(rng, h=H, w=W):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth_depth(rng, h, w, lo, hi):
    y, x = np.mgrid[0:h, 0:w]
    depth = lo + (hi - lo) * (0.5 + 0.25 * np.sin(x / 7.0 + rng.random()) + 0.2 * (y / h))
    depth[: h // 2, : w // 3] = lo + 0.1 * (hi - lo)  # a depth edge
    return depth


def write_benchmark(folder, prefix, count, colour_word, rng, size=(H, W)):
    (folder / "RGB").mkdir(parents=True)
    (folder / "Depth").mkdir(parents=True)
    for k in range(1, count + 1):
        Image.fromarray(_rgb(rng, *size)).save(folder / "RGB" / f"{prefix}_{k:02d}_{colour_word}.png")
        depth = np.clip(_smooth_depth(rng, *size, 20, 230), 0, 255).astype(np.uint8)
        Image.fromarray(depth).save(folder / "Depth" / f"{prefix}_{k:02d}_output_depth.png")


def write_rgbdd_pair(folder, stem, rng, with_lr=False):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_rgb(rng)).save(folder / f"{stem}_RGB.jpg")
    depth_mm = (_smooth_depth(rng, H, W, 0.8, 1.4) * 1000).astype(np.uint16)
    depth_mm[3, 3] = 0  # a hole
    Image.fromarray(depth_mm).save(folder / f"{stem}_HR_gt.png")
    if with_lr:
        Image.fromarray(depth_mm[::4, ::4].copy()).save(folder / f"{stem}_LR_fill_depth.png")


def write_shared_root(root, rng):
    """The shared data layout (gdsr_test/...) with tiny images in the real formats."""
    gdsr = root / "gdsr_test"
    write_benchmark(gdsr / "Middlebury", "Middlebury", 2, "output_color", rng)
    write_benchmark(gdsr / "Lu", "RGBD", 1, "ouput_color", rng)  # the widely shared spelling
    nyu = gdsr / "NYUDepthv2_Test"
    (nyu / "RGB").mkdir(parents=True)
    (nyu / "Depth").mkdir(parents=True)
    for index in (1000, 1001):
        Image.fromarray(_rgb(rng)).save(nyu / "RGB" / f"{index}.jpg", quality=95)
        np.save(nyu / "Depth" / f"{index}.npy", _smooth_depth(rng, H, W, 1.0, 4.0).astype(np.float32))
    for k in range(2):
        stem = f"2020050911263{k}"
        folder = gdsr / "RGBDD_Test_Realscene"
        write_rgbdd_pair(folder / "RGB", stem, rng)
        for sub, suffix in (("Depth", "_HR_gt.png"), ("DepthLR", "_LR_fill_depth.png")):
            (folder / sub).mkdir(exist_ok=True)
        (folder / "RGB" / f"{stem}_HR_gt.png").rename(folder / "Depth" / f"{stem}_HR_gt.png")
        depth = np.asarray(Image.open(folder / "Depth" / f"{stem}_HR_gt.png"))
        Image.fromarray(depth[::4, ::4].copy()).save(folder / "DepthLR" / f"{stem}_LR_fill_depth.png")
    return root


def write_nyu_mat(path, rng, h=32, w=40):
    """nyu_depth_v2_labeled.mat: MATLAB v7.3 (HDF5), column-major (1449, 3, W, H) and (1449, W, H)."""
    images = rng.integers(0, 256, (1449, 3, w, h), dtype=np.uint8)
    depths = np.stack([_smooth_depth(rng, h, w, 1.0, 5.0).T for _ in range(3)] * 483).astype(np.float32)
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("images", data=images)
        f.create_dataset("depths", data=depths)
    return path


def write_nyu_npy(folder, rng, count=2):
    folder.mkdir(parents=True)
    depths = np.stack([_smooth_depth(rng, H, W, 1.0, 5.0) for _ in range(count)]).astype(np.float32)
    np.save(folder / "test_images_split.npy", rng.integers(0, 256, (count, 3, H, W), dtype=np.uint8))
    np.save(folder / "test_depths_clipped_split.npy", depths)
    np.save(folder / "test_mask_split.npy", np.ones(depths.shape, bool))
    np.save(folder / "test_minmax_split.npy", np.stack([depths.max((1, 2)), depths.min((1, 2))], 1))  # [max, min]
    return folder


def write_rgbdd_full(root, rng):
    for category in ("models", "plants", "portraits"):
        write_rgbdd_pair(root / category / f"{category}_test" / f"{category}01", f"{category}01", rng, with_lr=True)
    return root


def write_tofdsr(root, rng):
    lines = []
    for k in range(2):
        for sub in ("RGB", "GT", "LR"):
            (root / "Test" / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(_rgb(rng)).save(root / "Test" / "RGB" / f"{k}.jpg")
        depth_mm = (_smooth_depth(rng, H, W, 0.5, 3.0) * 1000).astype(np.uint16)
        Image.fromarray(depth_mm).save(root / "Test" / "GT" / f"{k}.png")
        Image.fromarray(depth_mm[::4, ::4].copy()).save(root / "Test" / "LR" / f"{k}.png")
        lines.append(f"TOFDC_split/Test/RGB/{k}.jpg,TOFDC_split/Test/GT/{k}.png,TOFDC_split/Test/LR/{k}.png")
    (root / "TOFDSR_Test.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    base = tmp_path_factory.mktemp("evaldata")
    return {"shared": write_shared_root(base / "shared", rng), "mat": write_nyu_mat(base / "nyu.mat", rng),
            "npy": write_nyu_npy(base / "nyu_npy", rng), "rgbdd": write_rgbdd_full(base / "RGBDD-Full", rng),
            "tofdsr": write_tofdsr(base / "tofdsr", rng)}


def run_cli(capsys, *argv):
    code = run.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ----------------------------------------------------------------------------- the reference protocol

@pytest.mark.parametrize("hw,side", [((480, 640), 672), ((384, 512), 560), ((368, 456), 560), ((40, 56), 112),
                                     ((112, 112), 112), ((113, 10), 224), ((784, 784), 784)])
def test_reference_pad_side(hw, side):
    assert protocols.reference_pad_side(*hw) == side


def test_reference_pad_side_too_large():
    with pytest.raises(protocols.EvalError, match="larger than the reference protocol's largest square 784"):
        protocols.reference_pad_side(785, 100)


def _pil_lr(array, side_lr):
    """Antialiased bicubic downsampling by PIL (float mode): an implementation independent of torch."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(array, np.float32)).resize((side_lr, side_lr),
                                                                                     Image.BICUBIC))


@pytest.mark.parametrize("scale", [4, 8, 16])
@pytest.mark.parametrize("dataset", ["nyu", "middlebury"])
def test_reference_sample_matches_an_independent_computation(scale, dataset):
    rng = np.random.default_rng(scale)
    rgb = rng.integers(0, 256, (123, 150, 3), dtype=np.uint8)  # modcrop -> multiples of s, pad side 224
    depth = rng.uniform(1, 4, (123, 150)).astype(np.float32)
    minmax = (1.0, 4.0) if dataset == "nyu" else (0.0, 255.0)
    frame = RGBDFrame(name="a", rgb=rgb, depth=depth, valid=np.ones(depth.shape, bool), minmax=minmax,
                          unit="m", rmse_scale=100.0, rmse_unit="cm")
    sample = protocols.prepare_sample(frame, scale, "reference", DATASETS[dataset])
    h, w = 123 - 123 % scale, 150 - 150 % scale
    side = 224
    # Independent: numpy zero padding, PIL's antialiased bicubic for the LR.
    gt = (depth[:h, :w] - minmax[0]) / (minmax[1] - minmax[0])
    gt_pad = np.zeros((side, side), np.float32)
    gt_pad[:h, :w] = gt
    np.testing.assert_allclose(sample.net_lr[0, 0].numpy(), _pil_lr(gt_pad, side // scale), atol=2e-6)
    np.testing.assert_array_equal(sample.base_lr, sample.net_lr[0, 0].numpy())
    rgb01 = rgb[:h, :w].astype(np.float32) / 255
    expected_rgb = np.zeros((3, side, side), np.float32)
    standardised = (rgb01 - IMAGENET_MEAN) / IMAGENET_STD
    expected_rgb[:, :h, :w] = (standardised if dataset == "nyu" else rgb01).transpose(2, 0, 1)
    np.testing.assert_allclose(sample.net_rgb[0].numpy(), expected_rgb, atol=1e-6)
    # The baselines' RGB is padded with the colour the network's zero stands for.
    pad_colour = np.round(IMAGENET_MEAN * 255) if dataset == "nyu" else np.zeros(3)
    np.testing.assert_array_equal(sample.base_rgb[h:, :], np.broadcast_to(pad_colour, (side - h, side, 3)))
    np.testing.assert_array_equal(sample.base_rgb[:h, :w], rgb[:h, :w])
    assert sample.gt_norm.shape == (h, w) and sample.padded
    # The zero padding bleeds into the LR near the bottom/right edges (docs/model.md §6.2).
    corrected = protocols.prepare_sample(frame, scale, "corrected", DATASETS[dataset])
    assert corrected.net_lr.shape[-2:] == (h // scale, w // scale) and not corrected.padded
    expected_lr = np.asarray(Image.fromarray(gt.astype(np.float32)).resize((w // scale, h // scale), Image.BICUBIC))
    np.testing.assert_allclose(corrected.net_lr[0, 0].numpy(), expected_lr, atol=2e-6)
    np.testing.assert_allclose(corrected.net_rgb[0].numpy(), standardised.transpose(2, 0, 1), atol=1e-6)


def test_reference_protocol_runs_the_network_on_the_padded_square(tiny_checkpoint):
    """The network gets the (S, S) pair itself, no further padding; its output is cropped top-left."""
    model, meta = load_checkpoint(tiny_checkpoint(scale=8))
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append((inputs[0].clone(), inputs[1].clone(),
                                                                           output.clone())))
    method = eval_methods.model_method("m", Upsampler(model, meta, device="cpu", precision="fp32"))
    rng = np.random.default_rng(0)
    frame = RGBDFrame(name="a", rgb=rng.integers(0, 256, (90, 100, 3), dtype=np.uint8),
                          depth=rng.uniform(1, 3, (90, 100)).astype(np.float32), valid=np.ones((90, 100), bool),
                          minmax=(1.0, 3.0), unit="m", rmse_scale=100.0, rmse_unit="cm")
    sample = protocols.prepare_sample(frame, 8, "reference", DATASETS["nyu"])
    prediction = method.predict(sample)
    (image, depth, output), = seen
    assert image.shape == (1, 3, 112, 112) and depth.shape == (1, 1, 14, 14)
    assert torch.equal(image, sample.net_rgb) and torch.equal(depth, sample.net_lr)
    assert float(image[..., 88:, :].abs().max()) == 0.0 and float(image[..., 96:].abs().max()) == 0.0
    assert prediction.shape == (88, 96)
    np.testing.assert_array_equal(prediction, output[0, 0, :88, :96].numpy())


# ----------------------------------------------------------------------------- the deployed protocol

def _frame_8bit(rng, h=90, w=100):
    depth = np.clip(_smooth_depth(rng, h, w, 0, 255), 0, 255).astype(np.float32)
    depth[-30:, -40:] = 0.0  # 0 is a value of the 8-bit sets, not a hole: the predictor must see it valid
    return RGBDFrame(name="a", rgb=_rgb(rng, h, w), depth=depth, valid=np.ones((h, w), bool), minmax=(0.0, 255.0),
                     unit="8bit", rmse_scale=1.0, rmse_unit="8bit")


def test_deployed_protocol_normalises_by_the_lr_frame_like_the_node(tiny_checkpoint):
    """Independent: the network on the LR normalised by its own min/max, de-normalised with them."""
    upsampler = Upsampler.from_checkpoint(tiny_checkpoint(scale=8), device="cpu", precision="fp32")
    frame = _frame_8bit(np.random.default_rng(1))
    sample = protocols.prepare_sample(frame, 8, "deployed", DATASETS["middlebury"])
    lr = sample.net_lr[0, 0].double().numpy()  # the GT-normalised LR of the corrected protocol
    assert sample.lr_shift > 0 and (sample.lr_depth > 0).all()
    lo, hi = lr.min(), lr.max()
    lr_own = torch.from_numpy(((lr - lo) / (hi - lo)).astype(np.float32))[None, None]
    rgb = torch.from_numpy((sample.rgb_uint8 / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).permute(2, 0, 1)[None].float()
    expected = upsampler.predict_normalised(rgb, lr_own)[0, 0].double().numpy() * (hi - lo) + lo
    got = eval_methods.model_method("m", upsampler).predict(sample)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # not what the corrected protocol computes (the network sees another normalisation)
    corrected = protocols.prepare_sample(frame, 8, "corrected", DATASETS["middlebury"])
    assert np.abs(eval_methods.model_method("m", upsampler).predict(corrected) - got).max() > 1e-4


def test_deployed_baselines_equal_the_corrected_ones():
    """The baselines are linear in depth, so the per-frame normalisation and the shift cancel."""
    frame = _frame_8bit(np.random.default_rng(2))
    deployed = protocols.prepare_sample(frame, 8, "deployed", DATASETS["middlebury"])
    corrected = protocols.prepare_sample(frame, 8, "corrected", DATASETS["middlebury"])
    for name in ("bicubic", "guided_filter", "jbu"):
        method = eval_methods.baseline_method(name)
        np.testing.assert_allclose(method.predict(deployed), method.predict(corrected), atol=1e-4)


def test_plain_and_area_lr_synthesis():
    frame = _frame_8bit(np.random.default_rng(3), 96, 96)
    sample = protocols.prepare_sample(frame, 8, "corrected", DATASETS["middlebury"], lr_synthesis="plain")
    gt = torch.from_numpy(frame.depth_norm)[None, None]
    plain = torch.nn.functional.interpolate(gt, size=(12, 12), mode="bicubic", align_corners=False)
    np.testing.assert_allclose(sample.net_lr[0, 0].numpy(), plain[0, 0].numpy(), atol=1e-6)
    antialiased = protocols.prepare_sample(frame, 8, "corrected", DATASETS["middlebury"])
    assert np.abs(antialiased.net_lr - sample.net_lr).max() > 1e-3
    reference = protocols.prepare_sample(frame, 8, "reference", DATASETS["middlebury"], lr_synthesis="plain")
    gt_pad = torch.zeros(1, 1, 112, 112)
    gt_pad[..., :96, :96] = gt
    expected = torch.nn.functional.interpolate(gt_pad, size=(14, 14), mode="bicubic", align_corners=False)
    np.testing.assert_allclose(reference.net_lr[0, 0].numpy(), expected[0, 0].numpy(), atol=1e-6)
    area = protocols.prepare_sample(frame, 8, "deployed", DATASETS["middlebury"], lr_synthesis="area")
    footprint_mean = frame.depth_norm.reshape(12, 8, 12, 8).mean(axis=(1, 3))
    np.testing.assert_allclose(area.normalise_depth(area.lr_depth), footprint_mean, atol=1e-5)


@pytest.mark.parametrize("argv,precision", [(["--protocol", "reference"], "fp32"),
                                            (["--protocol", "reference", "--precision", "bf16"], "bf16"),
                                            (["--protocol", "corrected", "--precision", "bf16"], "bf16"),
                                            (["--lr-synthesis", "plain"], "fp32"),
                                            (["--lr-synthesis", "area"], "fp32")])
def test_reference_protocol_runs_fp32_unless_asked(capsys, tmp_path, data, tiny_checkpoint, argv, precision):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "--checkpoint", tiny_checkpoint(scale=8), "--datasets", "lu", "--baselines", "none",
                           "--device", "cpu", "--figures", "0", "--shared-data", data["shared"], "--out", out,
                           "--no-progress", *argv)
    assert code == 0, err
    info = json.loads((out / "run.json").read_text())
    assert info["methods"][0]["precision"] == precision
    assert info["lr_synthesis"] == (argv[1] if argv[0] == "--lr-synthesis" else "antialias")
    assert info["protocol"] == (argv[1] if argv[0] == "--protocol" else "deployed")
    assert info["shave"] == 6


def test_shave_override_is_applied_and_reported(capsys, tmp_path, data):
    """--shave 0 under the deployed protocol gives the anchors protocol's no-shave scoring (bicubic: equal)."""
    results = {}
    for name, argv in (("anchors", ["--protocol", "anchors"]), ("deployed0", ["--shave", "0"])):
        out = tmp_path / name
        code, _, err = run_cli(capsys, "--datasets", "middlebury", "--scales", "8", "--baselines", "bicubic",
                               "--figures", "0", "--shared-data", data["shared"], "--out", out, "--no-progress", *argv)
        assert code == 0, err
        results[name] = [float(r["rmse"]) for r in read_csv(out / "per_image.csv")]
    np.testing.assert_allclose(results["deployed0"], results["anchors"], rtol=1e-4)
    assert "Border shave overridden: 0 px" in (tmp_path / "deployed0" / "results.md").read_text()


# ----------------------------------------------------------------------------- the CLI on small datasets

@pytest.mark.parametrize("protocol", ["deployed", "corrected", "reference"])
def test_cli_on_every_dataset_writes_csv_markdown_and_figures(capsys, tmp_path, data, tiny_checkpoint, protocol):
    out = tmp_path / "out"
    checkpoint = tiny_checkpoint(scale=8)
    code, stdout, err = run_cli(capsys, "--checkpoint", f"tiny={checkpoint}",
                                "--datasets", "middlebury,lu,nyu,rgbdd,tofdsr",
                                "--protocol", protocol, "--shared-data", data["shared"], "--nyu-npy", data["npy"],
                                "--rgbdd-root", data["rgbdd"], "--tofdsr-root", data["tofdsr"], "--figures", "1",
                                "--out", out, "--threads", "1")
    assert code == 0, err
    counts = {"middlebury": 2, "lu": 1, "nyu": 2, "rgbdd": 3, "tofdsr": 2}
    methods = ["bicubic", "guided_filter", "jbu", "tiny"]
    rows = read_csv(out / "per_image.csv")
    assert list(rows[0]) == ["dataset", "image", "method", "scale", "rmse", "unit", "protocol"]
    assert len(rows) == sum(counts.values()) * len(methods)
    for row in rows:
        assert row["scale"] == "8" and row["protocol"] == protocol and np.isfinite(float(row["rmse"]))
        assert row["unit"] == ("8bit" if row["dataset"] in ("middlebury", "lu") else "cm")
    assert {r["image"] for r in rows if r["dataset"] == "lu"} == {"RGBD_01"}
    assert {r["image"] for r in rows if r["dataset"] == "rgbdd"} == {"models/models01", "plants/plants01",
                                                                     "portraits/portraits01"}
    summary = read_csv(out / "summary.csv")
    assert len(summary) == len(counts) * len(methods)
    for entry in summary:
        per_image = [float(r["rmse"]) for r in rows
                     if (r["dataset"], r["method"]) == (entry["dataset"], entry["method"])]
        assert int(entry["images"]) == counts[entry["dataset"]] == len(per_image)
        assert float(entry["rmse"]) == pytest.approx(np.mean(per_image), abs=1e-5)
    markdown = (out / "results.md").read_text()
    assert markdown.strip() in stdout
    for heading in ("## Table 1: NYU v2 / RGB-D-D / TOFDSR (RMSE, cm)", "## Table 2: Middlebury",
                    "## Table 3: Lu"):
        assert heading in markdown
    assert "| NAIMA (paper) | 1.03 | 1.62 | 2.75 |" in markdown and "| NAIMA (paper) | 0.84 | 1.44 | 3.34 |" in markdown
    assert "| Bicubic (literature: PIL, no shave; README) | 2.28 | 3.98 | 6.37 |" in markdown
    assert f"**{protocol}**" in markdown and "UNTRAINED" in markdown
    tiny_mb = next(e for e in summary if (e["dataset"], e["method"]) == ("middlebury", "tiny"))
    assert f"| tiny | — | {float(tiny_mb['rmse']):.2f} | — |" in markdown
    assert "NYU v2 prepared test split (2 images" in markdown
    pngs = sorted(p.name for p in (out / "figures").iterdir())
    assert len(pngs) == 2 * len(counts)  # one strip + one model error map per dataset (first image)
    assert "nyu_x8_0_strip.png" in pngs and "rgbdd_x8_models_models01_tiny_error.png" in pngs
    assert all((out / "figures" / p).read_bytes()[:8] == PNG_MAGIC for p in pngs)
    assert json.loads((out / "run.json").read_text())["protocol"] == protocol


def test_bicubic_row_equals_an_independent_rmse_in_cm(capsys, tmp_path, data):
    """Units and shave: bicubic of the NYU .npy pairs, recomputed with plain torch/numpy."""
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "--datasets", "nyu", "--scales", "4", "--baselines", "bicubic", "--figures", "0",
                           "--shared-data", data["shared"], "--out", out, "--no-progress")
    assert code == 0, err
    rows = read_csv(out / "per_image.csv")
    assert [r["image"] for r in rows] == ["1000", "1001"]
    nyu = data["shared"] / "gdsr_test" / "NYUDepthv2_Test" / "Depth"
    for row in rows:
        depth = np.clip(np.load(nyu / f"{row['image']}.npy"), 0.1, 10.0)
        lo, hi = depth.min(), depth.max()
        gt = torch.from_numpy((depth - lo) / (hi - lo))[None, None]
        lr = torch.nn.functional.interpolate(gt, size=(H // 4, W // 4), mode="bicubic", antialias=True,
                                             align_corners=False)
        up = torch.nn.functional.interpolate(lr, size=(H, W), mode="bicubic", align_corners=False)
        diff = ((up - gt)[0, 0, 6:-6, 6:-6].double().numpy()) * (hi - lo) * 100
        assert float(row["rmse"]) == pytest.approx(np.sqrt(np.mean(diff**2)), rel=1e-5)
        assert row["unit"] == "cm"
    markdown = (out / "results.md").read_text()
    assert "SHARED SUBSET: NYU v2, only the 2 shared test pairs, NOT the 449-image test split" in markdown
    assert "| NYU v2 (shared subset, not the test split) | bicubic | " in markdown


def test_nyu_from_the_official_mat_and_two_scales(capsys, tmp_path, data, tiny_checkpoint):
    out = tmp_path / "out"
    paths = [tmp_path / "tiny_light_x4.safetensors", tmp_path / "tiny_light_x8.safetensors"]
    for scale, path in zip((4, 8), paths):
        shutil.copy(tiny_checkpoint(scale=scale), path)
    code, stdout, err = run_cli(capsys, "--checkpoint", paths[0], "--checkpoint", paths[1],
                                "--datasets", "nyu", "--nyu-mat", data["mat"], "--max-images", "2",
                                "--baselines", "bicubic", "--figures", "0", "--out", out, "--no-progress")
    assert code == 0, err
    rows = read_csv(out / "per_image.csv")
    assert {(r["image"], r["scale"]) for r in rows} == {(i, s) for i in ("1000", "1001") for s in ("4", "8")}
    labels = {r["method"] for r in rows}
    assert labels == {"bicubic", "tiny_light"}  # tiny_light_x4 and tiny_light_x8 share a row
    assert "NYU v2 test split (449 images" in stdout and "first 2 image(s)" in stdout
    assert not (out / "figures").exists()


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("argv,code,message", [
    (["--checkpoint", "/nonexistent/model.safetensors"], 1, "checkpoint not found: /nonexistent/model.safetensors"),
    (["--scales", "5"], 2, "unsupported scale(s) [5]"),
    (["--datasets", "kitti"], 2, "unknown dataset(s) ['kitti']"),
    (["--baselines", "none"], 1, "nothing to evaluate"),
    (["--datasets", "tofdsr"], 1, "dataset tofdsr needs --tofdsr-root"),
    (["--datasets", "rgbdd", "--rgbdd-root", "/nonexistent/RGBDD-Full"], 1,
     "/nonexistent/RGBDD-Full: directory not found"),
    (["--datasets", "nyu", "--nyu-mat", "/nonexistent/nyu.mat"], 1, "/nonexistent/nyu.mat: file not found"),
    (["--datasets", "middlebury", "--shared-data", "/nonexistent"], 1, "Middlebury: directory not found"),
    (["--protocol", "paper"], 2, "invalid choice: 'paper'"),
    (["--max-images", "-1"], 2, "must be >= 0"),
])
def test_bad_input_one_message_non_zero_exit_nothing_written(capsys, tmp_path, data, argv, code, message):
    out = tmp_path / "out"
    argv = [a for a in argv]
    if "--shared-data" not in argv:
        argv += ["--shared-data", str(data["shared"])]
    got, stdout, err = run_cli(capsys, *argv, "--out", out)
    assert got == code
    assert message in err and stdout == ""
    if code == 1:
        assert err.startswith("naima-eval: error: ") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_wrong_scale_and_corrupt_checkpoint(capsys, tmp_path, data, tiny_checkpoint):
    checkpoint = tiny_checkpoint(scale=8)
    code, _, err = run_cli(capsys, "--checkpoint", checkpoint, "--scales", "4,16", "--shared-data", data["shared"],
                           "--out", tmp_path / "a")
    assert code == 1 and f"{checkpoint}: checkpoint is x8, but --scales asks for 4,16" in err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(checkpoint.read_bytes()[:1000])
    code, _, err = run_cli(capsys, "--checkpoint", broken, "--shared-data", data["shared"], "--out", tmp_path / "b")
    assert code == 1 and str(broken) in err and "truncated" in err
    code, _, err = run_cli(capsys, "--checkpoint", f"x={checkpoint}", "--checkpoint", f"x={checkpoint}",
                           "--shared-data", data["shared"], "--out", tmp_path / "c")
    assert code == 1 and "two checkpoints are labelled 'x' at x8" in err
    (tmp_path / "file").write_text("keep")
    code, _, err = run_cli(capsys, "--shared-data", data["shared"], "--out", tmp_path / "file")
    assert code == 1 and "is not a folder" in err and (tmp_path / "file").read_text() == "keep"


def test_failure_mid_run_keeps_earlier_results(capsys, tmp_path, data):
    """A corrupt second image: one message, exit 1, the first image's rows and other files kept."""
    shared = tmp_path / "shared"
    shutil.copytree(data["shared"], shared)
    (shared / "gdsr_test" / "Middlebury" / "Depth" / "Middlebury_02_output_depth.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "--datasets", "lu,middlebury", "--scales", "8", "--baselines", "bicubic",
                           "--shared-data", shared, "--out", out, "--no-progress", "--figures", "0")
    assert code == 1 and "Middlebury_02_output_depth.png" in err and "results so far are in" in err
    rows = read_csv(out / "per_image.csv")
    assert [(r["dataset"], r["image"]) for r in rows] == [("lu", "RGBD_01"), ("middlebury", "Middlebury_01")]
    assert (out / "notes.txt").read_text() == "mine"
    assert "## Table 3: Lu" in (out / "results.md").read_text()


# ----------------------------------------------------------------------------- the shared real data

ANCHOR_DATASETS = {"middlebury": 30, "lu": 6}


def _anchors_measured(summary, method):
    return {d: {int(e["scale"]): round(float(e["rmse"]), 2)
                for e in summary if (e["dataset"], e["method"]) == (d, method)} for d in ANCHOR_DATASETS}


def test_bicubic_reproduces_the_readme_anchors_on_the_real_files(capsys, tmp_path, shared_data):
    out = tmp_path / "anchors"
    code, stdout, err = run_cli(capsys, "--protocol", "anchors", "--datasets", "middlebury,lu", "--scales", "4,8,16",
                                "--baselines", "bicubic,bicubic_pil", "--shared-data", shared_data, "--figures", "0",
                                "--out", out, "--no-progress")
    assert code == 0, err
    summary = read_csv(out / "summary.csv")
    assert {(e["dataset"], int(e["images"])) for e in summary} == set(ANCHOR_DATASETS.items())
    # torch LR (antialiased bicubic) + torch bicubic upsampling: the harness's own bicubic row.
    assert _anchors_measured(summary, "bicubic") == paper.README_BICUBIC_ANCHORS["torch"]
    # PIL for both: the literature's "Bicubic" row.
    assert _anchors_measured(summary, "bicubic_pil") == paper.README_BICUBIC_ANCHORS["pil"]
    assert "| bicubic | 2.23 | 3.92 | 6.28 |" in stdout and "| bicubic | 2.36 | 4.44 | 7.26 |" in stdout
    # The README's third line: PIL both, with the reference's 6-px shave (= the corrected protocol's scoring).
    out = tmp_path / "shave"
    code, _, err = run_cli(capsys, "--protocol", "corrected", "--datasets", "middlebury,lu", "--scales", "4,8,16",
                           "--baselines", "bicubic_pil", "--shared-data", shared_data, "--figures", "0",
                           "--out", out, "--no-progress")
    assert code == 0, err
    assert _anchors_measured(read_csv(out / "summary.csv"), "bicubic_pil") == paper.README_BICUBIC_ANCHORS["pil_shave6"]


def test_reference_protocol_on_the_shared_data(capsys, tmp_path, shared_data, tiny_checkpoint):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "--protocol", "reference", "--checkpoint", f"tiny={tiny_checkpoint(scale=16)}",
                                "--datasets", "middlebury,lu,nyu,rgbdd", "--max-images", "1", "--baselines", "bicubic",
                                "--figures", "1", "--shared-data", shared_data, "--out", out, "--threads", "1",
                                "--no-progress")
    assert code == 0, err
    rows = read_csv(out / "per_image.csv")
    assert {(r["dataset"], r["method"]) for r in rows} == {(d, m) for d in ("middlebury", "lu", "nyu", "rgbdd")
                                                           for m in ("bicubic", "tiny")}
    assert all(np.isfinite(float(r["rmse"])) and r["scale"] == "16" for r in rows)
    assert "only the 3 shared test pairs" in stdout and "only the 3 shared real-scene pairs" in stdout
    assert len(list((out / "figures").glob("*.png"))) == 8
    # The Lu frames really are the "ouput_color" files of the shared set.
    assert middlebury_lu.COLOR_PATTERN.search("RGBD_01_ouput_color.png")
