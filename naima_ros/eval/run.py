"""``naima-eval``: checkpoints and classical baselines on the benchmark test sets, as CSV, markdown and PNG.

One command scores one or more NAIMA checkpoints and the baselines (bicubic, guided filter, joint
bilateral upsampling) on one or more datasets at their scales, under one protocol:

``reference`` (SPEC.md section 4, reproduces the paper's Tables 1-3)
    Modcrop to s. RGB ImageNet-standardised (NYU / RGB-D-D / TOFDSR) or /255 only (Middlebury /
    Lu); GT normalised per image (min-max) or /255 (Middlebury / Lu). Zero-pad RGB and GT on the
    bottom and right to a square S x S, S the smallest of 112, 224, ..., 784 with S >= max(H, W);
    synthesise the LR from the *padded* GT (antialiased bicubic); run the network directly on the
    padded pair; crop the top-left H x W; shave 6 px; de-normalise (x100 cm for the metric sets,
    x255 8-bit units for Middlebury / Lu); RMSE per image, averaged over images.
``corrected`` (default; SPEC.md section 7)
    Standardised RGB everywhere, LR synthesised from the modcropped GT, the minimal padding of
    ``naima_ros.inference.Upsampler`` (edge replication to the model's size multiple), same shave
    and units.
``anchors`` (``shared/data/README.md``)
    As ``corrected`` without the shave: the protocol of the README's bicubic sanity anchors.

Baselines see exactly the LR the network sees (under ``reference`` the padded one, with the RGB
padded by the colour whose standardised value is 0). ``bicubic_pil`` (optional) is the
literature's "Bicubic" row: PIL bicubic for both the LR and the upsampling.

Outputs in ``--out``: ``per_image.csv``, ``summary.csv``, ``results.md`` (tables shaped like the
paper's Tables 1, 2 and 3, with the paper's NAIMA numbers and the README's bicubic anchors beside
ours; also printed), ``run.json`` (what was run) and ``figures/`` (RGB | baselines | models | GT
strips with error rows, and one error map per model: the paper's Figs. 4, 5, 8, 9). Results are
written after every dataset (atomically), so an interrupted run keeps what it finished.

Examples:
    naima-eval --checkpoint checkpoints/naima_light_x8_demo.safetensors --datasets middlebury,lu
    naima-eval --protocol reference --checkpoint ref_x4.safetensors --checkpoint ref_x8.safetensors \\
        --datasets nyu --nyu-mat nyu_depth_v2_labeled.mat --out out/table1
    naima-eval --protocol anchors --datasets middlebury,lu --baselines bicubic,bicubic_pil
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import io
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from naima_ros.checkpoint import CheckpointError, git_revision, load_checkpoint
from naima_ros.data import nyu, rgbdd, shared, tofdsr
from naima_ros.data.common import DatasetError, FrameList, RGBDFrame
from naima_ros.data.transforms import IMAGENET_MEAN, modcrop, resize_bicubic_pil, standardise_rgb, synthesize_lr
from naima_ros.eval import baselines, figures, metrics
from naima_ros.fsio import atomic_write_text
from naima_ros.inference import Upsampler

__all__ = ["PAPER_NAIMA", "README_BICUBIC_ANCHORS", "PROTOCOLS", "DATASETS", "BASELINE_LABELS",
           "REFERENCE_PAD_SIDES", "reference_pad_side", "reference_inputs", "prepare_sample", "Sample", "main"]

# ---------------------------------------------------------------------------------------------
# Published numbers: the one place they live. Source: shared/data/README.md (RMSE, 8-bit units,
# NYU-trained weights, x4 / x8 / x16). The README gives no NYU / RGB-D-D / TOFDSR (Table 1) values,
# so Table 1's paper row stays empty until they are added here.
# ---------------------------------------------------------------------------------------------
PAPER_NAIMA: dict[str, dict[int, float]] = {
    "middlebury": {4: 1.03, 8: 1.62, 16: 2.75},
    "lu": {4: 0.84, 8: 1.44, 16: 3.34},
}
# The README's measured bicubic anchors (modcrop, depth/255, per-image RMSE x255 averaged).
README_BICUBIC_ANCHORS: dict[str, dict[str, dict[int, float]]] = {
    "pil": {"middlebury": {4: 2.28, 8: 3.98, 16: 6.37}, "lu": {4: 2.42, 8: 4.54, 16: 7.38}},
    "torch": {"middlebury": {4: 2.23, 8: 3.92, 16: 6.28}, "lu": {4: 2.36, 8: 4.44, 16: 7.26}},
    "pil_shave6": {"middlebury": {4: 2.30, 8: 4.00, 16: 6.34}, "lu": {4: 2.47, 8: 4.64, 16: 7.52}},
}

SCALES = (4, 8, 16)
REFERENCE_PAD_SIDES = (112, 224, 336, 448, 560, 672, 784)  # multiples of lcm(14, 16) = 112


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    shave: int
    description: str


PROTOCOLS = {
    "reference": Protocol("reference", metrics.REFERENCE_SHAVE_PX,
                          "SPEC.md 4: square zero padding to S in {112..784}, LR synthesised after padding, "
                          "Middlebury/Lu RGB /255 only, 6-px shave"),
    "corrected": Protocol("corrected", metrics.REFERENCE_SHAVE_PX,
                          "standardised RGB everywhere, LR from the modcropped GT, minimal edge padding, 6-px shave"),
    "anchors": Protocol("anchors", 0,
                        "shared/data/README.md: as corrected, no shave (the bicubic sanity anchors' protocol)"),
}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    key: str
    title: str
    table: int  # the paper's table: 1 (metric sets, cm), 2 (Middlebury), 3 (Lu)
    reference_rgb: str  # RGB normalisation of the reference protocol: "imagenet" or "unit" (/255)


DATASETS = {
    "nyu": DatasetSpec("nyu", "NYU v2", 1, "imagenet"),
    "rgbdd": DatasetSpec("rgbdd", "RGB-D-D", 1, "imagenet"),
    "tofdsr": DatasetSpec("tofdsr", "TOFDSR", 1, "imagenet"),
    "middlebury": DatasetSpec("middlebury", "Middlebury", 2, "unit"),
    "lu": DatasetSpec("lu", "Lu", 3, "unit"),
}
# Descriptions of the small shared stand-ins for a benchmark split start with this; tables flag them.
SHARED_SUBSET = "SHARED SUBSET"
BASELINE_LABELS = {"bicubic": "Bicubic", "guided_filter": "Guided filter", "jbu": "JBU",
                   "bicubic_pil": "Bicubic (PIL)"}
DEFAULT_BASELINES = ("bicubic", "guided_filter", "jbu")
# uint8 colour whose ImageNet-standardised value is 0: the reference's zero padding, seen by the baselines.
_MEAN_COLOUR = tuple(int(round(255 * m)) for m in IMAGENET_MEAN)


class EvalError(ValueError):
    """Bad input to naima-eval (arguments, checkpoints, datasets): reported as one message."""


# ---------------------------------------------------------------------------------------------
# Protocol: inputs of the network and of the baselines
# ---------------------------------------------------------------------------------------------


def reference_pad_side(height: int, width: int) -> int:
    """The reference's square side: the smallest S in ``REFERENCE_PAD_SIDES`` with S >= max(height, width).

    Raises:
        EvalError: the image is larger than 784 (the reference would crash).
    """
    for side in REFERENCE_PAD_SIDES:
        if side >= max(height, width):
            return side
    raise EvalError(f"image {height}x{width} is larger than the reference protocol's largest square "
                    f"{REFERENCE_PAD_SIDES[-1]}; the reference code cannot evaluate it (use --protocol corrected)")


def reference_inputs(rgb_net: torch.Tensor, gt_norm: torch.Tensor, scale: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad and synthesise the LR exactly as the reference's ``GetInference`` does (SPEC.md 4).

    Args:
        rgb_net: (3, H, W) network RGB (standardised, or /255 for Middlebury/Lu).
        gt_norm: (H, W) normalised ground truth, H and W multiples of ``scale``.
        scale: SR factor s.

    Returns:
        (rgb (3, S, S), gt (S, S), lr (S/s, S/s)): RGB and GT zero-padded on the bottom and right,
        the LR synthesised from the padded GT (antialiased bicubic, no clamp).
    """
    height, width = gt_norm.shape
    side = reference_pad_side(height, width)
    rgb_pad = torch.zeros(3, side, side, dtype=torch.float32)
    rgb_pad[:, :height, :width] = rgb_net
    gt_pad = torch.zeros(side, side, dtype=torch.float32)
    gt_pad[:height, :width] = gt_norm
    return rgb_pad, gt_pad, synthesize_lr(gt_pad, scale)


@dataclasses.dataclass
class Sample:
    """One test image at one scale, prepared for a protocol.

    ``net_rgb`` / ``net_lr`` are what the network gets (padded under ``reference``), ``base_rgb`` /
    ``base_lr`` what the baselines get (the same LR; the RGB as uint8), ``lr_source`` the normalised
    HR map the LR was made from (for ``bicubic_pil``). Predictions are cropped to ``gt_norm``'s
    top-left (H, W).
    """

    name: str
    scale: int
    gt_norm: np.ndarray  # (H, W)
    rgb_uint8: np.ndarray  # (H, W, 3), for figures
    valid: np.ndarray  # (H, W) bool, for figures only (the protocol uses no mask)
    minmax: tuple[float, float]
    rmse_scale: float
    unit: str
    net_rgb: torch.Tensor  # (1, 3, Hn, Wn)
    net_lr: torch.Tensor  # (1, 1, Hn/s, Wn/s)
    base_rgb: np.ndarray  # (Hn, Wn, 3) uint8
    base_lr: np.ndarray  # (Hn/s, Wn/s)
    lr_source: np.ndarray  # (Hn, Wn) normalised HR the LR came from
    padded: bool

    def crop(self, prediction) -> np.ndarray:
        height, width = self.gt_norm.shape
        prediction = prediction.detach().cpu().numpy() if hasattr(prediction, "detach") else np.asarray(prediction)
        return np.asarray(prediction, dtype=np.float32).reshape(prediction.shape[-2:])[:height, :width]

    def to_unit(self, normalised: np.ndarray) -> np.ndarray:
        """Normalised depth -> the reported unit (cm, or 8-bit units)."""
        return metrics.denormalise(normalised, self.minmax) * self.rmse_scale


def prepare_sample(frame: RGBDFrame, scale: int, protocol: str, spec: DatasetSpec) -> Sample:
    """Modcrop a frame and build the network's and the baselines' inputs under ``protocol``."""
    rgb_uint8 = np.ascontiguousarray(modcrop(frame.rgb, scale))
    gt_norm = np.ascontiguousarray(modcrop(frame.depth_norm, scale), dtype=np.float32)
    valid = np.ascontiguousarray(modcrop(frame.valid, scale))
    height, width = gt_norm.shape
    if height < scale or width < scale:
        raise EvalError(f"image {frame.name} ({frame.rgb.shape[0]}x{frame.rgb.shape[1]}) is smaller than scale {scale}")
    common = dict(name=frame.name, scale=scale, gt_norm=gt_norm, rgb_uint8=rgb_uint8, valid=valid,
                  minmax=tuple(float(v) for v in frame.minmax), rmse_scale=float(frame.rmse_scale),
                  unit=frame.rmse_unit)
    if protocol == "reference":
        rgb_net = torch.from_numpy(standardise_rgb(rgb_uint8, spec.reference_rgb))
        rgb_pad, gt_pad, lr = reference_inputs(rgb_net, torch.from_numpy(gt_norm), scale)
        side = rgb_pad.shape[-1]
        fill = _MEAN_COLOUR if spec.reference_rgb == "imagenet" else (0, 0, 0)
        base_rgb = np.empty((side, side, 3), np.uint8)
        base_rgb[:] = np.asarray(fill, np.uint8)
        base_rgb[:height, :width] = rgb_uint8
        return Sample(**common, net_rgb=rgb_pad[None], net_lr=lr[None, None], base_rgb=base_rgb,
                      base_lr=lr.numpy(), lr_source=gt_pad.numpy(), padded=True)
    if protocol not in PROTOCOLS:
        raise EvalError(f"unknown protocol {protocol!r}; expected one of {sorted(PROTOCOLS)}")
    lr = synthesize_lr(torch.from_numpy(gt_norm), scale)
    return Sample(**common, net_rgb=torch.from_numpy(standardise_rgb(rgb_uint8, "imagenet"))[None],
                  net_lr=lr[None, None], base_rgb=rgb_uint8, base_lr=lr.numpy(), lr_source=gt_norm, padded=False)


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Method:
    """A row of the tables: a baseline (every scale) or a checkpoint (its own scale)."""

    label: str
    kind: str  # "baseline" or "model"
    predict: Callable[[Sample], np.ndarray]  # -> (H, W) normalised prediction
    scale: int | None = None
    info: dict = dataclasses.field(default_factory=dict)


def _baseline_method(name: str) -> Method:
    if name == "bicubic_pil":
        def predict(sample: Sample) -> np.ndarray:
            source = sample.lr_source
            lr = resize_bicubic_pil(source, (source.shape[0] // sample.scale, source.shape[1] // sample.scale))
            return sample.crop(baselines.bicubic_pil(sample.base_rgb, lr, sample.scale))
    else:
        function = baselines.BASELINES[name]

        def predict(sample: Sample) -> np.ndarray:
            return sample.crop(function(sample.base_rgb, sample.base_lr, sample.scale))
    return Method(BASELINE_LABELS[name], "baseline", predict, info={"baseline": name})


def _model_method(label: str, upsampler: Upsampler, path: Path, meta: dict) -> Method:
    multiple = upsampler.model.config.size_multiple

    def predict(sample: Sample) -> np.ndarray:
        if sample.padded and sample.net_rgb.shape[-1] % multiple:
            raise EvalError(f"{path}: the reference protocol runs the network on {sample.net_rgb.shape[-1]}² "
                            f"but this model needs multiples of {multiple}")
        return sample.crop(upsampler.predict_normalised(sample.net_rgb, sample.net_lr))

    info = {"checkpoint": str(path), "preset": meta.get("preset"), "scale": meta.get("scale"),
            "backbone": upsampler.model.backbone_identity, "device": str(upsampler.device),
            "precision": upsampler.precision}
    return Method(label, "model", predict, scale=upsampler.scale, info=info)


def _default_label(path: Path) -> str:
    """File stem without its scale token, so ``naima_x4`` and ``naima_x8`` share a row."""
    label = re.sub(r"[_\-.]?x(4|8|16)(?=$|[_\-.])", "", path.stem)
    return label or path.stem


def load_models(specs: Sequence[str], device: str, precision: str) -> list[Method]:
    """``[LABEL=]PATH`` arguments -> model methods (checkpoints loaded and validated)."""
    methods, seen = [], set()
    for spec in specs:
        label, _, path_text = spec.partition("=") if ("=" in spec and not Path(spec).exists()) else ("", "", spec)
        path = Path(path_text)
        try:
            model, meta = load_checkpoint(path)
            upsampler = Upsampler(model, meta, device=device, precision=precision, checkpoint=str(path))
        except CheckpointError as error:
            raise EvalError(str(error)) from error
        except ValueError as error:  # device / precision
            raise EvalError(f"{path}: {error}") from error
        label = label or _default_label(path)
        if (label, upsampler.scale) in seen:
            raise EvalError(f"two checkpoints are labelled {label!r} at x{upsampler.scale}; name them with LABEL=PATH")
        seen.add((label, upsampler.scale))
        methods.append(_model_method(label, upsampler, path, meta))
    return methods


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------


def open_dataset(key: str, args: argparse.Namespace) -> tuple[FrameList, str]:
    """(frames, description) of one requested dataset; raises EvalError naming what is missing."""
    root = args.shared_data
    try:
        if key == "middlebury":
            frames = shared.load_test_set("Middlebury", root)
            return frames, f"{len(frames)} images: {frames.description}"
        if key == "lu":
            frames = shared.load_test_set("Lu", root)
            return frames, f"{len(frames)} images: {frames.description}"
        if key == "nyu":
            if args.nyu_mat and args.nyu_npy:
                raise EvalError("give --nyu-mat or --nyu-npy, not both")
            if args.nyu_mat:
                frames = nyu.load_nyu_mat(args.nyu_mat, "test")
                return frames, f"NYU v2 test split ({len(frames)} images, {args.nyu_mat})"
            if args.nyu_npy:
                frames = nyu.load_prepared_split(args.nyu_npy, "test")
                return frames, f"NYU v2 prepared test split ({len(frames)} images, {args.nyu_npy})"
            frames = shared.load_test_set("NYUDepthv2_Test", root)
            return frames, (f"{SHARED_SUBSET}: NYU v2, only the {len(frames)} shared test pairs, "
                            f"NOT the 449-image test split "
                            f"(give --nyu-mat or --nyu-npy) ({frames.description})")
        if key == "rgbdd":
            if args.rgbdd_root:
                frames = rgbdd.load_rgbdd(args.rgbdd_root, "test")
                return frames, f"RGB-D-D test split ({len(frames)} images, {args.rgbdd_root})"
            frames = shared.load_test_set("RGBDD_Test_Realscene", root)
            return frames, (f"{SHARED_SUBSET}: RGB-D-D, only the {len(frames)} shared real-scene pairs, "
                            f"NOT the 405-image test "
                            f"split (give --rgbdd-root); LR synthesised from the GT ({frames.description})")
        if key == "tofdsr":
            if not args.tofdsr_root:
                raise EvalError("dataset tofdsr needs --tofdsr-root (the folder with TOFDSR_Test.txt); "
                                "there is no shared copy")
            frames = tofdsr.load_tofdsr(args.tofdsr_root, "test")
            return frames, f"TOFDSR test split ({len(frames)} images, {args.tofdsr_root})"
    except (DatasetError, ValueError) as error:
        if isinstance(error, EvalError):
            raise
        raise EvalError(f"dataset {key}: {error}") from error
    raise EvalError(f"unknown dataset {key!r}; expected one of {list(DATASETS)}")


# ---------------------------------------------------------------------------------------------
# Results: CSV, markdown
# ---------------------------------------------------------------------------------------------

PER_IMAGE_FIELDS = ("dataset", "image", "method", "scale", "rmse", "unit", "protocol")
SUMMARY_FIELDS = ("dataset", "method", "scale", "rmse", "unit", "images", "protocol", "source")


def _csv_text(fields: Sequence[str], rows: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summarise(rows: Sequence[dict], sources: dict[str, str]) -> list[dict]:
    """Mean of the per-image RMSEs per (dataset, method, scale), in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["method"], row["scale"]), []).append(row)
    summary = []
    for (dataset, method, scale), items in groups.items():
        summary.append({"dataset": dataset, "method": method, "scale": scale,
                        "rmse": metrics.mean_over_images([r["rmse"] for r in items]), "unit": items[0]["unit"],
                        "images": len(items), "protocol": items[0]["protocol"], "source": sources.get(dataset, "")})
    return summary


def _cell(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def markdown_report(summary: Sequence[dict], protocol: str, datasets: Sequence[str], sources: dict[str, str],
                    methods: Sequence[Method], max_images: int | None) -> str:
    """Tables shaped like the paper's Tables 1 (NYU / RGB-D-D / TOFDSR, cm), 2 (Middlebury) and 3 (Lu)."""
    value = {(r["dataset"], r["method"], r["scale"]): r["rmse"] for r in summary}
    count = {(r["dataset"], r["method"], r["scale"]): r["images"] for r in summary}
    labels = list(dict.fromkeys(m.label for m in methods))
    lines = ["# naima-eval results", "",
             f"Protocol: **{protocol}** ({PROTOCOLS[protocol].description}). RMSE per image, averaged over images.",
             ""]
    if max_images is not None:
        lines += [f"**Limited to the first {max_images} image(s) per dataset (--max-images): not benchmark numbers.**",
                  ""]
    if protocol != "reference":
        lines += ["The paper's numbers were measured with the reference protocol; ours here use another one.", ""]
    lines += ["Datasets:"] + [f"- {key}: {sources[key]}" for key in datasets] + [""]
    models = [m for m in methods if m.kind == "model"]
    if models:
        lines += ["Checkpoints:"] + [
            f"- {m.label} (x{m.scale}): `{m.info['checkpoint']}`, preset {m.info['preset']}, backbone "
            f"{m.info['backbone']}, {m.info['device']} {m.info['precision']}" for m in models] + [""]
    header = "| " + " | ".join(f"x{s}" for s in SCALES) + " |"
    rule = "|" + "---|" * len(SCALES)

    def measured_row(dataset: str, label: str) -> str:
        cells = [_cell(value.get((dataset, label, s))) for s in SCALES]
        return " | ".join(cells) + " |"

    def reference_rows(dataset: str, prefix: str) -> list[str]:
        rows = []
        paper = PAPER_NAIMA.get(dataset)
        rows.append(f"| {prefix}NAIMA (paper) | " + " | ".join(_cell(paper.get(s) if paper else None) for s in SCALES)
                    + " |")
        anchors = README_BICUBIC_ANCHORS["pil"].get(dataset)
        if anchors:
            rows.append(f"| {prefix}Bicubic (literature: PIL, no shave; README) | "
                        + " | ".join(_cell(anchors.get(s)) for s in SCALES) + " |")
        return rows

    table1 = [d for d in datasets if DATASETS[d].table == 1]
    if table1:
        lines += ["## Table 1: NYU v2 / RGB-D-D / TOFDSR (RMSE, cm)", "",
                  "| Dataset | Method " + header, "|---|---" + rule]
        for dataset in table1:
            title = DATASETS[dataset].title
            if sources[dataset].startswith(SHARED_SUBSET):
                title += " (shared subset, not the test split)"
            lines += reference_rows(dataset, f"{title} | ")
            lines += [f"| {title} | {label} | " + measured_row(dataset, label) for label in labels]
        lines += ["", "The paper's Table 1 values are not in shared/data/README.md (this project's source of paper "
                  "numbers), so its NAIMA (paper) row shows —; add them to `PAPER_NAIMA` in naima_ros/eval/run.py.",
                  ""]
    for dataset, number in (("middlebury", 2), ("lu", 3)):
        if dataset in datasets:
            lines += [f"## Table {number}: {DATASETS[dataset].title} (RMSE, 8-bit depth units)", "",
                      "| Method " + header, "|---" + rule]
            lines += reference_rows(dataset, "")
            lines += [f"| {label} | " + measured_row(dataset, label) for label in labels]
            lines += [""]
    images = sorted({n for n in count.values()})
    lines += [f"Images per cell: {', '.join(map(str, images)) or '0'}. Per-image values: per_image.csv.", ""]
    return "\n".join(lines)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _parse_csv_list(text: str, allowed: Sequence[str], kind: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if items == ["none"] and kind == "baseline":
        return []
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {kind}(s) {bad or [text]}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def _parse_scales(text: str) -> list[int]:
    try:
        scales = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales {text!r} are not integers; choose from 4, 8, 16") from None
    bad = [s for s in scales if s not in SCALES]
    if bad or not scales:
        raise argparse.ArgumentTypeError(f"unsupported scale(s) {bad or text}; choose from 4, 8, 16")
    return sorted(set(scales))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="naima-eval", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score NAIMA checkpoints and classical baselines on the benchmark test sets "
                    "(RMSE per image, averaged), as CSV, markdown tables like the paper's and PNG figures.",
        epilog=__doc__.split("Examples:")[1] if "Examples:" in __doc__ else None)
    parser.add_argument("--checkpoint", action="append", default=[], metavar="[LABEL=]PATH",
                        help="a naima_ros checkpoint (repeatable); rows are labelled by LABEL or the file stem "
                             "without its _xN")
    parser.add_argument("--datasets", type=lambda t: _parse_csv_list(t, list(DATASETS), "dataset"),
                        default=["middlebury", "lu"], help="comma-separated: " + ", ".join(DATASETS)
                        + " (default: middlebury,lu)")
    parser.add_argument("--scales", type=_parse_scales, default=None,
                        help="comma-separated scales for the baselines (default: the checkpoints' scales, or "
                             "4,8,16 without checkpoints); every checkpoint's scale must be among them")
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default="corrected",
                        help="reference (SPEC.md 4, the paper's tables), corrected (default) or anchors "
                             "(README, no shave)")
    parser.add_argument("--baselines", type=lambda t: _parse_csv_list(t, list(BASELINE_LABELS), "baseline"),
                        default=list(DEFAULT_BASELINES),
                        help="comma-separated: " + ", ".join(BASELINE_LABELS) + ", or none "
                        "(default: bicubic,guided_filter,jbu)")
    parser.add_argument("--out", default="out/eval", help="output folder (default: out/eval)")
    parser.add_argument("--figures", type=_positive_int, default=2,
                        help="PNG figures for the first N images of each dataset and scale (default 2; 0 = none)")
    parser.add_argument("--max-images", type=_positive_int, default=None,
                        help="only the first N images of each dataset (quick looks, tests)")
    parser.add_argument("--shared-data", default=None,
                        help=f"shared data folder (default: ${shared.ENV_VAR} or ../shared/data)")
    parser.add_argument("--nyu-mat", help="nyu_depth_v2_labeled.mat: the 449-image test split")
    parser.add_argument("--nyu-npy", help="folder of the prepared test_*_split.npy arrays (SPEC.md 3.1)")
    parser.add_argument("--rgbdd-root", help="the RGBDD-Full folder: its 405-image test split")
    parser.add_argument("--tofdsr-root", help="the folder with TOFDSR_Test.txt")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="network precision (default auto: fp32 on CPU, fp16 on CUDA)")
    parser.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _resolve(args: argparse.Namespace) -> tuple[list[Method], list[int], dict[str, FrameList], dict[str, str]]:
    """Validate everything before any work or any write: checkpoints, scales, datasets."""
    models = load_models(args.checkpoint, args.device, args.precision)
    model_scales = sorted({m.scale for m in models})
    scales = args.scales or model_scales or list(SCALES)
    for method in models:
        if method.scale not in scales:
            raise EvalError(f"{method.info['checkpoint']}: checkpoint is x{method.scale}, but --scales asks for "
                            f"{','.join(map(str, scales))}")
    methods = [_baseline_method(name) for name in args.baselines] + models
    if not methods:
        raise EvalError("nothing to evaluate: no --checkpoint and --baselines none")
    frames, sources = {}, {}
    for key in args.datasets:
        frames[key], sources[key] = open_dataset(key, args)
    return methods, scales, frames, sources


class _Results:
    """Rows so far and their files; rewritten atomically whenever a dataset finishes."""

    def __init__(self, out: Path, protocol: str, datasets: Sequence[str], sources: dict[str, str],
                 methods: Sequence[Method], max_images: int | None, run_info: dict):
        self.out, self.protocol, self.datasets, self.sources = out, protocol, datasets, sources
        self.methods, self.max_images, self.run_info = methods, max_images, run_info
        self.rows: list[dict] = []

    def write(self) -> str:
        summary = summarise(self.rows, self.sources)
        done = [d for d in self.datasets if any(r["dataset"] == d for r in self.rows)]
        report = markdown_report(summary, self.protocol, done, self.sources, self.methods, self.max_images)
        atomic_write_text(self.out / "per_image.csv", _csv_text(PER_IMAGE_FIELDS, [
            {**r, "rmse": f"{r['rmse']:.6f}"} for r in self.rows]))
        atomic_write_text(self.out / "summary.csv", _csv_text(SUMMARY_FIELDS, [
            {**r, "rmse": f"{r['rmse']:.6f}"} for r in summary]))
        atomic_write_text(self.out / "results.md", report)
        atomic_write_text(self.out / "run.json", json.dumps({**self.run_info, "datasets_done": done}, indent=2) + "\n")
        return report


def _figures(out: Path, dataset: str, sample: Sample, predictions: dict[str, np.ndarray], models: Sequence[str],
             protocol: str) -> None:
    gt = sample.to_unit(sample.gt_norm)
    in_unit = {label: sample.to_unit(pred) for label, pred in predictions.items()}
    stem = f"{dataset}_x{sample.scale}_{_safe(sample.name)}"
    title = f"{DATASETS[dataset].title} {sample.name} x{sample.scale} ({protocol} protocol)"
    figures.save_comparison_strip(out / "figures" / f"{stem}_strip.png", sample.rgb_uint8, in_unit, gt,
                                  valid=sample.valid, unit=sample.unit, title=title)
    for label in models:
        figures.save_error_map(out / "figures" / f"{stem}_{_safe(label)}_error.png", in_unit[label], gt,
                               valid=sample.valid, unit=sample.unit, title=f"|{label} - GT| {title}")


def evaluate(args: argparse.Namespace, methods: Sequence[Method], scales: Sequence[int],
             frames: dict[str, FrameList], results: _Results) -> None:
    """Score every method on every dataset at every scale; figures for the first images."""
    from tqdm import tqdm

    shave = PROTOCOLS[args.protocol].shave
    for dataset, frame_list in frames.items():
        spec = DATASETS[dataset]
        count = len(frame_list) if args.max_images is None else min(args.max_images, len(frame_list))
        with tqdm(total=count * len(scales), desc=f"{dataset}", unit="img", disable=args.no_progress,
                  file=sys.stderr, dynamic_ncols=True) as bar:
            for index in range(count):
                frame = frame_list[index]  # decoded once for every scale
                for scale in scales:
                    bar.set_postfix_str(f"x{scale} {frame.name}", refresh=False)
                    sample = prepare_sample(frame, scale, args.protocol, spec)
                    predictions = {}
                    for method in methods:
                        if method.scale not in (None, scale):
                            continue
                        try:
                            prediction = method.predict(sample)
                            rmse = metrics.reference_rmse(prediction, sample.gt_norm, sample.minmax,
                                                          sample.rmse_scale, shave=shave)
                        except ValueError as error:  # shapes, sizes, shave larger than the image
                            raise EvalError(f"{dataset} image {frame.name} x{scale}, {method.label}: "
                                            f"{error}") from error
                        predictions[method.label] = prediction
                        results.rows.append({"dataset": dataset, "image": frame.name, "method": method.label,
                                             "scale": scale, "rmse": rmse, "unit": sample.unit,
                                             "protocol": args.protocol})
                    if index < args.figures:
                        _figures(results.out, dataset, sample, predictions,
                                 [m.label for m in methods if m.kind == "model" and m.scale == scale], args.protocol)
                    bar.update(1)
        results.write()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse printed the usage error
        return int(exit_.code or 0)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    try:
        if out.exists() and not out.is_dir():
            raise EvalError(f"--out {out} exists and is not a folder")
        methods, scales, frames, sources = _resolve(args)
        out.mkdir(parents=True, exist_ok=True)
    except (EvalError, OSError) as error:
        print(f"naima-eval: error: {error}", file=sys.stderr)
        return 1
    run_info = {"tool": "naima-eval", "argv": list(sys.argv[1:] if argv is None else argv),
                "protocol": args.protocol, "scales": scales, "datasets": sources,
                "methods": [{"label": m.label, "kind": m.kind, "scale": m.scale, **m.info} for m in methods],
                "max_images": args.max_images, "git": git_revision(), "torch": torch.__version__,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    results = _Results(out, args.protocol, list(frames), sources, methods, args.max_images, run_info)
    try:
        evaluate(args, methods, scales, frames, results)
    except (EvalError, DatasetError, CheckpointError) as error:
        if results.rows:  # keep what finished; an earlier run's files stay if nothing new was scored
            results.write()
        print(f"naima-eval: error: {error} (results so far are in {out})", file=sys.stderr)
        return 1
    except BaseException:
        if results.rows:
            results.write()
        raise
    report = results.write()
    print(report)
    print(f"naima-eval: wrote {out / 'per_image.csv'}, summary.csv, results.md"
          + (", figures/" if args.figures else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
