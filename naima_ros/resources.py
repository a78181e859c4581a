"""Where the package's installed files are, and the checkpoint file a `checkpoint` value names.

ROS-free: the ament index is used when `ament_index_python` is importable (a colcon or apt
install), else the venv's `share/naima_ros` and the source tree. Both the node and the bag tools
resolve checkpoints here, so `naima_node` and `naima-bag` look in the same places.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["FASTDDS_PROFILE_ENV", "NAMED_CHECKPOINTS", "PACKAGE", "PARAMS_FILE", "SENSOR", "SENSOR_CHECKPOINTS",
           "SHIPPED", "SHIPPED_CHECKPOINTS", "large_data_profile", "resolve_checkpoint", "share_dirs", "share_file"]

PACKAGE = "naima_ros"
# The package's own model for each scale: what the `checkpoint` value "shipped" (the node's default) loads.
# Each is its sensor model (below) trained on further with mostly clean LR, chosen by the rule of
# results/sensor/README.md: better than the benchmark models on what a ToF camera sends, at most 5 % worse on the
# benchmarks; why each one: docs/results.md.
SHIPPED = "shipped"
SHIPPED_CHECKPOINTS = {
    4: "checkpoints/naima_mixed_x4.safetensors",  # light (random frozen encoder), validity input
    8: "checkpoints/naima_mixed_x8.safetensors",  # light + EfficientNet-Lite0 semantic tokens, validity input
    16: "checkpoints/naima_mixed_x16.safetensors",  # the same at x16
}
# The sensor-grade models (fine-tuned on simulated ToF input, with a validity input): the `checkpoint` value
# "sensor". The best here on what a ToF camera sends, 5-17 % worse on the benchmarks' clean LR.
SENSOR = "sensor"
SENSOR_CHECKPOINTS = {
    4: "checkpoints/naima_sensor_x4.safetensors",
    8: "checkpoints/naima_sensor_x8.safetensors",
    16: "checkpoints/naima_sensor_x16.safetensors",
}
NAMED_CHECKPOINTS = {SHIPPED: SHIPPED_CHECKPOINTS, SENSOR: SENSOR_CHECKPOINTS}


def share_dirs() -> list[Path]:
    """Where the package's installed data may be: ament index, the venv, the source tree."""
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, ValueError, OSError):
        pass  # no ament index (a pip venv): fall through to the other places
    dirs.append(Path(sys.prefix) / "share" / PACKAGE)
    source_root = Path(__file__).resolve().parents[1]
    if (source_root / "setup.py").is_file():
        dirs.append(source_root)
    return dirs


FASTDDS_PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
LARGE_DATA_PROFILE = "config/fastdds_large_data.xml"  # without it Fast DDS loses large images between processes


PARAMS_FILE = "config/naima.yaml"  # the node's parameters, every one declared


def share_file(relative: str) -> Path | None:
    """The first of `share_dirs()` holding a file of the package's share directory, None if none does."""
    return next((d / relative for d in share_dirs() if (d / relative).is_file()), None)


def large_data_profile() -> Path | None:
    """The package's Fast DDS large-data profile (docs/robot.md), None if it is not installed."""
    return share_file(LARGE_DATA_PROFILE)


def resolve_checkpoint(template: str, scale: int) -> Path:
    """The checkpoint file for a `checkpoint` value (`{scale}` is replaced, or a name of
    `NAMED_CHECKPOINTS`: "shipped", "sensor") and a scale.

    A relative path is looked up in the current directory, then in `share_dirs()`.

    Raises:
        ValueError: a placeholder other than `{scale}`.
        FileNotFoundError: no such file (or no shipped model of that scale); the message lists the places
            looked in.
    """
    if template in NAMED_CHECKPOINTS:
        named = NAMED_CHECKPOINTS[template]
        if scale not in named:
            raise FileNotFoundError(f"no {template} checkpoint for x{scale}; {template}: x{sorted(named)}")
        template = named[scale]
    try:
        name = str(template).format(scale=scale)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"checkpoint {template!r}: the only placeholder allowed is {{scale}} "
                         f"({exc!r})") from exc
    if not name:
        raise FileNotFoundError("checkpoint is empty")
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path] + [
        d / path for d in share_dirs()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"checkpoint {name!r} not found; looked in: "
                            f"{', '.join(str(c) for c in candidates)}")
