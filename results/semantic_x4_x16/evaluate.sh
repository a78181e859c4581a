#!/bin/bash
# Score the semantics-aware x4 and x16 against the light demos they started from and the baselines (deployed
# protocol), their α = 0 copies (is the semantic branch used?), and a ToF-like bag per scale made like the demo's
# (80 procedural rooms + 3 Motorcycle frames, 320x240, holes + noise) through naima-bag.
# SCALES="4" or CK4=... / CK16=... score one scale or another checkpoint. The x4 was not shipped: its default is the
# run's output (naima-train --config config/train/semantic_x4.yaml).
set -e
cd "$(dirname "$0")/../.."
O=results/semantic_x4_x16
for S in ${SCALES:-4 16}; do
  default=checkpoints/naima_semantic_x$S.safetensors; [ $S = 4 ] && default=runs/semantic_x4/last.safetensors
  var=CK$S; CK=${!var:-$default}
  DEMO=checkpoints/naima_light_x${S}_demo.safetensors
  .venv/bin/naima-eval --checkpoint semantic_x$S=$CK --checkpoint light_demo_x$S=$DEMO --datasets middlebury,lu \
    --scales $S --protocol deployed --baselines bicubic,guided_filter,jbu --figures 2 --no-progress \
    --out $O/eval_x$S > $O/eval_x$S.log 2>&1
  .venv/bin/python results/ablation_x8/alpha_zero.py $CK /tmp/semantic_x${S}_alpha_zero.safetensors > /dev/null
  .venv/bin/naima-eval --checkpoint semantic_x${S}_alpha0=/tmp/semantic_x${S}_alpha_zero.safetensors \
    --datasets middlebury,lu --scales $S --protocol deployed --baselines none --figures 0 --no-progress \
    --out $O/eval_x${S}_alpha_zero > $O/eval_x${S}_alpha_zero.log 2>&1
  for f in eval_x$S eval_x${S}_alpha_zero; do echo "== $f"; cat $O/$f/summary.csv; done
  B=/tmp/tof_bag_x$S  # the demo bag's recipe (python -m naima_ros.demo) at this scale
  [ -d $B ] || .venv/bin/naima-bag make $B --source procedural:80 --source motorcycle:3 --size 320x240 --scale $S \
    --tof-holes --tof-noise --gap-s 2 --no-progress > /dev/null
  for model in semantic_x$S=$CK light_demo_x$S=$DEMO; do
    rm -rf /tmp/x_run && .venv/bin/naima-bag run $B /tmp/x_run --checkpoint ${model#*=} --no-progress > /dev/null
    echo "== ToF-like bag x$S, ${model%%=*}"
    .venv/bin/naima-bag eval /tmp/x_run --report $O/bag_x${S}_${model%%=*} --no-progress | sed -n 1,4p
    rm -rf /tmp/x_run
  done
done
