"""naima-eval's outputs: per-image and summary CSV, markdown tables shaped like the paper's, run.json.

Written atomically (``naima_ros.fsio``) after every dataset, so an interrupted run keeps what it
finished. Summaries reduce per-image RMSEs with ``metrics.mean_over_images`` (the papers' mean).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

from naima_ros.data.registry import DATASETS, SHARED_SUBSET
from naima_ros.eval import metrics
from naima_ros.eval.methods import Method
from naima_ros.eval.paper import PAPER_NAIMA, README_BICUBIC_ANCHORS
from naima_ros.eval.protocols import PROTOCOLS
from naima_ros.fsio import atomic_write_text
from naima_ros.options import SCALES

__all__ = ["PER_IMAGE_FIELDS", "SUMMARY_FIELDS", "Results", "csv_text", "markdown_report", "summarise"]


PER_IMAGE_FIELDS = ("dataset", "image", "method", "scale", "rmse", "unit", "protocol")
SUMMARY_FIELDS = ("dataset", "method", "scale", "rmse", "unit", "images", "protocol", "source")


def csv_text(fields: Sequence[str], rows: Sequence[dict]) -> str:
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
                    methods: Sequence[Method], max_images: int | None, shave: int | None = None) -> str:
    """Tables shaped like the paper's Tables 1 (NYU / RGB-D-D / TOFDSR, cm), 2 (Middlebury) and 3 (Lu)."""
    value = {(r["dataset"], r["method"], r["scale"]): r["rmse"] for r in summary}
    count = {(r["dataset"], r["method"], r["scale"]): r["images"] for r in summary}
    labels = list(dict.fromkeys(m.label for m in methods))
    lines = ["# naima-eval results", "",
             f"Protocol: **{protocol}** ({PROTOCOLS[protocol].description}). RMSE per image, averaged over images.",
             ""]
    if shave is not None and shave != PROTOCOLS[protocol].shave:
        lines += [f"Border shave overridden: {shave} px (--shave).", ""]
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

    table1 = [d for d in datasets if DATASETS[d].paper_table == 1]
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
                  "numbers), so its NAIMA (paper) row shows —; add them to `PAPER_NAIMA` in naima_ros/eval/paper.py.",
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


class Results:
    """Rows so far and their files; rewritten atomically whenever a dataset finishes."""

    def __init__(self, out: Path, protocol: str, datasets: Sequence[str], sources: dict[str, str],
                 methods: Sequence[Method], max_images: int | None, run_info: dict):
        self.out, self.protocol, self.datasets, self.sources = out, protocol, datasets, sources
        self.methods, self.max_images, self.run_info = methods, max_images, run_info
        self.rows: list[dict] = []

    def write(self) -> str:
        summary = summarise(self.rows, self.sources)
        done = [d for d in self.datasets if any(r["dataset"] == d for r in self.rows)]
        report = markdown_report(summary, self.protocol, done, self.sources, self.methods, self.max_images,
                                 self.run_info.get("shave"))
        atomic_write_text(self.out / "per_image.csv", csv_text(PER_IMAGE_FIELDS, [
            {**r, "rmse": f"{r['rmse']:.6f}"} for r in self.rows]))
        atomic_write_text(self.out / "summary.csv", csv_text(SUMMARY_FIELDS, [
            {**r, "rmse": f"{r['rmse']:.6f}"} for r in summary]))
        atomic_write_text(self.out / "results.md", report)
        atomic_write_text(self.out / "run.json", json.dumps({**self.run_info, "datasets_done": done}, indent=2) + "\n")
        return report
