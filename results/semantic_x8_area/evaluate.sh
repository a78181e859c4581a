#!/bin/bash
# Score the footprint-mean (area) fine-tune against the shipped x8 it started from: the benchmarks with area and
# with bicubic LR (deployed protocol), the demo bag, and small sensor-like bags (clean / noise / holes / both).
set -e
cd "$(dirname "$0")/../.."
CK=${CK:-runs/semantic_x8_area/last.safetensors}
O=results/semantic_x8_area
SHIPPED=checkpoints/naima_semantic_x8.safetensors
for lr in area antialias; do
  .venv/bin/naima-eval --checkpoint area_x8=$CK --checkpoint shipped_x8=$SHIPPED --datasets middlebury,lu --scales 8 \
    --protocol deployed --lr-synthesis $lr --baselines bicubic --figures 0 --no-progress --out $O/eval_lr_$lr \
    > $O/eval_lr_$lr.log 2>&1
  echo "== LR synthesis $lr"; cat $O/eval_lr_$lr/summary.csv
done
bag() {  # bag, checkpoint, report folder: the summary, then mean per-frame RMSE (mm) per source (rooms, Motorcycle)
  rm -rf /tmp/area_run && .venv/bin/naima-bag run $1 /tmp/area_run --checkpoint $2 --no-progress > /dev/null
  .venv/bin/naima-bag eval /tmp/area_run --report $3 --no-progress | sed -n 1,4p; rm -rf /tmp/area_run
  .venv/bin/python - $3/frames.csv <<'PY'
import csv, collections, sys
per_source = collections.defaultdict(list)
for row in csv.DictReader(open(sys.argv[1])):
    if row["served"] == "1":
        per_source[row["name"].split("_")[0]].append((float(row["rmse_naima_mm"]), float(row["rmse_bicubic_mm"])))
for source, values in sorted(per_source.items()):
    print(f"  {source}: model {sum(v[0] for v in values) / len(values):.1f}, bicubic "
          f"{sum(v[1] for v in values) / len(values):.1f} mm over {len(values)} frames")
PY
}
if [ -d out/demo/sample_bag ]; then echo "== demo bag, area fine-tune"; bag out/demo/sample_bag $CK $O/bag_demo; fi
for kind in clean noise holes both; do  # docs/results.md's sensor-like bags: 3 Motorcycle frames + 20 rooms, 320x240
  B=/tmp/sensor_bag_$kind
  flags=$(case $kind in noise) echo --tof-noise;; holes) echo --tof-holes;; both) echo --tof-noise --tof-holes;; esac)
  [ -d $B ] || .venv/bin/naima-bag make $B --source motorcycle:3 --source procedural:20 --size 320x240 \
    --drop-rate 0 --jitter-ms 0 $flags --no-progress > /dev/null
  echo "== bag $kind, area fine-tune"; bag $B $CK $O/bag_$kind
  echo "== bag $kind, shipped"; bag $B $SHIPPED /tmp/bag_${kind}_shipped
done
