#!/bin/bash
# Stage 3 (README "Stage 3, and its rule"): per scale, calibrate the run's last weights (a copy,
# runs/sensor_x<s>_stage3/candidate.safetensors) and score them alone on the sensor protocol and on the paper protocol
# (Middlebury, Lu). The baselines, the previous default and stage 2 are evaluate.sh's: the sensor draws are seeded
# per image, so the rows compare. Then the condition added with stage 3, aligned (the whole sensor without its
# misregistration), for the methods evaluate.sh scored before it existed. SCALES="8" overrides.
set -e
cd "$(dirname "$0")/../.."
O=results/sensor
EVAL=".venv/bin/naima-eval --no-progress --figures 0"
declare -A OLD_DEFAULT=([4]=checkpoints/naima_light_x4_demo.safetensors [8]=checkpoints/naima_semantic_x8.safetensors
                        [16]=checkpoints/naima_semantic_x16.safetensors)
for S in ${SCALES:-4 8 16}; do
  RUN=runs/sensor_x${S}_stage3
  cp $RUN/last.safetensors $RUN/candidate.safetensors
  .venv/bin/python -m naima_ros.eval.calibrate --checkpoint $RUN/candidate.safetensors > $O/stage3_calibrate_x$S.log 2>&1
  $EVAL --baselines none --protocol sensor --checkpoint stage3=$RUN/candidate.safetensors --scales $S \
    --out $O/stage3_sensor_x$S > $O/stage3_sensor_x$S.log 2>&1
  $EVAL --baselines none --protocol deployed --checkpoint stage3=$RUN/candidate.safetensors --scales $S \
    --datasets middlebury,lu --out $O/stage3_paper_x$S > $O/stage3_paper_x$S.log 2>&1
  $EVAL --protocol sensor --conditions aligned --checkpoint previous=${OLD_DEFAULT[$S]} \
    --checkpoint sensor=checkpoints/naima_sensor_x$S.safetensors --scales $S \
    --out $O/aligned_x$S > $O/aligned_x$S.log 2>&1
done
