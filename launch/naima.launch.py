"""Launch NaimaNode: `ros2 launch naima_ros naima.launch.py [arg:=value ...]`.

Arguments: params_file (default: the installed config/naima.yaml), namespace, node_name, node_type
(plain: naima_node; lifecycle: naima_lifecycle_node as a launch_ros LifecycleNode, unconfigured
until a lifecycle manager or `ros2 lifecycle set` moves it), scale and checkpoint (empty: keep the
params file's), use_sim_time, log_level, respawn and respawn_delay, one remap argument per topic of
`naima_ros.contract.TOPICS` (its `launch_argument`: rgb_topic, rgb_info_topic, depth_topic,
depth_info_topic, output_image_topic, ..., diagnostics_topic; an output under depth_registered/
left empty follows output_prefix), output_prefix (replaces depth_registered/ in the node's
outputs), and fastdds_profile: the node's FASTDDS_DEFAULT_PROFILES_FILE (empty: the user's, if set,
else the installed config/fastdds_large_data.xml; `none`: leave the environment alone).
Subscribers in other processes need the same profile (docs/robot.md, "Large messages over DDS").

The node is rclpy, so it runs in its own process: it cannot be loaded into a component container
(docs/node.md, "Composition and zero copy").

Without the launch system the same node runs as
`naima_node --ros-args --params-file config/naima.yaml -r rgb/image_rect_color:=/camera/color/...`.
"""
import os
from collections.abc import Mapping

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from naima_ros.contract import OUTPUT_NAMESPACE, TOPICS, parameter
from naima_ros.resources import FASTDDS_PROFILE_ENV, PACKAGE, PARAMS_FILE, large_data_profile, share_dirs, share_file

EXECUTABLES = {"plain": "naima_node", "lifecycle": "naima_lifecycle_node"}  # by node_type
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def default_params_file() -> str:
    """config/naima.yaml of the installed package (or of the source tree)."""
    path = share_file(PARAMS_FILE)
    if path is None:
        raise FileNotFoundError(f"{PACKAGE}: {PARAMS_FILE} is not installed; looked in "
                                f"{', '.join(map(str, share_dirs()))}")
    return str(path)


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
        return {FASTDDS_PROFILE_ENV: profile}
    if environ.get(FASTDDS_PROFILE_ENV) or shipped is None:
        return {}
    return {FASTDDS_PROFILE_ENV: shipped}


def shipped_profile() -> str | None:
    """The installed large-data profile (naima_ros.resources, as naima-bag replay uses it), None if missing."""
    path = large_data_profile()
    return None if path is None else str(path)


# every contract topic has a remap argument; those under depth_registered/ also follow output_prefix
REMAPPED = list(TOPICS.values())
PREFIXED = tuple(t.role for t in REMAPPED if t.name.startswith(OUTPUT_NAMESPACE + "/"))
TRUE = ("true", "1", "yes")

# (name, default, description); params_file's default is filled in at launch time
ARGUMENTS = (
    ("params_file", None, "YAML parameter file of the node"),
    ("namespace", "", "namespace of the node and its relative topics"),
    ("node_name", "naima", "name of the node"),
    ("node_type", "plain", "plain (naima_node) or lifecycle (naima_lifecycle_node: a managed "
     "node, unconfigured until configured and activated)"),
    ("scale", "", f"{parameter('scale').description} (empty: from params_file)"),
    ("checkpoint", "", f"{parameter('checkpoint').description} (empty: from params_file)"),
    ("use_sim_time", "false", "use /clock (true/false)"),
    ("log_level", "info", f"the node's log level: {', '.join(LOG_LEVELS)}"),
    ("respawn", "false", "restart the node when it exits (true/false)"),
    ("respawn_delay", "2.0", "seconds before a respawn"),
    *((t.launch_argument, "" if t.role in PREFIXED else t.name,
       f"{t.direction}: {t.description}" + (f" (empty: <output_prefix>/"
                                             f"{t.name[len(OUTPUT_NAMESPACE) + 1:]})"
                                             if t.role in PREFIXED else ""))
      for t in REMAPPED),
    ("output_prefix", OUTPUT_NAMESPACE, "prefix of the outputs "
     + ", ".join(TOPICS[role].name[len(OUTPUT_NAMESPACE) + 1:] for role in PREFIXED)),
    ("fastdds_profile", "", ("FASTDDS_DEFAULT_PROFILES_FILE of the node (empty: the user's if "
                             "set, else the shipped large-data profile; none: leave the "
                             "environment alone)")),
)


def node_config(values: dict, environ: Mapping[str, str] | None = None,
                shipped: str | None = None) -> dict:
    """launch_ros `Node` / `LifecycleNode` keyword arguments for resolved launch-argument values
    (pure).

    Raises:
        ValueError: an unknown node_type or log_level, or a respawn_delay that is no number.
    """
    node_type, log_level = values["node_type"].strip(), values["log_level"].strip().lower()
    if node_type not in EXECUTABLES:
        raise ValueError(f"node_type must be one of {', '.join(EXECUTABLES)}, got {node_type!r}")
    if log_level not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    overrides = {"use_sim_time": values["use_sim_time"].strip().lower() in TRUE}
    if values["scale"].strip():
        overrides["scale"] = int(values["scale"])
    if values["checkpoint"].strip():
        overrides["checkpoint"] = values["checkpoint"].strip()
    prefix = values["output_prefix"].rstrip("/")

    def target(t) -> str:
        given = values[t.launch_argument].strip()
        return given or prefix + t.name[len(OUTPUT_NAMESPACE):]  # empty: only outputs

    remappings = [(t.name, target(t)) for t in REMAPPED]
    return {
        "package": PACKAGE,
        "executable": EXECUTABLES[node_type],
        "name": values["node_name"],
        "namespace": values["namespace"],
        "parameters": [values["params_file"], overrides],
        "remappings": [(src, dst) for src, dst in remappings if src != dst],
        "arguments": ["--ros-args", "--log-level", log_level],
        "respawn": values["respawn"].strip().lower() in TRUE,
        "respawn_delay": float(values["respawn_delay"]),
        "additional_env": node_environment(values.get("fastdds_profile", ""),
                                           {} if environ is None else environ, shipped),
        "output": "screen",
        "emulate_tty": True,
    }


def launch_setup(context):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    action = LifecycleNode if values["node_type"].strip() == "lifecycle" else Node
    return [action(**node_config(values, os.environ, shipped_profile()))]


def generate_launch_description():
    defaults = {"params_file": default_params_file()}
    arguments = [DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                       description=description)
                 for name, default, description in ARGUMENTS]
    return LaunchDescription(arguments + [OpaqueFunction(function=launch_setup)])
