#!/bin/bash
# Score variant (c) with its four GTA α set to 0: what the trained semantic attention contributes.
set -e
cd /work/main
R=${R:-/work/main/runs/ablation_x8}
O=results/ablation_x8/c_efficientnet_attention/alpha_zero
mkdir -p $O
.venv/bin/python results/ablation_x8/alpha_zero.py $R/c_efficientnet_attention/last.safetensors /tmp/c_alpha_zero.safetensors
.venv/bin/naima-eval --checkpoint c_alpha_zero=/tmp/c_alpha_zero.safetensors --datasets middlebury,lu \
  --scales 8 --protocol deployed --baselines none --figures 0 --no-progress --out $O > $O/eval.log 2>&1
grep -A3 "| Method" $O/results.md | tail -n +1
