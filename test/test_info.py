"""naima-info: Table 4's parameter counts exactly, docs/model.md's true FLOPs, independent FLOP checks, bad input."""

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from naima_ros import info
from naima_ros.inference import network_size
from naima_ros.model import build_model
from naima_ros.model.naima import check_inputs


def run_info(capsys, *argv):
    code = info.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("scale", [4, 8, 16])
def test_reference_counts_equal_table4_exactly(capsys, scale):
    code, out, _ = run_info(capsys, "--presets", "reference", "--scales", str(scale), "--no-flops")
    assert code == 0
    entry = json.loads(out)["results"][0]
    expected = {4: (40_967_861, 21_876_480), 8: (59_768_501, 21_924_096), 16: (119_930_549, 21_924_096)}[scale]
    assert (entry["params"]["trainable"], entry["params"]["frozen"]) == expected
    assert entry["params"]["matches_table4"] is True
    assert "flops" not in entry
    assert entry["paper_table4_reference_model"]["tflops_thop_macs"] == info.TABLE4[scale]["tflops_thop_macs"]


def test_reference_x4_true_flops_at_420_match_spec(capsys, tmp_path):
    out_file = tmp_path / "info.json"
    code, out, _ = run_info(capsys, "--presets", "reference", "--scales", "4", "--breakdown", "--output", str(out_file))
    assert code == 0
    assert json.loads(out_file.read_text()) == json.loads(out)
    row = json.loads(out)["results"][0]["flops"][0]
    assert row["output_size"] == [420, 420] and row["network_size"] == [420, 420]
    assert row["tflops"] == pytest.approx(3.080, rel=0.01)
    assert row["spec_true_tflops"] == 3.080 and row["paper_table4_tflops_thop_macs"] == 2.7222
    # docs/model.md §2.2's breakdown at x4: DINO 0.054, upsampler 1.566, fusions 0.117 / 0.325 / 0.643.
    parts = row["breakdown_tflops"]
    assert parts["backbone"] == pytest.approx(0.054, abs=0.002)
    assert parts["upsampler"] == pytest.approx(1.566, abs=0.002)
    assert [parts[f"fusions.{i}"] for i in range(3)] == pytest.approx([0.117, 0.325, 0.643], abs=0.002)
    assert sum(parts.values()) == pytest.approx(row["tflops"], rel=1e-3)


def test_meta_count_equals_analytic_conv_and_attention():
    """Independent analytic count of a conv and an attention: 2 FLOPs per MAC, attention's two matmuls."""
    conv = nn.Conv2d(8, 16, 3, padding=1, device="meta")
    x = torch.zeros(1, 8, 20, 30, device="meta")
    q = torch.zeros(1, 1, 50, 24, device="meta")
    k = torch.zeros(1, 1, 70, 24, device="meta")
    with torch.utils.flop_counter.FlopCounterMode(display=False) as counter:
        conv(x)
        F.scaled_dot_product_attention(q, k, k)
    conv_flops = 2 * (8 * 9) * 16 * 20 * 30  # bias adds are not counted by FlopCounterMode
    attention_flops = 2 * 50 * 70 * 24 * 2  # Q K^T and (softmax) V
    assert counter.get_total_flops() == conv_flops + attention_flops


def test_light_flops_on_meta_match_a_real_cpu_count_without_attention():
    """Meta and CPU agree except for attention, which the CPU fused kernel hides from the counter."""
    model_meta = info._build("light", 8, "meta")
    model_cpu = info._build("light", 8, "cpu")
    meta = info.count_flops(model_meta, 112, 112, device="meta")["flops"]
    cpu = info.count_flops(model_cpu, 112, 112, device="cpu")["flops"]
    # Attention FLOPs of the light preset at 112²: DINOv2 at half resolution (56² -> 4x4 = 16 tokens + cls).
    assert meta > cpu
    n, dim, blocks = 17, 384, 12
    dino_attention = blocks * 2 * (2 * n * n * dim)
    assert meta - cpu >= dino_attention


@pytest.mark.parametrize("preset,scale", [("reference", 4), ("naima", 8), ("light", 16)])
def test_network_size_is_the_smallest_size_the_network_accepts(preset, scale):
    """The one padded-size rule (inference.network_size, used by the Upsampler and naima-info) gives
    sizes the network's own input check accepts, and the next smaller multiple is too small."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(preset, scale, warn_untrained=False)
    assert info.network_size is network_size
    m = model.config.size_multiple
    for hw in [(480, 640), (100, 37), (420, 420), (1, 1)]:
        ph, pw = network_size(model.config, *hw)
        assert ph >= hw[0] and pw >= hw[1] and ph % m == 0 and pw % m == 0
        image = torch.zeros(1, 3, ph, pw)
        check_inputs(image, torch.zeros(1, 1, ph // scale, pw // scale), model.config)
        if ph - m >= hw[0]:  # only the minimum side forces more than rounding up
            with pytest.raises(ValueError, match="too small"):
                check_inputs(torch.zeros(1, 3, ph - m, pw), torch.zeros(1, 1, (ph - m) // scale, pw // scale),
                             model.config)


def test_vga_size_is_padded_for_the_reference_preset(capsys):
    code, out, _ = run_info(capsys, "--presets", "naima", "--scales", "4", "--size", "480x640")
    assert code == 0
    row = json.loads(out)["results"][0]["flops"][0]
    assert row["output_size"] == [480, 640] and row["network_size"] == [504, 644]  # multiples of lcm(14, 4) = 28
    assert "spec_true_tflops" not in row and row["flops"] > 0


@pytest.mark.parametrize("argv,message", [
    (["--presets", "bogus"], "unknown preset"),
    (["--scales", "5"], "unknown scale"),
    (["--scales", "x"], "scale 'x' is not valid"),
    (["--size", "480by640"], "is not HxW"),
    (["--size", "0x640"], "1..8192"),
    (["--count-device", "gpu"], "invalid choice"),
])
def test_bad_arguments_exit_non_zero_with_a_message(capsys, argv, message):
    code, out, err = run_info(capsys, *argv)
    assert code != 0
    assert message in err and out == ""


def test_unwritable_output_is_an_error(capsys, tmp_path):
    code, _, err = run_info(capsys, "--presets", "light", "--scales", "8", "--no-flops",
                            "--output", str(tmp_path / "missing" / "dir" / "info.json"))
    assert code == 1 and "cannot write" in err
