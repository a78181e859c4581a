"""naima-eval's sensor protocol: every method on what a ToF camera sends, scored in metres.

The paper's protocols hand a method a clean LR (bicubic of the ground truth). A robot's ToF camera
sends footprint means with noise, flying pixels, holes and a misregistration. Here:

1. Each test image becomes a metric frame: depth in metres (the 8-bit Middlebury/Lu depth times
   ``middlebury_lu.METRES_PER_UNIT``, 0.02 m per unit, as naima-bag's bags; NYU and Motorcycle are
   metric), modcropped to the scale.
2. For each ``draw`` a sensor is drawn from ``naima_ros.data.tof.TOF_RANGES`` (seeded by image,
   draw and scale: every method sees the same inputs) and each named condition (``tof.CONDITIONS``:
   ``footprint``, ``noise``, ``faults``, ``aligned`` = all but the misregistration, ``tof`` = all of it) makes an LR.
   Images with a real sensor's LR (the RGB-D-D real scenes: a phone ToF at 192x144 under a 512x384
   RGB) are scored under condition ``real`` only, through the any-size path.
3. Every method is its predictor (``naima_ros.predictors``, the node's defaults: valid range
   0.1-10 m) with ``min_confidence`` 0, so every pixel is predicted and the RMSE is over all valid
   ground truth (no method gains by leaving hard pixels out), 6 px border shaved, in cm, per image,
   then averaged over images.
4. Holes: the valid ground truth under invalid LR cells. For each method: its RMSE there against
   elsewhere, and the share it would publish at ``min_confidence`` (the node's default).
5. Confidence: pooled over all scored pixels, per bin of 0.1: the RMSE and the share within
   ``confidence.TOLERANCE`` (a calibrated confidence has that share at the bin's confidence).

Outputs in ``--out``: ``sensor_per_image.csv``, ``sensor_summary.csv``, ``sensor_confidence.csv``,
``sensor_results.md`` and ``sensor_reliability.png`` (reliability and RMSE per confidence bin).
"""

from __future__ import annotations

import csv
import io
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from naima_ros.confidence import (CONFIDENCE_BINS, DEFAULT_MIN_CONFIDENCE, add_to_bins, bin_names, bin_stats, bin_table,
                                  within_tolerance)
from naima_ros.data import middlebury_lu
from naima_ros.data.common import RGBDFrame
from naima_ros.data.tof import CONDITIONS, simulate_tof
from naima_ros.eval.metrics import REFERENCE_SHAVE_PX
from naima_ros.frames import support_mask, valid_depth_mask
from naima_ros.fsio import atomic_write_bytes

__all__ = ["REAL_CONDITION", "SENSOR_CONDITIONS", "SENSOR_DATASETS", "SensorResults",
           "evaluate_sensor", "metric_frame", "plot_reliability", "score_frame", "sensor_seed"]

# Held-out real RGB-D images with dense ground truth (simulated sensors), and the RGB-D-D real scenes (their own
# phone-ToF LR: scored under condition "real" only).
SENSOR_DATASETS = ("middlebury", "lu", "nyu", "motorcycle", "rgbdd")
SENSOR_CONDITIONS = tuple(CONDITIONS)
REAL_CONDITION = "real"  # the image's own sensor LR (RGB-D-D real scenes)
VALID_RANGE_M = (0.1, 10.0)  # the node's default min_depth / max_depth


def metric_frame(frame: RGBDFrame, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb uint8, depth metres, valid) of a test frame, modcropped to ``scale``."""
    if frame.unit == "8bit":
        depth, valid = frame.depth * middlebury_lu.METRES_PER_UNIT, frame.valid & (frame.depth > 0)
    elif frame.unit == "m":
        depth, valid = frame.depth, frame.valid
    else:
        raise ValueError(f"{frame.name}: the sensor protocol needs metric or 8-bit depth, got unit {frame.unit!r}")
    h, w = (frame.depth.shape[0] // scale) * scale, (frame.depth.shape[1] // scale) * scale
    return (np.ascontiguousarray(frame.rgb[:h, :w]), depth[:h, :w].astype(np.float64),
            valid[:h, :w] & valid_depth_mask(depth[:h, :w], *VALID_RANGE_M))


def _rmse_cm(error: np.ndarray) -> float:
    return float(np.sqrt(np.mean(error**2)) * 100.0) if error.size else float("nan")


def score_frame(prediction, depth: np.ndarray, valid: np.ndarray, lr: np.ndarray,
                min_confidence: float = DEFAULT_MIN_CONFIDENCE, shave: int = REFERENCE_SHAVE_PX) -> dict:
    """The sensor protocol's numbers for one dense ``confidence.Prediction`` against metric ground truth.

    Returns a dict of per-image numbers and ``pixels``: (confidence, |error| m, within tolerance) of the
    scored pixels, for the pooled confidence bins.
    """
    height, width = depth.shape
    region = np.zeros_like(valid)
    region[shave:height - shave, shave:width - shave] = True
    lr_valid = valid_depth_mask(lr, *VALID_RANGE_M)
    support = support_mask(lr_valid, (height, width)) if lr.shape != depth.shape else lr_valid
    predicted = np.isfinite(prediction.depth)
    scored = valid & region & predicted
    error = prediction.depth - depth
    holes, kept = scored & ~support, scored & support
    published = holes & (prediction.confidence >= min_confidence)
    return {
        "rmse_cm": _rmse_cm(error[scored]),
        "rmse_measured_cm": _rmse_cm(error[kept]),
        "rmse_holes_cm": _rmse_cm(error[holes]),
        "rmse_holes_published_cm": _rmse_cm(error[published]),
        "hole_share": float(holes.sum() / max(scored.sum(), 1)),
        "holes_published": float(published.sum() / holes.sum()) if holes.any() else float("nan"),
        "unpredicted": float((valid & region & ~predicted).sum() / max((valid & region).sum(), 1)),
        "pixels": (prediction.confidence[scored], np.abs(error[scored]),
                   within_tolerance(prediction.depth[scored], depth[scored])),
    }


class SensorResults:
    """Per-image rows, pooled confidence bins and the summary of a sensor-protocol run."""

    FIELDS = ("dataset", "image", "draw", "scale", "condition", "method", "rmse_cm", "rmse_measured_cm",
              "rmse_holes_cm", "rmse_holes_published_cm", "hole_share", "holes_published", "unpredicted")

    def __init__(self, out: Path, min_confidence: float):
        self.out, self.min_confidence = Path(out), min_confidence
        self.rows: list[dict] = []
        # (scale, condition, method) -> per bin: count, sum of squared error, within tolerance
        self.bins: dict[tuple, np.ndarray] = defaultdict(bin_table)

    def add(self, key: dict, scores: dict) -> None:
        add_to_bins(self.bins[(key["scale"], key["condition"], key["method"])], *scores.pop("pixels"))
        self.rows.append({**key, **scores})

    def summary(self) -> list[dict]:
        """Mean over images per (scale, condition, method) and per dataset group ("all" = the sensor set)."""
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for row in self.rows:
            group = "real" if row["condition"] == REAL_CONDITION else "all"
            groups[(row["scale"], row["condition"], row["method"], group)].append(row)
            groups[(row["scale"], row["condition"], row["method"], row["dataset"])].append(row)
        out = []
        for (scale, condition, method, dataset), rows in sorted(groups.items(), key=lambda kv: str(kv[0])):
            entry = {"scale": scale, "condition": condition, "method": method, "dataset": dataset, "images": len(rows)}
            for field in self.FIELDS[6:]:
                values = [r[field] for r in rows if np.isfinite(r[field])]
                entry[field] = float(np.mean(values)) if values else float("nan")
            out.append(entry)
        return out

    def confidence_rows(self) -> list[dict]:
        rows = []
        for (scale, condition, method), table in sorted(self.bins.items(), key=lambda kv: str(kv[0])):
            for name, pixels, rmse_m, within in bin_stats(table):
                rows.append({"scale": scale, "condition": condition, "method": method, "bin": name,
                             "pixels": pixels, "rmse_cm": rmse_m * 100, "within_tolerance": within})
        return rows

    def markdown(self) -> str:
        summary = [s for s in self.summary() if s["dataset"] in ("all", "real")]
        lines = ["# Sensor protocol", "",
                 f"RMSE in cm over valid ground truth, every pixel predicted (min_confidence 0), mean over images; "
                 f"holes: ground truth under invalid LR cells, published at min_confidence {self.min_confidence}.", ""]
        for scale in sorted({s["scale"] for s in summary}):
            rows = [s for s in summary if s["scale"] == scale]
            methods = list(dict.fromkeys(s["method"] for s in rows))
            conditions = list(dict.fromkeys(s["condition"] for s in rows))
            lines += [f"## x{scale}: RMSE (cm)", "", "| condition | " + " | ".join(methods) + " |",
                      "|---|" + "---|" * len(methods)]
            for condition in conditions:
                cells = {s["method"]: s for s in rows if s["condition"] == condition}
                best = min((c["rmse_cm"] for c in cells.values()), default=float("nan"))
                lines.append(f"| {condition} ({cells[methods[0]]['images'] if methods[0] in cells else '?'} images) | "
                             + " | ".join(_cell(cells.get(m), best) for m in methods) + " |")
            lines += ["", f"## x{scale}: holes (condition tof)", "",
                      "| method | hole share | RMSE holes / elsewhere | holes published | RMSE published holes |",
                      "|---|---|---|---|---|"]
            for s in rows:
                if s["condition"] != "tof":
                    continue
                ratio = s["rmse_holes_cm"] / s["rmse_measured_cm"] if s["rmse_measured_cm"] else float("nan")
                lines.append(f"| {s['method']} | {s['hole_share']:.1%} | {s['rmse_holes_cm']:.2f} / "
                             f"{s['rmse_measured_cm']:.2f} = {ratio:.2f}x | {s['holes_published']:.1%} | "
                             f"{s['rmse_holes_published_cm']:.2f} |")
            lines.append("")
        return "\n".join(lines)

    def write(self) -> str:
        self.out.mkdir(parents=True, exist_ok=True)
        _write_csv(self.out / "sensor_per_image.csv", self.rows, self.FIELDS)
        summary = self.summary()
        _write_csv(self.out / "sensor_summary.csv", summary, list(summary[0]) if summary else ["scale"])
        confidence = self.confidence_rows()
        _write_csv(self.out / "sensor_confidence.csv", confidence, list(confidence[0]) if confidence else ["scale"])
        report = self.markdown()
        atomic_write_bytes(self.out / "sensor_results.md", report.encode())
        if confidence:
            plot_reliability(self.out / "sensor_reliability.png", confidence)
        return report


def _cell(entry: dict | None, best: float) -> str:
    if entry is None:
        return ""
    text = f"{entry['rmse_cm']:.2f}"
    return f"**{text}**" if np.isclose(entry["rmse_cm"], best) else text


def _write_csv(path: Path, rows: Sequence[dict], fields: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_bytes(path, buffer.getvalue().encode())


def plot_reliability(path: Path, rows: Sequence[dict]) -> None:
    """Per scale: share within tolerance against confidence (reliability) and RMSE per confidence bin."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tof = [r for r in rows if r["condition"] in ("tof", REAL_CONDITION) and r["pixels"] > 0]
    scales = sorted({r["scale"] for r in tof})
    fig = Figure(figsize=(9, 3.4 * max(len(scales), 1)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(len(scales), 1), 2, squeeze=False)
    centres, names = 0.5 * (CONFIDENCE_BINS[:-1] + CONFIDENCE_BINS[1:]), bin_names()
    for row_axes, scale in zip(axes, scales):
        ax_rel, ax_rmse = row_axes
        ax_rel.plot([0, 1], [0, 1], ":", color="grey", label="calibrated")
        methods = list(dict.fromkeys(r["method"] for r in tof if r["scale"] == scale))
        for (method, condition) in dict.fromkeys((r["method"], r["condition"]) for r in tof if r["scale"] == scale):
            sel = {r["bin"]: r for r in tof if r["scale"] == scale and r["method"] == method
                   and r["condition"] == condition}
            xs = [c for c, b in zip(centres, names) if b in sel]
            label = method if condition == "tof" else f"{method} ({condition})"
            style = dict(color=f"C{methods.index(method) % 10}", marker="o",  # a method's colour; real scenes dashed
                         linestyle="-" if condition == "tof" else "--", label=label)
            ax_rel.plot(xs, [sel[b]["within_tolerance"] for b in names if b in sel], **style)
            ax_rmse.plot(xs, [sel[b]["rmse_cm"] for b in names if b in sel], **style)
        ax_rel.set(xlabel="confidence", ylabel="share within tolerance", title=f"x{scale} reliability (real: dashed)",
                   xlim=(0, 1), ylim=(0, 1))
        ax_rmse.set(xlabel="confidence", ylabel="RMSE (cm)", yscale="log", title=f"x{scale} RMSE per confidence bin")
        ax_rel.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    atomic_write_bytes(path, buffer.getvalue())


def sensor_seed(dataset: str, index: int, draw: int, scale: int) -> list[int]:
    """The seed of one image's sensor draw: the same for every method and condition."""
    return [sum(map(ord, dataset)), index, draw, scale, 7]


def evaluate_sensor(frames: dict[str, Sequence[RGBDFrame]], predictors: dict[int, dict[str, object]],
                    results: SensorResults, *, draws: int = 2, conditions: Sequence[str] = SENSOR_CONDITIONS,
                    max_images: int | None = None, progress: bool = True) -> None:
    """Score every predictor (``predictors[scale][label]``, built with min_confidence 0) on every frame."""
    from tqdm import tqdm

    for dataset, frame_list in frames.items():
        count = len(frame_list) if max_images is None else min(max_images, len(frame_list))
        with tqdm(total=count * len(predictors), desc=f"sensor {dataset}", unit="img", disable=not progress,
                  file=sys.stderr, dynamic_ncols=True) as bar:
            for index in range(count):
                frame = frame_list[index]
                for scale, methods in predictors.items():
                    rgb, depth, valid = metric_frame(frame, scale)
                    lr_hw = (depth.shape[0] // scale, depth.shape[1] // scale)
                    inputs = []
                    for draw in range(draws if frame.depth_lr is None else 0):
                        for condition in conditions:
                            rng = np.random.default_rng(sensor_seed(dataset, index, draw, scale))
                            lr, _ = simulate_tof(depth, valid, rgb, lr_hw, rng, CONDITIONS[condition])
                            inputs.append((draw, condition, rgb, depth, valid, lr))
                    if frame.depth_lr is not None and frame.unit == "m":  # the image's own sensor
                        full_valid = frame.valid & valid_depth_mask(frame.depth, *VALID_RANGE_M)
                        inputs.append((0, REAL_CONDITION, frame.rgb, frame.depth.astype(np.float64), full_valid,
                                       np.nan_to_num(frame.depth_lr, nan=0.0).astype(np.float32)))
                    for draw, condition, rgb_in, depth_in, valid_in, lr in inputs:
                        for label, predictor in methods.items():
                            prediction = predictor.predict(rgb_in, lr)
                            key = {"dataset": dataset, "image": frame.name, "draw": draw, "scale": scale,
                                   "condition": condition, "method": label}
                            results.add(key, score_frame(prediction, depth_in, valid_in, lr, results.min_confidence))
                    bar.update(1)
        results.write()

