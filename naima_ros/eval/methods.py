"""naima-eval's methods: the rows of its tables, each a predictor under the ``deployed`` protocol.

A method turns a prepared :class:`~naima_ros.eval.protocols.Sample` into an (H, W) prediction
normalised like the sample's ground truth. Under ``deployed`` every method, network or baseline,
is a ``naima_ros.predictors`` predictor called on the uint8 RGB and the LR in the dataset's unit,
as the node calls it. Under the paper's protocols the network gets the protocol's tensors
(``Upsampler.predict_normalised``) and the baselines the protocol's LR directly. ``bicubic_pil``
(the literature's "Bicubic" row: PIL for both the LR and the upsampling) is evaluation-only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from naima_ros import baselines
from naima_ros.checkpoint import CheckpointError
from naima_ros.eval.protocols import EvalError, Sample
from naima_ros.inference import Upsampler
from naima_ros.options import BASELINE_METHODS
from naima_ros.predictors import load_predictor
from naima_ros.resample import resize_bicubic_pil

__all__ = ["EVAL_BASELINES", "Method", "baseline_method", "load_models", "model_method"]

EVAL_BASELINES = BASELINE_METHODS + ("bicubic_pil",)


@dataclasses.dataclass
class Method:
    """A row of the tables: a baseline (every scale) or a checkpoint (its own scale)."""

    label: str
    kind: str  # "baseline" or "model"
    predict: Callable[[Sample], np.ndarray]  # -> (H, W) normalised prediction
    scale: int | None = None
    info: dict = dataclasses.field(default_factory=dict)


def baseline_method(name: str) -> Method:
    """The baseline ``name`` (one of ``EVAL_BASELINES``), labelled with its one spelling."""
    if name == "bicubic_pil":
        def predict(sample: Sample) -> np.ndarray:
            source = sample.lr_source
            lr = resize_bicubic_pil(source, (source.shape[0] // sample.scale, source.shape[1] // sample.scale))
            return sample.crop(baselines.bicubic_pil(sample.base_rgb, lr, sample.scale))
        return Method(name, "baseline", predict, info={"baseline": name})
    if name not in BASELINE_METHODS:
        raise EvalError(f"unknown baseline {name!r}; choose from {', '.join(EVAL_BASELINES)}")
    function = baselines.BASELINES[name]
    predictors: dict[int, Callable] = {}

    def predict(sample: Sample) -> np.ndarray:
        if sample.protocol == "deployed":
            if sample.scale not in predictors:
                predictors[sample.scale] = load_predictor(name, scale=sample.scale)
            return sample.crop(sample.normalise_depth(predictors[sample.scale](sample.rgb_uint8, sample.lr_depth)))
        return sample.crop(function(sample.base_rgb, sample.base_lr, sample.scale))

    return Method(name, "baseline", predict, info={"baseline": name})


def model_method(label: str, upsampler: Upsampler) -> Method:
    """A checkpoint's row: the predictor itself under ``deployed``, the network on the protocol's tensors
    otherwise."""
    multiple = upsampler.model.config.size_multiple

    def predict(sample: Sample) -> np.ndarray:
        if sample.protocol == "deployed":
            return sample.crop(sample.normalise_depth(upsampler(sample.rgb_uint8, sample.lr_depth)))
        if sample.padded and sample.net_rgb.shape[-1] % multiple:
            raise EvalError(f"{upsampler.checkpoint}: the reference protocol runs the network on "
                            f"{sample.net_rgb.shape[-1]}² but this model needs multiples of {multiple}")
        return sample.crop(upsampler.predict_normalised(sample.net_rgb, sample.net_lr))

    return Method(label, "model", predict, scale=upsampler.scale, info=upsampler.describe())


def _default_label(path: Path) -> str:
    """File stem without its scale token, so ``naima_x4`` and ``naima_x8`` share a row."""
    label = re.sub(r"[_\-.]?x(4|8|16)(?=$|[_\-.])", "", path.stem)
    return label or path.stem


def load_models(specs: Sequence[str], device: str, precision: str) -> list[Method]:
    """``[LABEL=]PATH`` arguments -> model methods (checkpoints loaded and validated)."""
    methods, seen = [], set()
    for spec in specs:
        label, _, path_text = spec.partition("=") if ("=" in spec and not Path(spec).exists()) else ("", "", spec)
        path = Path(path_text)
        try:
            upsampler = load_predictor("naima", checkpoint=path, device=device, precision=precision)
        except CheckpointError as error:
            raise EvalError(str(error)) from error
        except ValueError as error:  # device / precision
            raise EvalError(f"{path}: {error}") from error
        label = label or _default_label(path)
        if (label, upsampler.scale) in seen:
            raise EvalError(f"two checkpoints are labelled {label!r} at x{upsampler.scale}; name them with LABEL=PATH")
        seen.add((label, upsampler.scale))
        methods.append(model_method(label, upsampler))
    return methods
