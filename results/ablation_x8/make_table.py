"""The ablation table (markdown) from each variant's eval/summary.csv, log.csv and alphas.json in this folder."""

import csv
import json
from pathlib import Path

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
