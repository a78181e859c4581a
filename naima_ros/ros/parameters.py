"""The node's parameters as ROS sees them: `naima_ros.contract.PARAMETERS` turned into declared
parameters with descriptors (ranges, choices, read-only), and the node's parameter callbacks
(`ParameterCallbacks`, a mixin of `naima_ros.ros.phases.NodePhases`): validation without side
effects, then the changes applied; a model change loads in the background (`naima_ros.model_slot`).
"""
from __future__ import annotations

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.parameter import Parameter

from naima_ros.contract import (MODEL_PARAMETERS, PARAMETERS, RENAMED_PARAMETERS, ParameterSpec,
                                check_parameters, parameter)
from naima_ros.model_slot import ModelSpec, check_spec
from naima_ros.serving import ServeConfig

__all__ = ["ParameterCallbacks", "declare_parameters", "descriptor", "result"]



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
    """Declare every parameter of the table, and the old names of renamed ones; returns
    {name: value} after overrides (an old name's value under its new name, with a warning)."""
    values = {}
    for p in PARAMETERS:
        # an empty list cannot be typed from its value: declared as a string array, not set
        unset = p.default == []
        node.declare_parameter(p.name, Parameter.Type.STRING_ARRAY if unset else p.default,
                               descriptor(p))
        value = node.get_parameter_or(p.name, None)  # a string array not set: no value
        values[p.name] = list(p.default) if value is None or value.value is None else value.value
    for old, new in RENAMED_PARAMETERS.items():
        node.declare_parameter(old, None, ParameterDescriptor(
            name=old, description=f"deprecated: use {new}", read_only=True, dynamic_typing=True))
        given = node.get_parameter(old).value
        if given is None:
            continue
        spec = parameter(new)
        try:
            value = type(spec.default)(given)
            if spec.float_range and not spec.float_range[0] <= value <= spec.float_range[1]:
                raise ValueError(f"outside {spec.float_range[0]}..{spec.float_range[1]}")
        except (TypeError, ValueError) as exc:
            node.get_logger().warning(f"parameter {old} is deprecated (use {new}) and its value "
                                      f"{given!r} is ignored: {exc}")
            continue
        if values[new] != spec.default:
            node.get_logger().warning(f"parameter {old} is deprecated and ignored: {new} is set "
                                      f"({values[new]})")
        else:
            node.get_logger().warning(f"parameter {old} is deprecated: use {new} (taking "
                                      f"{old}'s {value})")
            values[new] = value
    return values


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
