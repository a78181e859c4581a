#!/bin/bash
# The four variants in parallel, 1 thread each, from a frozen copy of the code (src/, commit in src/COMMIT).
cd /work/main/runs/ablation_x8/src
CFG=/work/main/runs/ablation_x8/src/ablation_x8.yaml
R=/work/main/runs/ablation_x8
declare -A OV=( [a_none]="{encoder: none}" [b_random_vit]="{encoder: dinov2_vits14, token_shuffle: 4}" [c_efficientnet_attention]="{}" [d_efficientnet_add]="{attention: add}" )
for v in a_none b_random_vit c_efficientnet_attention d_efficientnet_add; do
  mkdir -p $R/$v
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup nice -n 10 /work/main/.venv/bin/python -m naima_ros.train --config $CFG \
    --data_path=/work/shared/data --out=$R/$v "--model_overrides=${OV[$v]}" > $R/$v/train.log 2>&1 &
  echo "$v $!" >> $R/pids.txt
done
