#!/bin/bash
# Every number of results/sensor/README.md: per scale, the sensor protocol (simulated ToF on Middlebury, Lu, NYU,
# Motorcycle; the RGB-D-D real scenes with their own phone-ToF LR) and the paper protocol (deployed, bicubic LR) for
# the baselines, the previous default and the sensor model; at x8 also the footprint-mean model and the sensor
# model's alpha = 0 copy (is the semantic branch used?). NEW<s>=... / OLD<s>=... / SCALES="8" override.
set -e
cd "$(dirname "$0")/../.."
O=results/sensor
EVAL=".venv/bin/naima-eval --no-progress --figures 0"
source $O/previous_defaults.sh
for S in ${SCALES:-4 8 16}; do
  var=NEW$S; NEW=${!var:-checkpoints/naima_sensor_x$S.safetensors}
  var=OLD$S; OLD=${!var:-${OLD_DEFAULT[$S]}}
  EXTRA=(); [ $S = 8 ] && EXTRA=(--checkpoint area=checkpoints/naima_semantic_x8_area.safetensors)
  $EVAL --protocol sensor --checkpoint previous=$OLD --checkpoint sensor=$NEW "${EXTRA[@]}" --scales $S \
    --out $O/sensor_x$S > $O/sensor_x$S.log 2>&1
  $EVAL --protocol deployed --checkpoint previous=$OLD --checkpoint sensor=$NEW "${EXTRA[@]}" --scales $S \
    --datasets middlebury,lu --out $O/paper_x$S > $O/paper_x$S.log 2>&1
done
if [[ " ${SCALES:-4 8 16} " == *" 8 "* ]]; then
  NEW=${NEW8:-checkpoints/naima_sensor_x8.safetensors}
  .venv/bin/python results/ablation_x8/alpha_zero.py $NEW /tmp/sensor_x8_alpha_zero.safetensors > /dev/null
  $EVAL --protocol sensor --checkpoint sensor_alpha0=/tmp/sensor_x8_alpha_zero.safetensors --baselines none \
    --scales 8 --out $O/sensor_x8_alpha_zero > $O/sensor_x8_alpha_zero.log 2>&1
fi
