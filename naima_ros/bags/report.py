"""The evaluation report of a bag: markdown summary, per-frame CSV and PNG plots.

Files written into the report folder (each written to a temporary name, then renamed, so an
interrupted run never leaves a half-written file in place of a good one):
  report.md            summary table, latency, drops, links to the plots
  frames.csv           one row per depth frame: served, latency, RMSE/MAE/coverage per method
  per_frame_error.png  RMSE of every method per served frame
  latency_hist.png     histogram of stamp-to-publish latency
  strip.png            RGB | baselines | the node's output | ground truth, with |error| maps
  confidence.csv       per method and confidence bin: pixels, RMSE, share within tolerance
  reliability.png      the same as a reliability plot and RMSE per confidence bin
Plots use matplotlib's object API on the Agg canvas (no display, no global pyplot state).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from naima_ros.bags.evaluate import Evaluation
from naima_ros.fsio import atomic_write, atomic_write_bytes

__all__ = ["write_report"]


def _figure(width_in: float = 7.0, height_in: float = 3.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure, path: Path) -> None:
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _per_frame_plot(ev: Evaluation, path: Path) -> None:
    figure = _figure()
    ax = figure.subplots()
    served = ev.served
    t0 = ev.frames[0].stamp
    for method, marker in zip(ev.methods, ("o", "s", "^", "v")):
        xs = [(f.stamp - t0) / 1e9 for f in served if method in f.rmse]
        ys = [f.rmse[method] for f in served if method in f.rmse]
        ax.plot(xs, ys, marker=marker, markersize=3, linewidth=1, label=method)
    ax.set_xlabel("depth stamp since the first frame (s)")
    ax.set_ylabel(f"RMSE ({ev.unit})")
    ax.set_title(f"Per-frame error ({len(served)} served frames)")
    ax.grid(alpha=0.3)
    ax.legend()
    _save_png(figure, path)


def _latency_plot(ev: Evaluation, path: Path) -> None:
    figure = _figure(5.5, 3.2)
    ax = figure.subplots()
    lat = ev.latencies_ms()
    if lat.size:
        ax.hist(lat, bins=min(30, max(5, lat.size // 2)), color="tab:blue", alpha=0.8)
        for q, style in ((50, "--"), (95, ":")):
            v = np.percentile(lat, q)
            ax.axvline(v, color="k", linestyle=style, label=f"p{q} {v:.0f} ms")
        ax.legend()
    ax.set_xlabel("latency, depth frame published to output received (ms)")
    ax.set_ylabel("frames")
    ax.set_title("Stamp-to-publish latency")
    _save_png(figure, path)


def _strip(ev: Evaluation, path: Path) -> bool:
    from naima_ros.eval.figures import save_comparison_strip

    s = ev.strip
    if not s:
        return False
    factor = s["factor"]
    # baselines first, the node's output last (next to the ground truth)
    order = [m for m in ev.methods[1:] if m in s["preds"]] + [ev.methods[0]]
    preds = {m: s["preds"][m] * factor for m in order}
    frame = s["frame"]
    atomic_write(path, lambda tmp: save_comparison_strip(
        tmp, s["rgb"], preds, s["gt"] * factor, valid=s["gt_valid"], unit=ev.unit,
        title=f"frame {frame.index} {frame.name}".strip()))
    return True


def _csv(ev: Evaluation) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["index", "stamp_ns", "name", "served", "has_rgb", "latency_ms"]
    for m in ev.methods:
        header += [f"rmse_{m}_{ev.unit}", f"mae_{m}_{ev.unit}", f"coverage_{m}", f"beyond_tolerance_{m}"]
    writer.writerow(header)
    for f in ev.frames:
        row = [f.index, f.stamp, f.name, int(f.served), int(f.has_rgb),
               f"{f.latency_ms:.2f}" if np.isfinite(f.latency_ms) else ""]
        for m in ev.methods:
            row += [f"{d[m]:.6g}" if m in d and np.isfinite(d[m]) else ""
                    for d in (f.rmse, f.mae, f.coverage, f.beyond)]
        writer.writerow(row)
    return out.getvalue().encode()


def _confidence_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["method", "bin", "pixels", "rmse", "within_tolerance"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return out.getvalue().encode()


def _reliability_plot(ev: Evaluation, rows: list[dict], path: Path) -> None:
    figure = _figure(9.0, 3.4)
    ax_rel, ax_rmse = figure.subplots(1, 2)
    ax_rel.plot([0, 1], [0, 1], ":", color="grey", label="calibrated")
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method and r["pixels"]]
        centres = [float(r["bin"].split("-")[0]) + 0.05 for r in mine]
        ax_rel.plot(centres, [r["within_tolerance"] for r in mine], "o-", label=method)
        ax_rmse.plot(centres, [r["rmse"] for r in mine], "o-", label=method)
    ax_rel.set(xlabel="confidence", ylabel="share within tolerance", xlim=(0, 1), ylim=(0, 1),
               title="reliability")
    ax_rmse.set(xlabel="confidence", ylabel=f"RMSE ({ev.unit})", title="RMSE per confidence bin")
    ax_rel.legend(fontsize=7)
    _save_png(figure, path)


def write_report(ev: Evaluation, folder: str | Path) -> Path:
    """Write the report files of `ev` into `folder` (created); returns the markdown path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "frames.csv", _csv(ev))
    _per_frame_plot(ev, folder / "per_frame_error.png")
    _latency_plot(ev, folder / "latency_hist.png")
    has_strip = _strip(ev, folder / "strip.png")

    n, served = len(ev.frames), len(ev.served)
    lat = ev.latencies_ms()
    scale = f"x{ev.scale}" if ev.scale else "no frame served"
    lines = [f"# Depth super-resolution on `{Path(ev.bag).name}`", "",
             f"Bag: `{ev.bag}`; {scale}; errors in **{ev.unit}** (the ground truth's unit), "
             f"over pixels valid in the ground truth and the method's output; means over the "
             f"{served} served frames. Valid depth range {ev.min_depth}-{ev.max_depth} m.", "",
             f"| method | frames | RMSE ({ev.unit}) | MAE ({ev.unit}) | coverage | beyond tolerance |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in ev.methods:
        lines.append(f"| {m} | {ev.count(m)} | {ev.mean('rmse', m):.3f} | "
                     f"{ev.mean('mae', m):.3f} | {100 * ev.mean('coverage', m):.1f}% | "
                     f"{100 * ev.mean('beyond', m):.1f}% |")
    lines += ["", "Beyond tolerance: the share of published pixels off by more than 2 cm + 2 % of the depth."]
    rows = ev.confidence_rows()
    if rows:
        atomic_write_bytes(folder / "confidence.csv", _confidence_csv(rows))
        _reliability_plot(ev, rows, folder / "reliability.png")
        methods = list(dict.fromkeys(r["method"] for r in rows))
        lines += ["", "## Confidence", "",
                  f"Scored pixels pooled per confidence bin: RMSE ({ev.unit}) / share within tolerance "
                  "(calibrated: the share matches the bin). [confidence.csv](confidence.csv), "
                  "![reliability](reliability.png)", "",
                  "| confidence | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
        for b in dict.fromkeys(r["bin"] for r in rows):
            cells = {r["method"]: r for r in rows if r["bin"] == b}
            lines.append(f"| {b} | " + " | ".join(
                f"{cells[m]['rmse']:.3f} / {100 * cells[m]['within_tolerance']:.0f}%" if cells[m]["pixels"] else ""
                for m in methods) + " |")
    lines += ["", "## Latency and drops", ""]
    if lat.size:
        lines.append(f"- Latency, depth frame published to output received: p50 "
                     f"{np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, "
                     f"mean {lat.mean():.0f} ms, max {lat.max():.0f} ms.")
    lines.append(f"- Depth frames in the bag: {n}; served: {served}; dropped by the node: "
                 f"{n - served} ({100 * (n - served) / max(n, 1):.0f}%).")
    lines.append(f"- Depth frames without an RGB frame within the sync slop (the recording lost "
                 f"it): {ev.no_rgb}.")
    lines.append(f"- Lost in the recording: {ev.recording_lost} ({ev.recording_lost_source}).")
    if ev.node_drops:
        lines.append("- Node drop reasons (last /diagnostics): " + ", ".join(
            f"`{k}` {v}" for k, v in sorted(ev.node_drops.items())) + ".")
    if lost := ev.never_reached():
        lines.append(f"- {lost}.")
    lines += ["", "## Plots", "", "![per-frame error](per_frame_error.png)", "",
              "![latency histogram](latency_hist.png)", ""]
    if has_strip:
        lines += ["![qualitative strip](strip.png)", ""]
    lines += ["Per-frame numbers: [frames.csv](frames.csv).", ""]
    path = folder / "report.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path
