#!/bin/bash
# Evaluate one finished ablation variant: naima-eval (deployed protocol, Middlebury + Lu, x8) + trained alphas.
set -e
v=$1
R=${R:-/work/main/runs/ablation_x8}
O=/work/main/results/ablation_x8/$v
mkdir -p $O
cd /work/main
cp $R/$v/log.csv $R/$v/config.yaml $O/
cp $R/$v/training.png $O/ 2>/dev/null || true
tr '\r' '\n' < $R/$v/train.log | grep -v "s/it\|it/s\|?it" | grep -v "^\s*$" > $O/train.log || true
OMP_NUM_THREADS=1 .venv/bin/naima-eval --checkpoint $v=$R/$v/last.safetensors --datasets middlebury,lu \
  --scales 8 --protocol deployed --baselines bicubic --figures 0 --no-progress --out $O/eval > $O/eval.log 2>&1
.venv/bin/python - "$R/$v/last.safetensors" > $O/alphas.json <<'PY'
import json, sys
from naima_ros.checkpoint import load_checkpoint
model, meta = load_checkpoint(sys.argv[1])
alphas = [float(g.attention.alpha.detach()) if g.attention is not None and hasattr(g.attention, "alpha") else None
          for g in model.gtas]
print(json.dumps({"alphas": alphas, "semantic_encoder": meta.get("semantic_encoder"),
                  "training": {k: meta["training"].get(k) for k in ("epochs_completed", "next_epoch", "next_step",
                                                                  "elapsed_s", "stopped_early")},
                  "metrics": meta.get("metrics")}, indent=1))
PY
echo "evaluated $v"
