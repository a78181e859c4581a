"""ROS 2 parameter files (`--params-file` YAML) read the way rclpy applies them to a node, ROS-free.

A file maps node names to `ros__parameters`: a key is a node name, absolute (`/ns/naima`) or not
(`naima`), with the wildcards `*` (one name token) and `**` (any number), or a namespace whose
value nests further (`ns: {naima: {ros__parameters: ...}}`). Parameter names nest too: `{a: {b:
1}}` is the parameter `a.b` (diagnostic_updater's `diagnostic_updater.period`). Every entry that
matches the node applies, in file order: a later one overrides an earlier one.

Used where the node's parameters matter before the node runs (`naima-bag replay` waits for the
depth CameraInfo subscription when they say register_depth) and by the tests that compare
config/naima.yaml with `naima_ros.contract`.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

__all__ = ["flatten", "node_parameters"]

PARAMETERS_KEY = "ros__parameters"


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested parameter dicts as dotted names: {"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _entries(tree: dict, prefix: str = ""):
    """(node name pattern, parameters) of every node entry, in file order."""
    for key, value in tree.items():
        if not isinstance(value, dict):
            continue
        name = f"{prefix}/{str(key).strip('/')}"
        if PARAMETERS_KEY in value:
            yield name, value[PARAMETERS_KEY] or {}
        else:
            yield from _entries(value, name)


def _matches(pattern: str, node: str) -> bool:
    regex = "".join("(?:/[^/]+)*" if token == "**" else "/[^/]+" if token == "*"
                    else "/" + re.escape(token) for token in pattern.strip("/").split("/"))
    return re.fullmatch(regex, node) is not None


def node_parameters(path: str | Path, node_name: str, namespace: str = "/") -> dict:
    """The parameters a params file gives the node `namespace`/`node_name`, flattened.

    Raises:
        OSError: the file cannot be read. yaml.YAMLError: it is not YAML.
    """
    tree = yaml.safe_load(Path(path).read_text()) or {}
    node = "/" + "/".join(t for t in (*namespace.split("/"), node_name) if t)
    values = {}
    for pattern, parameters in _entries(tree if isinstance(tree, dict) else {}):
        if _matches(pattern, node):
            values.update(flatten(parameters))
    return values
