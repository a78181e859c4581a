"""The node's parameters as ROS sees them: `naima_ros.contract.PARAMETERS` turned into declared
parameters with descriptors (ranges, choices, read-only), and the node's parameter callbacks
(`ParameterCallbacks`, a mixin of `naima_ros.ros.phases.NodePhases`): validation without side
effects, then the changes applied; a model change loads in the background (`naima_ros.model_slot`).
"""
from __future__ import annotations

import time

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.parameter import Parameter

from naima_ros.contract import MODEL_PARAMETERS, PARAMETERS, ParameterSpec, check_parameters
from naima_ros.model_slot import ModelSpec, check_spec
from naima_ros.serving import ServeConfig, check_scale

__all__ = ["ParameterCallbacks", "declare_parameters", "descriptor", "result"]

SIZES_CURRENT_S = 5.0  # frames decoded this recently are "the frames arriving" (scale check)


def descriptor(p: ParameterSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(name=p.name, description=p.description, read_only=p.read_only)
    if p.int_range:
        d.integer_range = [IntegerRange(from_value=p.int_range[0], to_value=p.int_range[1],
                                        step=p.int_range[2])]
    if p.float_range:
        d.floating_point_range = [FloatingPointRange(from_value=p.float_range[0],
                                                     to_value=p.float_range[1], step=0.0)]
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(map(str, p.choices))
    return d


def declare_parameters(node) -> dict:
    """Declare every parameter of the table; returns {name: value} after overrides."""
    for p in PARAMETERS:
        node.declare_parameter(p.name, p.default, descriptor(p))
    return {p.name: node.get_parameter(p.name).value for p in PARAMETERS}


def result(reason: str | None) -> SetParametersResult:
    """Accept (`reason` None) or reject with the reason."""
    if reason is None:
        return SetParametersResult(successful=True)
    return SetParametersResult(successful=False, reason=reason)


class ParameterCallbacks:
    """The on-set validation and the post-set application of parameter changes."""

    def _spec(self, values=None) -> ModelSpec:
        v = values or self._values
        return ModelSpec(str(v["method"]), str(v["checkpoint"]), int(v["scale"]),
                         str(v["device"]), str(v["precision"]))

    def _warmup(self) -> tuple[int, int, int]:
        v = self._values
        return v["warmup_iterations"], v["warmup_height"], v["warmup_width"]

    def validate_parameters_callback(self, params: list[Parameter]):
        """Reject invalid values with a reason; no side effects (those are in the post-set)."""
        new = {p.name: p.value for p in params}
        reason = check_parameters(new, self._values)
        if reason is None and any(name in new for name in MODEL_PARAMETERS):
            spec = self._spec({**self._values, **new})
            model = self._slot.model  # None: not configured yet (lifecycle)
            if model is None or spec.key != model.spec.key:
                try:
                    check_spec(spec)
                except (ValueError, OSError) as exc:
                    reason = f"model not changed: {exc}"
        sizes = self._server.last_sizes
        resize = new.get("resize_rgb_to_multiple", self._values["resize_rgb_to_multiple"])
        if (reason is None and "scale" in new and not resize and sizes is not None
                and not self._values["register_depth"]  # registration makes the LR grid
                and time.monotonic() - self._server.last_sizes_at < SIZES_CURRENT_S):
            reason = check_scale(int(new["scale"]), sizes)
        return result(reason)

    def parameters_set_callback(self, params: list[Parameter]) -> None:
        """Apply accepted changes (values from `params`: on Humble they are not stored yet)."""
        self._values = {**self._values, **{p.name: p.value for p in params}}
        self._config = ServeConfig.from_values(self._values)
        self._throttle.period_s = self._values["warn_throttle"]
        if any(p.name in MODEL_PARAMETERS for p in params) and self._slot.model is not None:
            spec = self._spec()
            if spec != self._slot.model.spec:
                self._slot.swap(spec, self._warmup(), self._revert, self._stats.event)

    def _revert(self, kept: ModelSpec, failed: ModelSpec) -> None:
        """After a failed swap: the parameters go back to the served model's, unless a newer
        request came meanwhile."""
        if self._spec() == failed:
            self.set_parameters([Parameter(n, value=getattr(kept, n)) for n in MODEL_PARAMETERS
                                 if getattr(kept, n) != getattr(failed, n)])
