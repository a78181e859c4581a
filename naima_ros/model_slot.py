"""The node's model: load and warm up a predictor, swap it in the background, keep the old one on
failure. ROS-free (the node passes its logger and parameter revert as callbacks).

A `ModelSpec` is what the parameters ask for (method, checkpoint, scale, device, precision).
`check_spec` is the test run when a parameter is set, before the change is accepted: the checks
the load makes, without reading a weight (`naima_ros.checkpoint.check_checkpoint`: file present,
metadata readable, scale matches, every tensor name and shape in the safetensors header fits the
model the metadata builds on torch's meta device) and the device's. `ModelSlot.swap` loads and
warms up the new predictor on a thread of its own, then replaces the served one with one reference assignment, so
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
           "checkpoint_path", "load_predictor"]

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


def checkpoint_path(spec: ModelSpec) -> Path | None:
    """The checkpoint file a spec names (None for a baseline), looked up where the node looks.

    Raises:
        ValueError, FileNotFoundError: an unknown placeholder, no such file.
    """
    return resolve_checkpoint(spec.checkpoint, spec.scale) if spec.method == NETWORK else None


def check_spec(spec: ModelSpec) -> Path | None:
    """The checks of a spec that need no weights; returns the checkpoint file (None: baseline).

    The checkpoint's are `naima_ros.checkpoint.check_checkpoint`'s, the device's
    `naima_ros.inference.resolve_device`'s: the ones the load itself makes.

    Raises:
        ValueError, OSError: what is wrong (unknown placeholder, missing file, wrong scale,
            unusable device, not a checkpoint, tensors that do not fit its model).
    """
    path = checkpoint_path(spec)
    if path is None:
        return None
    from naima_ros.checkpoint import check_checkpoint  # torch: only for the network
    from naima_ros.inference import resolve_device

    check_checkpoint(path, expect_scale=spec.scale)
    resolve_device(spec.device)
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
        path = checkpoint_path(spec)
        # a baseline runs on the CPU in its own precision, whatever the network's settings;
        # the factory checks the checkpoint (its scale too), the device and the precision
        device, precision = (spec.device, spec.precision) if path else ("auto", "auto")
        predictor = self._factory(spec.method, checkpoint=path, scale=spec.scale, device=device,
                                  precision=precision)
        model = LoadedModel(spec, path, predictor)
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
