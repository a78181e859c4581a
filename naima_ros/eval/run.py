"""``naima-eval``: checkpoints and classical baselines on the benchmark test sets, as CSV, markdown and PNG.

One command scores one or more NAIMA checkpoints and the baselines (bicubic, guided_filter, jbu;
``naima_ros.predictors``) on one or more datasets (``naima_ros.data.registry``) at their scales,
under one protocol (``naima_ros.eval.protocols``): ``deployed`` (default: every method is the
predictor the node runs, normalising by the LR frame's own min/max), ``reference`` (the paper's
Tables 1-3, fp32 unless ``--precision`` says otherwise), ``corrected`` or ``anchors`` (the README's
bicubic sanity anchors). ``--lr-synthesis plain`` makes the LR with non-antialiased bicubic,
``area`` with footprint means (a ToF pixel).

Layout: ``protocols`` (sample preparation), ``methods`` (the rows), ``report`` (CSV, markdown,
run.json), ``paper`` (published numbers), this module (CLI and loop).

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
import datetime as dt
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from naima_ros.checkpoint import CheckpointError, git_revision
from naima_ros.data import shared
from naima_ros.data.common import DatasetError, RGBDFrame
from naima_ros.data.registry import DATASETS, dataset_names, open_dataset, path_flags
from naima_ros.data.transforms import LR_SYNTHESES
from naima_ros.eval import figures, metrics
from naima_ros.eval.methods import EVAL_BASELINES, Method, baseline_method, load_models
from naima_ros.eval.protocols import DEFAULT_PROTOCOL, PROTOCOLS, EvalError, Sample, prepare_sample
from naima_ros.eval.report import Results
from naima_ros.options import EVAL_DEFAULT_BASELINES, PRECISIONS, SCALES

__all__ = ["BENCHMARKS", "build_parser", "evaluate", "main", "open_benchmark"]

BENCHMARKS = dataset_names("test", benchmark=True)


def open_benchmark(key: str, args: argparse.Namespace) -> tuple[Sequence[RGBDFrame], str]:
    """(frames, description) of one requested dataset; raises EvalError naming what is missing."""
    given = [flag for flag in path_flags(key) if getattr(args, flag, None)]
    if len(given) > 1:
        raise EvalError(f"give {' or '.join('--' + f.replace('_', '-') for f in given)}, not both")
    path = getattr(args, given[0]) if given else None
    if path is None and DATASETS[key].needs_path:
        flags = " or ".join("--" + f.replace("_", "-") for f in path_flags(key))
        raise EvalError(f"dataset {key} needs {flags} ({DATASETS[key].path_help}); there is no shared copy")
    try:
        return open_dataset(key, "test", path, args.shared_data)
    except (DatasetError, ValueError) as error:
        raise EvalError(f"dataset {key}: {error}") from error


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


_SCALES_TEXT = ", ".join(map(str, SCALES))


def _parse_scales(text: str) -> list[int]:
    try:
        scales = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales {text!r} are not integers; choose from {_SCALES_TEXT}") from None
    bad = [s for s in scales if s not in SCALES]
    if bad or not scales:
        raise argparse.ArgumentTypeError(f"unsupported scale(s) {bad or text}; choose from {_SCALES_TEXT}")
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
    parser.add_argument("--datasets", type=lambda t: _parse_csv_list(t, BENCHMARKS, "dataset"),
                        default=["middlebury", "lu"], help="comma-separated: " + ", ".join(BENCHMARKS)
                        + " (default: middlebury,lu)")
    parser.add_argument("--scales", type=_parse_scales, default=None,
                        help="comma-separated scales for the baselines (default: the checkpoints' scales, or "
                             "4,8,16 without checkpoints); every checkpoint's scale must be among them")
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default=DEFAULT_PROTOCOL,
                        help="deployed (default: as the node runs), reference (docs/model.md §4, the paper's tables), "
                             "corrected or anchors (README, no shave)")
    parser.add_argument("--shave", type=_positive_int, default=None, metavar="PX",
                        help="border pixels left out of the RMSE (default: the protocol's: 6, anchors 0)")
    parser.add_argument("--lr-synthesis", choices=LR_SYNTHESES, default="antialias",
                        help="antialias: bicubic with antialiasing (default, recent torchvision); plain: without "
                             "(older torchvision; for reproducing Table 1); area: the mean of each s x s footprint, "
                             "as a ToF pixel measures")
    parser.add_argument("--baselines", type=lambda t: _parse_csv_list(t, EVAL_BASELINES, "baseline"),
                        default=list(EVAL_DEFAULT_BASELINES),
                        help="comma-separated: " + ", ".join(EVAL_BASELINES) + ", or none "
                        "(default: " + ",".join(EVAL_DEFAULT_BASELINES) + ")")
    parser.add_argument("--out", default="out/eval", help="output folder (default: out/eval)")
    parser.add_argument("--figures", type=_positive_int, default=2,
                        help="PNG figures for the first N images of each dataset and scale (default 2; 0 = none)")
    parser.add_argument("--max-images", type=_positive_int, default=None,
                        help="only the first N images of each dataset (quick looks, tests)")
    parser.add_argument("--shared-data", default=None,
                        help=f"shared data folder (default: ${shared.ENV_VAR} or ../shared/data)")
    for name in BENCHMARKS:  # the full test splits (the shared copies are used otherwise)
        for flag, what in DATASETS[name].path_flags:
            parser.add_argument(f"--{flag}", help=what)
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="network precision (default: fp32 under --protocol reference, else auto: fp32 on "
                             "CPU, fp16 on CUDA)")
    parser.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _resolve(args: argparse.Namespace
             ) -> tuple[list[Method], list[int], dict[str, Sequence[RGBDFrame]], dict[str, str]]:
    """Validate everything before any work or any write: checkpoints, scales, datasets."""
    precision = args.precision or PROTOCOLS[args.protocol].default_precision
    models = load_models(args.checkpoint, args.device, precision)
    model_scales = sorted({m.scale for m in models})
    scales = args.scales or model_scales or list(SCALES)
    for method in models:
        if method.scale not in scales:
            raise EvalError(f"{method.info['checkpoint']}: checkpoint is x{method.scale}, but --scales asks for "
                            f"{','.join(map(str, scales))}")
    methods = [baseline_method(name) for name in args.baselines] + models
    if not methods:
        raise EvalError("nothing to evaluate: no --checkpoint and --baselines none")
    frames, sources = {}, {}
    for key in args.datasets:
        frames[key], sources[key] = open_benchmark(key, args)
    return methods, scales, frames, sources


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


def _shave(args: argparse.Namespace) -> int:
    return PROTOCOLS[args.protocol].shave if args.shave is None else args.shave


def evaluate(args: argparse.Namespace, methods: Sequence[Method], scales: Sequence[int],
             frames: dict[str, Sequence[RGBDFrame]], results: Results) -> None:
    """Score every method on every dataset at every scale; figures for the first images."""
    from tqdm import tqdm

    shave = _shave(args)
    for dataset, frame_list in frames.items():
        info = DATASETS[dataset]
        count = len(frame_list) if args.max_images is None else min(args.max_images, len(frame_list))
        with tqdm(total=count * len(scales), desc=f"{dataset}", unit="img", disable=args.no_progress,
                  file=sys.stderr, dynamic_ncols=True) as bar:
            for index in range(count):
                frame = frame_list[index]  # decoded once for every scale
                for scale in scales:
                    bar.set_postfix_str(f"x{scale} {frame.name}", refresh=False)
                    sample = prepare_sample(frame, scale, args.protocol, info, lr_synthesis=args.lr_synthesis)
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
                "protocol": args.protocol, "shave": _shave(args),
                "lr_synthesis": args.lr_synthesis, "scales": scales, "datasets": sources,
                "methods": [{"label": m.label, "kind": m.kind, "scale": m.scale, **m.info} for m in methods],
                "max_images": args.max_images, "git": git_revision(), "torch": torch.__version__,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    results = Results(out, args.protocol, list(frames), sources, methods, args.max_images, run_info)
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
