"""``naima-info``: parameter counts and true FLOPs per preset and scale, as JSON, beside Table 4.

docs/model.md §2. For every preset and scale this prints the trainable and frozen parameter
counts and the FLOPs of one forward pass measured with ``torch.utils.flop_counter.FlopCounterMode``
(2 FLOPs per multiply-accumulate, matmuls and attention included, FFTs not counted), next to the
paper's Table 4 and the true-FLOP figures of docs/model.md §2.2.

How the FLOPs are counted: the model is built and run on the ``meta`` device, so no weight is
allocated and no arithmetic is done (the reference preset at 448² takes ~1-2 s instead of a
multi-GB, minute-long CPU forward). Measured on torch 2.13: on a real CPU tensor,
``FlopCounterMode`` does not count the fused CPU attention kernel
(``_scaled_dot_product_flash_attention_for_cpu``), so a CPU count misses every attention matmul; on
``meta`` the attention goes through a path the counter knows and is counted in full. The meta
count of the reference preset reproduces docs/model.md's 3.080 / 3.050 / 2.948 TFLOPs.

Table 4's "TFLOPs" (2.7222 / 5.0089 / 11.3744) are thop multiply-accumulates with ConvTranspose
over-counted s² times and attention omitted; its "total params" (61.459 / 80.260 / 140.422 M) are
thop's partial sums (docs/model.md §2.2). They are printed for comparison, not reproduced.

Usage:
    naima-info                                  # all presets, x4/x8/x16, at 420²/448²/448²
    naima-info --presets reference --scales 4
    naima-info --size 480x640 --size train      # the training size and a VGA frame
    naima-info --no-flops --output info.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from naima_ros.inference import network_size
from naima_ros.model.naima import PRESETS, REFERENCE_IMG_SIZE, build_model, count_parameters
from naima_ros.options import SCALES

__all__ = ["TABLE4", "REFERENCE_TRUE_TFLOPS", "network_size", "count_flops", "describe", "main"]

# The paper's Table 4 (reference model, NYU training sizes) and docs/model.md §2.2's true FLOPs, per scale.
TABLE4 = {
    4: {"trainable": 40_967_861, "frozen": 21_876_480, "total_params_M_thop": 61.459, "tflops_thop_macs": 2.7222},
    8: {"trainable": 59_768_501, "frozen": 21_924_096, "total_params_M_thop": 80.260, "tflops_thop_macs": 5.0089},
    16: {"trainable": 119_930_549, "frozen": 21_924_096, "total_params_M_thop": 140.422, "tflops_thop_macs": 11.3744},
}
REFERENCE_TRUE_TFLOPS = {4: 3.080, 8: 3.050, 16: 2.948}  # FlopCounterMode at REFERENCE_IMG_SIZE


def _build(preset: str, scale: int, device: str, **overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained backbone has the same cost
        with torch.device(device):
            return build_model(preset, scale, warn_untrained=False, **overrides)


def count_flops(model: torch.nn.Module, height: int, width: int, *, device: str = "meta",
                breakdown: bool = False) -> dict:
    """FLOPs of one forward pass of ``model`` at network size ``height`` x ``width`` (batch 1).

    Args:
        model: A ``Naima`` on ``device``.
        height, width: HR size; must already fit the model (see :func:`network_size`).
        device: "meta" (no compute, attention counted) or "cpu" (real compute; torch's counter
            misses the fused CPU attention kernel).
        breakdown: Also return FLOPs per top-level submodule (backbone, gtas.N, fusions.N, upsampler, ...).

    Returns:
        dict with ``flops`` (int), ``seconds`` (wall time of the count) and optionally ``breakdown``.
    """
    s = model.config.scale
    image = torch.zeros(1, 3, height, width, device=device)
    depth = torch.zeros(1, 1, height // s, width // s, device=device)
    start = time.perf_counter()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(image, depth)
    result = {"flops": int(counter.get_total_flops()), "seconds": round(time.perf_counter() - start, 3)}
    if breakdown:
        lists = {name for name, child in model.named_children() if isinstance(child, torch.nn.ModuleList)}
        parts = {}
        for name, ops in counter.get_flop_counts().items():
            # Counts include children: keep "Naima.<child>" and, for ModuleLists, "Naima.<list>.<index>".
            pieces = name.split(".")
            if pieces[0] != type(model).__name__ or len(pieces) < 2:
                continue
            key = ".".join(pieces[1:3]) if pieces[1] in lists else pieces[1]
            if key == ".".join(pieces[1:]):
                parts[key] = int(sum(ops.values()))
        result["breakdown"] = parts
    return result


def describe(preset: str, scale: int, sizes: Sequence[tuple[int, int] | None], *, flops: bool = True,
             device: str = "meta", breakdown: bool = False) -> dict:
    """Parameter counts and FLOPs of one preset at one scale (``None`` in ``sizes`` = training size)."""
    model = _build(preset, scale, device)
    params = count_parameters(model)
    entry = {"preset": preset, "scale": scale,
             "params": {"trainable": params["trainable"], "frozen": params["frozen"], "total": params["total"]},
             "paper_table4_reference_model": dict(TABLE4[scale])}
    if preset == "reference":
        entry["params"]["matches_table4"] = (params["trainable"] == TABLE4[scale]["trainable"]
                                             and params["frozen"] == TABLE4[scale]["frozen"])
    if flops:
        entry["flops"] = []
        for size in sizes:
            out_hw = size or (REFERENCE_IMG_SIZE[scale], REFERENCE_IMG_SIZE[scale])
            net_hw = network_size(model.config, *out_hw)
            counted = count_flops(model, *net_hw, device=device, breakdown=breakdown)
            row = {"output_size": list(out_hw), "network_size": list(net_hw),
                   "reference_training_size": size is None, "flops": counted["flops"],
                   "tflops": round(counted["flops"] / 1e12, 4), "gmacs": round(counted["flops"] / 2e9, 3),
                   "count_seconds": counted["seconds"], "counted_on": device}
            if size is None and preset == "reference":
                row["spec_true_tflops"] = REFERENCE_TRUE_TFLOPS[scale]
                row["paper_table4_tflops_thop_macs"] = TABLE4[scale]["tflops_thop_macs"]
            if breakdown:
                row["breakdown_tflops"] = {k: round(v / 1e12, 4) for k, v in counted["breakdown"].items()}
            entry["flops"].append(row)
    return entry


def _parse_list(text: str, allowed: Sequence, kind: str, convert=str) -> list:
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = convert(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind} {item!r} is not valid; choose from {list(allowed)}") from None
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"unknown {kind} {item!r}; choose from {list(allowed)}")
        values.append(value)
    return values


def _parse_size(text: str) -> tuple[int, int] | None:
    if text == "train":
        return None
    parts = text.lower().split("x")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not HxW (e.g. 480x640) or 'train'") from None
    if not (0 < height <= 8192 and 0 < width <= 8192):
        raise argparse.ArgumentTypeError(f"size {text!r}: each side must be in 1..8192 pixels")
    return height, width


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="naima-info", description="Parameter counts and true FLOPs (FlopCounterMode) per preset and scale, as "
                                       "JSON, with the paper's Table 4 beside them.")
    parser.add_argument("--presets", type=lambda t: _parse_list(t, list(PRESETS), "preset"), default=list(PRESETS),
                        help=f"comma-separated presets (default: all: {','.join(PRESETS)})")
    parser.add_argument("--scales", type=lambda t: _parse_list(t, SCALES, "scale", int), default=list(SCALES),
                        help="comma-separated scales (default: " + ",".join(map(str, SCALES)) + ")")
    parser.add_argument("--size", dest="sizes", type=_parse_size, action="append", metavar="HxW",
                        help="output size for the FLOP count, repeatable; 'train' = the reference training size "
                             "(420² at x4, 448² at x8/x16; the default). Sizes the model cannot take are padded up "
                             "as the Upsampler pads them (reported as network_size).")
    parser.add_argument("--no-flops", action="store_true", help="parameter counts only")
    parser.add_argument("--breakdown", action="store_true", help="FLOPs per top-level module as well")
    parser.add_argument("--count-device", choices=("meta", "cpu"), default="meta",
                        help="meta (default: no compute, attention counted) or cpu (real forward pass: slow, and "
                             "torch's counter misses the fused CPU attention kernel)")
    parser.add_argument("--output", help="also write the JSON to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the message
        return int(exit_.code or 0)
    sizes = args.sizes or [None]
    report = {
        "tool": "naima-info",
        "torch": torch.__version__,
        "flop_counter": (f"torch.utils.flop_counter.FlopCounterMode on the {args.count_device} device; 2 FLOPs "
                         f"per MAC, batch 1, matmuls and attention included, FFT not counted"),
        "notes": ["paper_table4_reference_model: Table 4 of the paper (the published model at this scale). "
                  "Its tflops_thop_macs are thop multiply-accumulates (ConvTranspose counted s^2 too "
                  "high, attention omitted); total_params_M_thop are thop's partial sums (docs/model.md §2.2).",
                  "spec_true_tflops: docs/model.md §2.2, FlopCounterMode on the reference model at its training size."],
        "results": [],
    }
    try:
        for preset in args.presets:
            for scale in args.scales:
                report["results"].append(describe(preset, scale, sizes, flops=not args.no_flops,
                                                  device=args.count_device, breakdown=args.breakdown))
    except (ValueError, RuntimeError) as error:
        print(f"naima-info: error: {error}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as error:
            print(f"naima-info: error: cannot write {args.output}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
