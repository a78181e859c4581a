"""Launch NaimaNode: `ros2 launch naima_ros naima.launch.py [arg:=value ...]`.

Arguments: params_file (default: the installed config/naima.yaml), namespace, node_name, scale and
checkpoint (empty: keep the params file's), use_sim_time, and the topic remaps rgb_topic,
rgb_info_topic, depth_topic and output_prefix (the node's depth_registered/* outputs).

Without the launch system the same node runs as
`naima_node --ros-args --params-file config/naima.yaml -r rgb/image_rect_color:=/camera/color/...`.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "naima_ros"


def default_params_file() -> str:
    """config/naima.yaml of the installed package (or of the source tree beside this file)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return os.path.join(get_package_share_directory(PACKAGE), "config", "naima.yaml")
    except (ImportError, LookupError, ValueError, OSError):
        return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "config", "naima.yaml")


# (name, default, description); params_file's default is filled in at launch time
ARGUMENTS = (
    ("params_file", None, "YAML parameter file of the node"),
    ("namespace", "", "namespace of the node and its relative topics"),
    ("node_name", "naima", "name of the node"),
    ("scale", "", "super-resolution factor 4, 8 or 16 (empty: from params_file)"),
    ("checkpoint", "", "NAIMA .safetensors checkpoint (empty: from params_file)"),
    ("use_sim_time", "false", "use /clock (true/false)"),
    ("rgb_topic", "rgb/image_rect_color", "input colour image"),
    ("rgb_info_topic", "rgb/camera_info", "input colour CameraInfo"),
    ("depth_topic", "depth/image_rect", "input depth image, registered to the colour camera"),
    ("output_prefix", "depth_registered", "prefix of the image_rect, camera_info and points "
     "outputs"),
)


def node_config(values: dict) -> dict:
    """launch_ros `Node` keyword arguments for resolved launch-argument values (pure)."""
    overrides = {"use_sim_time": values["use_sim_time"].strip().lower() in ("true", "1", "yes")}
    if values["scale"].strip():
        overrides["scale"] = int(values["scale"])
    if values["checkpoint"].strip():
        overrides["checkpoint"] = values["checkpoint"].strip()
    prefix = values["output_prefix"].rstrip("/")
    remappings = [
        ("rgb/image_rect_color", values["rgb_topic"]),
        ("rgb/camera_info", values["rgb_info_topic"]),
        ("depth/image_rect", values["depth_topic"]),
        ("depth_registered/image_rect", f"{prefix}/image_rect"),
        ("depth_registered/camera_info", f"{prefix}/camera_info"),
        ("depth_registered/points", f"{prefix}/points"),
    ]
    return {
        "package": PACKAGE,
        "executable": "naima_node",
        "name": values["node_name"],
        "namespace": values["namespace"],
        "parameters": [values["params_file"], overrides],
        "remappings": [(src, dst) for src, dst in remappings if src != dst],
        "output": "screen",
        "emulate_tty": True,
    }


def launch_setup(context):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    return [Node(**node_config(values))]


def generate_launch_description():
    defaults = {"params_file": default_params_file()}
    arguments = [DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                       description=description)
                 for name, default, description in ARGUMENTS]
    return LaunchDescription(arguments + [OpaqueFunction(function=launch_setup)])
