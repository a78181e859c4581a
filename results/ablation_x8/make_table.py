"""The ablation table (markdown) from each variant's eval/summary.csv, log.csv and alphas.json in this folder,
and val_curves.png: held-out validation RMSE of the four variants per epoch."""

import csv
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VARIANTS = [("a_none", "(a) no semantic branch"), ("b_random_vit", "(b) random frozen ViT-S/14, attention"),
            ("c_efficientnet_attention", "(c) EfficientNet-Lite0, GTA attention"),
            ("d_efficientnet_add", "(d) EfficientNet-Lite0, added (NAIMA+)")]

rows = ["| variant | steps | Middlebury x8 | Lu x8 | 6 held-out procedural (cm) | trained α (GTA1-4) |",
        "|---|---|---|---|---|---|"]
bicubic = {}
for name, label in VARIANTS:
    folder = HERE / name
    if not (folder / "eval" / "summary.csv").is_file():
        rows.append(f"| {label} | not finished | | | | |")
        continue
    scores = {}
    for r in csv.DictReader(open(folder / "eval" / "summary.csv")):
        if r["method"] == name:
            scores[r["dataset"]] = float(r["rmse"])
        elif r["method"].lower() == "bicubic":
            bicubic[r["dataset"]] = float(r["rmse"])
    log = list(csv.DictReader(open(folder / "log.csv")))
    steps = sum(int(r["steps"]) for r in log)
    val = next((r for r in reversed(log) if r.get("val_rmse")), {})
    info = json.loads((folder / "alphas.json").read_text())
    alphas = ", ".join("—" if a is None else f"{a:.4f}" for a in info["alphas"])
    mb, lu = scores.get("middlebury", float("nan")), scores.get("lu", float("nan"))
    rows.append(f"| {label} | {steps} | {mb:.4f} | {lu:.4f}"
                f" | {float(val.get('val_rmse', 'nan')):.4f} (bicubic {float(val.get('val_rmse_bicubic', 'nan')):.4f})"
                f" | {alphas} |")
if bicubic:
    rows.append(f"| bicubic | — | {bicubic.get('middlebury', float('nan')):.4f} | {bicubic.get('lu', float('nan')):.4f}"
                " | | |")
print("\n".join(rows))


def plot_validation() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    bicubic_val = None
    for name, label in VARIANTS:
        log_path = HERE / name / "log.csv"
        if not log_path.is_file():
            continue
        rows = list(csv.DictReader(open(log_path)))
        done = np.cumsum([int(r["steps"]) for r in rows])  # optimiser steps at the end of each logged row
        log = [(step, r) for step, r in zip(done, rows) if r.get("val_rmse")]
        ax.plot([s for s, _ in log], [float(r["val_rmse"]) for _, r in log], "o-", label=label)
        bicubic_val = float(log[-1][1]["val_rmse_bicubic"]) if log else bicubic_val
    if bicubic_val:
        ax.axhline(bicubic_val, color="grey", ls="--", label="bicubic")
    ax.set(xlabel="optimiser steps (batch 8, 128² patches)", ylabel="RMSE (cm), 6 held-out procedural scenes",
           title="x8 semantic ablation: validation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "val_curves.png", dpi=90)


plot_validation()
