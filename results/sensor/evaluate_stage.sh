#!/bin/bash
# Stages 3 and 4 (README "Stage 3, and its rule"): per scale, calibrate the run's last weights (a copy,
# runs/sensor_x<s>_stage<n>/candidate.safetensors) and score them alone on the sensor protocol and on the paper protocol
# (Middlebury, Lu); python results/sensor/rule.py then applies the rule. The baselines, the previous default and
# stage 2 are evaluate.sh's: the sensor draws are seeded per image, so the rows compare. With stage 3 also the condition
# added then, aligned (the whole sensor without its misregistration), for the methods evaluate.sh scored before it
# existed. STAGE=4 (default 3) and SCALES="8" (default "4 8 16") override.
set -e
cd "$(dirname "$0")/../.."
O=results/sensor
EVAL=".venv/bin/naima-eval --no-progress --figures 0"
source $O/previous_defaults.sh
N=${STAGE:-3}
for S in ${SCALES:-4 8 16}; do
  RUN=runs/sensor_x${S}_stage$N
  cp $RUN/last.safetensors $RUN/candidate.safetensors
  .venv/bin/python -m naima_ros.eval.calibrate --checkpoint $RUN/candidate.safetensors > $O/stage${N}_calibrate_x$S.log 2>&1
  $EVAL --baselines none --protocol sensor --checkpoint stage$N=$RUN/candidate.safetensors --scales $S \
    --out $O/stage${N}_sensor_x$S > $O/stage${N}_sensor_x$S.log 2>&1
  $EVAL --baselines none --protocol deployed --checkpoint stage$N=$RUN/candidate.safetensors --scales $S \
    --datasets middlebury,lu --out $O/stage${N}_paper_x$S > $O/stage${N}_paper_x$S.log 2>&1
  if [ $N = 3 ]; then
    $EVAL --protocol sensor --conditions aligned --checkpoint previous=${OLD_DEFAULT[$S]} \
      --checkpoint sensor=checkpoints/naima_sensor_x$S.safetensors --scales $S \
      --out $O/aligned_x$S > $O/aligned_x$S.log 2>&1
  fi
done
