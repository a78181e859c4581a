"""The node's model: load and warm up a predictor, swap it in the background, keep the old one on
failure. ROS-free (the node passes its logger and parameter revert as callbacks).

A `ModelSpec` is what the parameters ask for (method, checkpoint, scale, device, precision).
`check_spec` is the test run when a parameter is set, before the change is accepted: file
present, metadata readable, scale matches, device exists, and every tensor name and shape in the
safetensors header fits the model the metadata builds (built on torch's meta device: no weights
are read, no memory is used). `ModelSlot.swap` loads and warms up the new
predictor on a thread of its own, then replaces the served one with one reference assignment, so
the worker never sees a half-loaded model; a failed load leaves the old one serving.

torch is imported only for method `naima` (by `naima_ros.predictors`, `naima_ros.checkpoint`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from naima_ros.resources import resolve_checkpoint

__all__ = ["LoadedModel", "ModelLoadError", "ModelSlot", "ModelSpec", "check_spec",
           "check_tensors", "load_predictor"]

NETWORK = "naima"  # the one method with a checkpoint, a device and a precision


class ModelLoadError(RuntimeError):
    """The model could not be resolved, loaded or warmed up; the message says why."""


@dataclass(frozen=True)
class ModelSpec:
    method: str
    checkpoint: str  # the parameter value, before '{scale}' substitution and lookup
    scale: int
    device: str
    precision: str

    @property
    def key(self) -> tuple:
        """What identifies the loaded model: a baseline has no checkpoint, device or precision."""
        if self.method != NETWORK:
            return (self.method, self.scale)
        return (self.method, self.checkpoint, self.scale, self.device, self.precision)


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    path: Path | None  # the checkpoint file (None for a baseline)
    predictor: object  # see naima_ros.predictors: __call__, .scale, .describe(), .warmup()

    @property
    def scale(self) -> int:
        return int(self.predictor.scale)

    def describe(self) -> dict:
        """The predictor's own description, plus the method and the checkpoint file."""
        d = dict(self.predictor.describe()) if hasattr(self.predictor, "describe") else {}
        d["method"] = self.spec.method
        if self.path is not None:
            d["checkpoint"] = str(self.path)
        d.setdefault("scale", self.scale)
        return d

    def summary(self) -> str:
        """One line for the log: method, file, preset, scale, device, precision."""
        d = self.describe()
        if self.path is None:
            return f"method {self.spec.method} (x{self.scale}, no network)"
        return (f"model {self.path.name} (method {self.spec.method}, preset {d.get('preset')}, "
                f"x{self.scale}, {d.get('device')}, {d.get('precision')})")


def load_predictor(method: str, *, checkpoint=None, scale=None, device="auto",
                   precision="auto"):
    """The default predictor factory: `naima_ros.predictors.load_predictor`."""
    from naima_ros.predictors import load_predictor as load
    return load(method, checkpoint=checkpoint, scale=scale, device=device, precision=precision)


def check_tensors(path: Path, meta: dict) -> None:
    """Every tensor name and shape in the safetensors header of `path` against the model its
    metadata `meta` builds (on the meta device), as `naima_ros.checkpoint.load_checkpoint` would
    load it, without reading a weight.

    Raises:
        CheckpointError (a ValueError): the model it describes cannot be built, or what differs.
    """
    import torch
    from safetensors import safe_open

    from naima_ros.checkpoint import CheckpointError, state_dict_mismatch
    from naima_ros.model import build_model

    try:
        with torch.device("meta"):
            model = build_model(meta["preset"], meta["scale"], warn_untrained=False,
                                **meta.get("overrides", {}))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: metadata describes an invalid model: {exc}") from exc
    with safe_open(str(path), framework="pt") as f:
        state = {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}
    if meta.get("backbone", {}).get("seed") is not None:  # regenerated from its seed: not stored
        state.update({k: v for k, v in model.state_dict().items() if k.startswith("backbone.")})
    problem = state_dict_mismatch(model, state)
    if problem:
        raise CheckpointError(f"{path}: {problem} of a {meta['preset']} x{meta['scale']} model")


def check_spec(spec: ModelSpec) -> Path | None:
    """The checks of a spec that need no weights; returns the checkpoint file (None: baseline).

    Raises:
        ValueError, OSError: what is wrong (unknown placeholder, missing file, wrong scale,
            unusable device, not a checkpoint, tensors that do not fit its model).
    """
    if spec.method != NETWORK:
        return None
    path = resolve_checkpoint(spec.checkpoint, spec.scale)
    from naima_ros.checkpoint import read_metadata  # torch: only for the network
    from naima_ros.inference import resolve_device

    meta = read_metadata(path)
    if int(meta["scale"]) != spec.scale:
        raise ValueError(f"checkpoint {path} is a x{meta['scale']} model but scale is "
                         f"{spec.scale}")
    resolve_device(spec.device)
    check_tensors(path, meta)
    return path


class ModelSlot:
    """The predictor being served, and its replacement while one loads.

    Args:
        factory: `factory(method, *, checkpoint, scale, device, precision) -> predictor`
            (default `load_predictor`).
        log_info, log_error: where progress and failures are told.
    """

    def __init__(self, factory: Callable | None = None, *,
                 log_info: Callable[[str], None] = print,
                 log_error: Callable[[str], None] = print):
        self._factory = factory or load_predictor
        self._log_info, self._log_error = log_info, log_error
        self._lock = threading.Lock()
        self.model: LoadedModel | None = None
        self.state = "idle"  # the last swap: idle, loading ..., ok: ..., failed: ...

    def load(self, spec: ModelSpec, warmup: tuple[int, int, int] = (0, 0, 0)) -> LoadedModel:
        """Resolve, load and warm up a model (any thread; nothing shared is touched).

        Args:
            warmup: (iterations, height, width) of the warm-up frames.
        """
        path = check_spec(spec)
        # a baseline runs on the CPU in its own precision, whatever the network's settings
        device, precision = (spec.device, spec.precision) if path else ("auto", "auto")
        predictor = self._factory(spec.method, checkpoint=path, scale=spec.scale, device=device,
                                  precision=precision)
        model = LoadedModel(spec, path, predictor)
        if model.scale != spec.scale:
            raise ValueError(f"{path or spec.method} loaded as a x{model.scale} model, expected "
                             f"x{spec.scale}")
        iterations, height, width = warmup
        if iterations:
            t0 = time.monotonic()
            for _ in range(iterations):
                predictor.warmup(height, width)
            self._log_info(f"warm-up: {iterations} x {width}x{height} in "
                           f"{time.monotonic() - t0:.2f} s")
        return model

    def start(self, spec: ModelSpec, warmup: tuple[int, int, int]) -> LoadedModel:
        """Load the first model in this thread.

        Raises:
            ModelLoadError: with the reason.
        """
        try:
            self.model = self.load(spec, warmup)
        except Exception as exc:  # noqa: BLE001 (any failure ends start-up with its reason)
            raise ModelLoadError(f"cannot start: {exc}") from exc
        return self.model

    def swap(self, spec: ModelSpec, warmup: tuple[int, int, int],
             on_failure: Callable[[ModelSpec, ModelSpec], None], on_event=None) -> threading.Thread:
        """Load `spec` on a background thread and serve it once warmed up.

        Args:
            on_failure: `on_failure(kept_spec, failed_spec)` after a failed load (the old model
                keeps serving), e.g. to revert the parameters.
            on_event: `on_event(name)` with `model_swap` or `model_swap_failed`.
        """
        thread = threading.Thread(target=self._swap, args=(spec, warmup, on_failure,
                                                           on_event or (lambda name: None)),
                                  name="naima_model_swap", daemon=True)
        thread.start()
        return thread

    def _swap(self, spec, warmup, on_failure, on_event) -> None:
        with self._lock:
            old = self.model
            if spec.key == old.spec.key:
                self.model = LoadedModel(spec, old.path, old.predictor)  # nothing to load
                return
            self.state = f"loading {spec.method} {spec.checkpoint} x{spec.scale}"
            self._log_info(f"loading a new model in the background: {spec}")
            try:
                model = self.load(spec, warmup)
            except Exception as exc:  # noqa: BLE001 (a failed swap keeps the old model)
                self.state = f"failed: {exc}"
                on_event("model_swap_failed")
                self._log_error(f"model swap failed, keeping {old.summary()}: {exc}")
                on_failure(old.spec, spec)
                return
            self.model = model  # one reference assignment: the worker picks it up next frame
            self.state = f"ok: {model.path.name if model.path else spec.method}"
            on_event("model_swap")
            self._log_info(f"swapped in {model.summary()}")
