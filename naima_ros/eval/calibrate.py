"""Fit the confidence calibration of a method (``naima_ros.confidence``) on simulated sensor frames.

Training data only: RGB-D-D frames of the shared ``rgbdd360`` set (the three real-scene frames, held
out for evaluation, are left out), each given to the method as the LR of one simulated ToF camera
(``naima_ros.data.tof``, every component, a seeded draw per frame), every pixel predicted
(``min_confidence`` 0). The features of ``confidence_features`` and whether each pixel lands within
``confidence.TOLERANCE`` of the ground truth are pooled over a random subset of pixels per frame and
fitted by logistic regression.

    python -m naima_ros.eval.calibrate --baselines --out naima_ros/confidence_calibration.json
    python -m naima_ros.eval.calibrate --checkpoint checkpoints/naima_sensor_x8.safetensors  # stamps the file

A checkpoint's calibration is written into its own metadata (``confidence``); the baselines' and the
generic network entries go to the package's ``confidence_calibration.json``. Each fit also prints the
largest ``min_confidence`` that still fills 80 % of the hole pixels of these frames: the node's default
``min_confidence`` is the smallest of those of the shipped models, rounded down to 0.05 (the rule of
results/sensor/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from naima_ros.confidence import (HOLE_CONFIDENCE_MAX, Calibration, confidence_features, fit_calibration,
                                  within_tolerance)
from naima_ros.data.tof import CONDITIONS, simulate_tof

__all__ = ["HELD_OUT", "calibration_samples", "main"]

HELD_OUT = ("20200509112638", "20200509113453", "20200509114515")  # the RGB-D-D real scenes, evaluation only
FRAMES = 36  # every tenth frame of the 360
PIXELS_PER_FRAME = 20_000
SEED = 2024


def calibration_frames(shared_root=None):
    from naima_ros.data.shared import load_rgbdd_train360

    frames = load_rgbdd_train360(shared_root)
    picks = [i for i, name in enumerate(frames.names) if name not in HELD_OUT][:: len(frames) // FRAMES][:FRAMES]
    return [frames[i] for i in picks]


def calibration_samples(predictor, frames, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, 5), within tolerance (N,)) of ``predictor`` on ToF-simulated ``frames``."""
    from naima_ros.frames import prepare_frame

    xs, ys = [], []
    for index, frame in enumerate(frames):
        h, w = frame.depth.shape[0] // scale, frame.depth.shape[1] // scale
        rgb, depth = frame.rgb[: h * scale, : w * scale], frame.depth[: h * scale, : w * scale].astype(np.float64)
        valid = frame.valid[: h * scale, : w * scale]
        rng = np.random.default_rng([SEED, index, scale])
        lr, _ = simulate_tof(depth, valid, rgb, (h, w), rng, CONDITIONS["tof"])
        if not np.isfinite(lr).any():
            continue
        prediction = predictor.predict(rgb, lr)
        prepared = prepare_frame(rgb, lr, predictor.min_depth, predictor.max_depth, scale=predictor.scale)
        features = confidence_features(prepared, prediction.depth)
        scored = np.flatnonzero(valid & np.isfinite(prediction.depth))
        pick = rng.choice(scored, size=min(PIXELS_PER_FRAME, scored.size), replace=False)
        xs.append(features.reshape(len(features), -1)[:, pick].T)
        ys.append(within_tolerance(prediction.depth.reshape(-1)[pick], depth.reshape(-1)[pick]))
    return np.concatenate(xs), np.concatenate(ys)


def hole_confidence_percentile(calibration: Calibration, features: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of the confidence of hole pixels (feature ``hole`` 1) under ``calibration``
    (capped as published): ``q`` = 20 is the largest ``min_confidence`` that still fills 80 % of the holes."""
    holes = features[features[:, 0] == 1]
    if not len(holes):
        return float("nan")
    logit = holes @ np.asarray(calibration.weights) + calibration.bias
    return float(np.percentile(np.minimum(1.0 / (1.0 + np.exp(-logit)), HOLE_CONFIDENCE_MAX), q))


def fit_for(predictor, frames, scale: int, label: str) -> Calibration:
    x, y = calibration_samples(predictor, frames, scale)
    calibration = fit_calibration(x, y, fitted_on=f"{label}: {len(frames)} rgbdd360 frames (real scenes held out), "
                                                  f"one simulated ToF each, {len(y)} pixels")
    print(f"{label}: {y.mean():.1%} of {len(y)} pixels within tolerance; weights "
          f"{', '.join(f'{w:.3f}' for w in calibration.weights)}, bias {calibration.bias:.3f}; "
          f"{x[:, 0].mean():.1%} hole pixels, 80 % of them at confidence >= "
          f"{hole_confidence_percentile(calibration, x, 20):.3f}", file=sys.stderr)
    return calibration


def main(argv=None) -> int:
    from naima_ros.checkpoint import update_metadata
    from naima_ros.options import BASELINE_METHODS, SCALES
    from naima_ros.predictors import load_predictor

    parser = argparse.ArgumentParser(prog="python -m naima_ros.eval.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="a naima_ros checkpoint: its calibration is written into its metadata (repeatable)")
    parser.add_argument("--generic", action="append", default=[], metavar="PATH",
                        help="a checkpoint whose calibration becomes the package's naima_x<scale> entry, for "
                             "checkpoints without their own")
    parser.add_argument("--baselines", action="store_true", help="fit bicubic, guided_filter, jbu at x4, x8, x16")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "confidence_calibration.json"),
                        help="the package's calibration table (default: the installed package's)")
    parser.add_argument("--shared-data", default=None, help="shared data folder (default: $NAIMA_SHARED_DATA)")
    args = parser.parse_args(argv)
    try:
        frames = calibration_frames(args.shared_data)
        out = Path(args.out)
        table = json.loads(out.read_text()) if out.is_file() else {}
        options = dict(min_depth=0.1, max_depth=10.0, min_confidence=0.0)
        if args.baselines:
            for method in BASELINE_METHODS:
                for scale in SCALES:
                    predictor = load_predictor(method, scale=scale, **options)
                    table[f"{method}_x{scale}"] = fit_for(predictor, frames, scale, f"{method} x{scale}").to_dict()
        for path in args.generic:
            predictor = load_predictor("naima", checkpoint=path, device="cpu", **options)
            table[f"naima_x{predictor.scale}"] = fit_for(predictor, frames, predictor.scale, Path(path).name).to_dict()
        if args.baselines or args.generic:
            out.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")
        for path in args.checkpoint:
            predictor = load_predictor("naima", checkpoint=path, device="cpu", **options)
            calibration = fit_for(predictor, frames, predictor.scale, Path(path).name)
            update_metadata(path, confidence=calibration.to_dict())
    except (OSError, ValueError) as error:
        print(f"calibrate: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
