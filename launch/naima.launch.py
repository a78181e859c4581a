"""Launch NaimaNode: `ros2 launch naima_ros naima.launch.py [arg:=value ...]`.

Arguments: params_file (default: the installed config/naima.yaml), namespace, node_name, scale and
checkpoint (empty: keep the params file's), use_sim_time, the topic remaps rgb_topic,
rgb_info_topic, depth_topic (the `launch_argument`s of `naima_ros.contract.TOPICS`) and
output_prefix (replaces depth_registered/ in the node's outputs), and fastdds_profile: the node's
FASTDDS_DEFAULT_PROFILES_FILE (empty: the user's, if set, else the installed
config/fastdds_large_data.xml; `none`: leave the environment alone). Subscribers in other
processes need the same profile (docs/robot.md, "Large messages over DDS").

Without the launch system the same node runs as
`naima_node --ros-args --params-file config/naima.yaml -r rgb/image_rect_color:=/camera/color/...`.
"""
import os
from collections.abc import Mapping

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from naima_ros.contract import OUTPUT_NAMESPACE, TOPICS, parameter

PACKAGE = "naima_ros"
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
LARGE_DATA_PROFILE = "fastdds_large_data.xml"


def share_file(*parts: str) -> str:
    """A file of the installed package's share directory (or of the source tree beside this file)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return os.path.join(get_package_share_directory(PACKAGE), *parts)
    except (ImportError, LookupError, ValueError, OSError):
        return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *parts)


def default_params_file() -> str:
    """config/naima.yaml of the installed package (or of the source tree beside this file)."""
    return share_file("config", "naima.yaml")


def node_environment(profile: str, environ: Mapping[str, str], shipped: str | None) -> dict:
    """Variables to add to the node's environment for the `fastdds_profile` argument (pure).

    Args:
        profile: the argument: a path; empty for automatic; `none` to add nothing.
        environ: the environment the launch runs in (the node inherits it).
        shipped: path of the installed large-data profile, None if it is not installed.

    Returns:
        `{FASTDDS_DEFAULT_PROFILES_FILE: path}` or `{}`. Automatic keeps a profile the user
        already exported and otherwise uses the shipped one.
    """
    profile = profile.strip()
    if profile.lower() == "none":
        return {}
    if profile:
        return {PROFILE_ENV: profile}
    if environ.get(PROFILE_ENV) or shipped is None:
        return {}
    return {PROFILE_ENV: shipped}


def shipped_profile() -> str | None:
    path = share_file("config", LARGE_DATA_PROFILE)
    return path if os.path.isfile(path) else None


# the contract's topics with a remap argument of their own, and the outputs output_prefix moves
REMAPPED = [t for t in TOPICS.values() if t.launch_argument]
PREFIXED = [t for t in TOPICS.values() if t.name.startswith(OUTPUT_NAMESPACE + "/")]

# (name, default, description); params_file's default is filled in at launch time
ARGUMENTS = (
    ("params_file", None, "YAML parameter file of the node"),
    ("namespace", "", "namespace of the node and its relative topics"),
    ("node_name", "naima", "name of the node"),
    ("scale", "", f"{parameter('scale').description} (empty: from params_file)"),
    ("checkpoint", "", f"{parameter('checkpoint').description} (empty: from params_file)"),
    ("use_sim_time", "false", "use /clock (true/false)"),
    *((t.launch_argument, t.name, f"{t.direction}: {t.description}") for t in REMAPPED),
    ("output_prefix", OUTPUT_NAMESPACE, "prefix of the outputs "
     + ", ".join(t.name[len(OUTPUT_NAMESPACE) + 1:] for t in PREFIXED)),
    ("fastdds_profile", "", ("FASTDDS_DEFAULT_PROFILES_FILE of the node (empty: the user's if "
                             "set, else the shipped large-data profile; none: leave the "
                             "environment alone)")),
)


def node_config(values: dict, environ: Mapping[str, str] | None = None,
                shipped: str | None = None) -> dict:
    """launch_ros `Node` keyword arguments for resolved launch-argument values (pure)."""
    overrides = {"use_sim_time": values["use_sim_time"].strip().lower() in ("true", "1", "yes")}
    if values["scale"].strip():
        overrides["scale"] = int(values["scale"])
    if values["checkpoint"].strip():
        overrides["checkpoint"] = values["checkpoint"].strip()
    prefix = values["output_prefix"].rstrip("/")
    remappings = [(t.name, values[t.launch_argument]) for t in REMAPPED] + [
        (t.name, prefix + t.name[len(OUTPUT_NAMESPACE):]) for t in PREFIXED]
    return {
        "package": PACKAGE,
        "executable": "naima_node",
        "name": values["node_name"],
        "namespace": values["namespace"],
        "parameters": [values["params_file"], overrides],
        "remappings": [(src, dst) for src, dst in remappings if src != dst],
        "additional_env": node_environment(values.get("fastdds_profile", ""),
                                           {} if environ is None else environ, shipped),
        "output": "screen",
        "emulate_tty": True,
    }


def launch_setup(context):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    return [Node(**node_config(values, os.environ, shipped_profile()))]


def generate_launch_description():
    defaults = {"params_file": default_params_file()}
    arguments = [DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                       description=description)
                 for name, default, description in ARGUMENTS]
    return LaunchDescription(arguments + [OpaqueFunction(function=launch_setup)])
