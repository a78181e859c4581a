"""The node's parameters as ROS sees them: `naima_ros.serving.PARAMETERS` turned into declared
parameters with descriptors (ranges, choices, read-only), and validation results."""
from __future__ import annotations

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)

from naima_ros.serving import PARAMETERS, ParameterSpec

__all__ = ["declare_parameters", "descriptor", "result"]


def descriptor(p: ParameterSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(name=p.name, description=p.description, read_only=p.read_only)
    if p.int_range:
        d.integer_range = [IntegerRange(from_value=p.int_range[0], to_value=p.int_range[1],
                                        step=p.int_range[2])]
    if p.float_range:
        d.floating_point_range = [FloatingPointRange(from_value=p.float_range[0],
                                                     to_value=p.float_range[1], step=0.0)]
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
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
