"""The shipping rule of README.md, applied to the evaluation folders here: prints one line per candidate.

A candidate replaces the node's default of its scale iff (1) its sensor-protocol `tof` RMSE (mean over the 80 images)
is below the previous default's and (2) its deployed-protocol mean RMSE on Middlebury and on Lu is at most 5 % above
the previous default's. Run from the repository root: `python results/sensor/rule.py`.
"""
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAPER_MARGIN = 1.05
# (scale, candidate label, its method label, its sensor folder, its paper folder); the previous default's rows are in
# evaluate.sh's folders, as method "previous"
CANDIDATES = [(s, label, method, sensor, paper) for s in (4, 8, 16) for label, method, sensor, paper in (
    ("stage 2", "sensor", f"sensor_x{s}", f"paper_x{s}"),
    ("stage 3", "stage3", f"stage3_sensor_x{s}", f"stage3_paper_x{s}"),
    ("stage 4", "stage4", f"stage4_sensor_x{s}", f"stage4_paper_x{s}"))]


def tof_rmse(folder: str, method: str, scale: int) -> float | None:
    path = HERE / folder / "sensor_summary.csv"
    if not path.is_file():
        return None
    return next((float(r["rmse_cm"]) for r in csv.DictReader(path.open())
                 if (r["scale"], r["condition"], r["method"], r["dataset"]) == (str(scale), "tof", method, "all")),
                None)


def paper_rmse(folder: str, method: str) -> dict[str, float] | None:
    path = HERE / folder / "per_image.csv"
    if not path.is_file():
        return None
    rows: dict[str, list[float]] = {}
    for r in csv.DictReader(path.open()):
        if r["method"] == method:
            rows.setdefault(r["dataset"], []).append(float(r["rmse"]))
    return {dataset: statistics.mean(values) for dataset, values in rows.items()}


def main() -> None:
    print("scale  candidate  tof cm (previous)  rule 1  Middlebury / Lu (bars)  rule 2  replaces the default")
    previous = {s: (tof_rmse(f"sensor_x{s}", "previous", s), paper_rmse(f"paper_x{s}", "previous")) for s in (4, 8, 16)}
    for scale, label, method, sensor, paper in CANDIDATES:
        tof, clean = tof_rmse(sensor, method, scale), paper_rmse(paper, method)
        if tof is None or clean is None:
            continue
        old_tof, old_clean = previous[scale]
        rule1 = tof < old_tof
        bars = {d: PAPER_MARGIN * old_clean[d] for d in ("middlebury", "lu")}
        rule2 = all(clean[d] <= bars[d] for d in bars)
        print(f"x{scale:<5} {label:<10} {tof:6.2f} ({old_tof:.2f})     {'pass' if rule1 else 'fail':<7} "
              f"{clean['middlebury']:.3f} / {clean['lu']:.3f} ({bars['middlebury']:.3f} / {bars['lu']:.3f})  "
              f"{'pass' if rule2 else 'fail':<7} {'yes' if rule1 and rule2 else 'no'}")

if __name__ == "__main__":
    main()
