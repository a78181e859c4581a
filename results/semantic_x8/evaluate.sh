#!/bin/bash
# Score the semantics-aware x8 against the light demo it started from and the baselines (deployed protocol,
# shave 6 and shave 0), its α = 0 copy (is the semantic branch used?), and the demo bag through naima-bag.
set -e
cd "$(dirname "$0")/../.."
CK=${CK:-checkpoints/naima_semantic_x8.safetensors}  # CK=... O=... score another checkpoint into another folder
O=${O:-results/semantic_x8}
.venv/bin/naima-eval --checkpoint semantic_x8=$CK --checkpoint light_demo_x8=checkpoints/naima_light_x8_demo.safetensors \
  --datasets middlebury,lu --scales 8 --protocol deployed --baselines bicubic,guided_filter,jbu --figures 2 \
  --no-progress --out $O/eval_deployed > $O/eval_deployed.log 2>&1
.venv/bin/naima-eval --checkpoint semantic_x8=$CK --checkpoint light_demo_x8=checkpoints/naima_light_x8_demo.safetensors \
  --datasets middlebury,lu --scales 8 --protocol deployed --shave 0 --baselines bicubic --figures 0 \
  --no-progress --out $O/eval_deployed_shave0 > $O/eval_deployed_shave0.log 2>&1
.venv/bin/python results/ablation_x8/alpha_zero.py $CK /tmp/semantic_alpha_zero.safetensors
.venv/bin/naima-eval --checkpoint semantic_x8_alpha0=/tmp/semantic_alpha_zero.safetensors --datasets middlebury,lu \
  --scales 8 --protocol deployed --baselines none --figures 0 --no-progress --out $O/eval_alpha_zero > $O/eval_alpha_zero.log 2>&1
for f in eval_deployed eval_deployed_shave0 eval_alpha_zero; do echo "== $f"; cat $O/$f/summary.csv; done
if [ -d out/demo/sample_bag ]; then  # the demo's bag (make demo): held-out procedural rooms + Motorcycle, ToF-like
  rm -rf $O/bag_run && .venv/bin/naima-bag run out/demo/sample_bag $O/bag_run --checkpoint $CK --no-progress > /dev/null
  .venv/bin/naima-bag eval $O/bag_run --report $O/bag_report --no-progress | sed -n 1,4p; rm -rf $O/bag_run
fi
