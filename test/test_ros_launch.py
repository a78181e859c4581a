"""launch/naima.launch.py and config/naima.yaml, tested without the launch system (not installable
here): statically with ast, by running the file's logic against recording stand-ins for the
launch API, and end to end by running the `naima_node` console script with exactly the
parameters and remaps the launch file produces, over real DDS.
"""
import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"

import ast  # noqa: E402
import importlib.util  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from glob import glob  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import rclpy  # noqa: E402
import yaml  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from naima_ros.contract import OUTPUT_NAMESPACE, PARAMETERS, TOPICS, parameter  # noqa: E402
from naima_ros.params_file import node_parameters  # noqa: E402
from ros_waits import wait_for  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "naima.launch.py"


def package_prefix() -> Path | None:
    """The install prefix of naima_ros in the ament index (colcon), or None (source tree / venv)."""
    try:
        from ament_index_python.packages import get_package_prefix
        return Path(get_package_prefix("naima_ros"))
    except (ImportError, LookupError, ValueError, OSError):
        return None


# Where the launch file finds its data: the installed share directory under colcon, else the source tree.
SHARE = package_prefix() / "share" / "naima_ros" if package_prefix() else REPO
CONFIG = SHARE / "config" / "naima.yaml"
TIMEOUT = 90.0


# ---------------------------------------------------------------------- static
def test_launch_file_structure_ast():
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported = {(node.module, alias.name) for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert {("launch", "LaunchDescription"), ("launch.actions", "DeclareLaunchArgument"),
            ("launch_ros.actions", "Node"), ("launch_ros.actions", "LifecycleNode"),
            ("launch.substitutions", "LaunchConfiguration"),
            ("launch.actions", "OpaqueFunction")} <= imported
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    calls = {n.func.id: n for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {kw.arg for kw in calls["DeclareLaunchArgument"].keywords} == {"default_value",
                                                                         "description"}
    # the Node kwargs are built by node_config(); its returned dict literal names them
    config_fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                     and n.name == "node_config")
    returned = next(n.value for n in ast.walk(config_fn) if isinstance(n, ast.Return))
    keys = {k.value for k in returned.keys}
    assert {"package", "executable", "name", "namespace", "parameters", "remappings", "arguments",
            "respawn", "respawn_delay"} <= keys  # launch_ros Node / ExecuteProcess arguments


def test_setup_installs_launch_and_config():
    setup = (REPO / "setup.py").read_text()
    assert '"launch/*.launch.py"' in setup and '"config/*.yaml"' in setup
    assert '"config/*.xml"' in setup  # the Fast DDS profile the launch file points the node at
    assert "config/fastdds_large_data.xml" in glob("config/*.xml", root_dir=REPO)
    assert "launch/naima.launch.py" in glob("launch/*.launch.py", root_dir=REPO)
    assert "config/naima.yaml" in glob("config/*.yaml", root_dir=REPO)


def test_config_yaml_declares_every_parameter_with_its_type():
    doc = yaml.safe_load(CONFIG.read_text())
    params = node_parameters(CONFIG, "naima")
    assert doc["/**"]["ros__parameters"]["diagnostic_updater"]["period"] == 1.0  # nested, as ROS
    declared = {p.name: p for p in PARAMETERS}
    assert set(params) == set(declared)
    for name, value in params.items():
        assert type(value) is type(declared[name].default), name  # ROS types are strict
        p = declared[name]
        if p.int_range:
            assert p.int_range[0] <= value <= p.int_range[1], name
        if p.float_range:
            assert p.float_range[0] <= value <= p.float_range[1], name
    assert params["checkpoint"] == "shipped"
    # QoS is the standard qos_overrides.<topic>.<entity>.* (declared by the node, per topic)
    assert not {"input_reliability", "input_depth", "output_reliability", "output_depth"} & \
        set(params)


# ---------------------------------------------------------------------- launch logic
class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _stub_launch_modules(monkeypatch):
    """Recording stand-ins with the launch API names the file uses."""
    classes = {}
    for module, names in {"launch": ["LaunchDescription"],
                          "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction"],
                          "launch.substitutions": ["LaunchConfiguration"],
                          "launch_ros": [], "launch_ros.actions": ["Node", "LifecycleNode"]}.items():
        mod = types.ModuleType(module)
        for name in names:
            classes[name] = type(name, (_Recorder,), {})
            setattr(mod, name, classes[name])
        monkeypatch.setitem(sys.modules, module, mod)

    class LaunchConfiguration(_Recorder):
        def perform(self, context):
            return context[self.args[0]]

    sys.modules["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    return classes


def load_launch_module(monkeypatch):
    classes = _stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location("naima_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, classes


def launch_values(module, **overrides):
    """Launch-argument values as the launch system would resolve them."""
    description = module.generate_launch_description()
    declared = [e for e in description.args[0] if type(e).__name__ == "DeclareLaunchArgument"]
    values = {d.args[0]: d.kwargs["default_value"] for d in declared}
    values.update(overrides)
    return description, values


def test_launch_arguments_and_node(monkeypatch):
    module, classes = load_launch_module(monkeypatch)
    description, values = launch_values(module)
    assert {"params_file", "namespace", "scale", "checkpoint", "use_sim_time", "rgb_topic",
            "rgb_info_topic", "depth_topic", "depth_info_topic", "output_prefix", "node_type",
            "log_level", "respawn", "respawn_delay"} <= set(values)
    assert Path(values["params_file"]).resolve() == CONFIG.resolve()  # installed share, else source tree
    assert values["scale"] == "" and values["checkpoint"] == ""
    opaque = [e for e in description.args[0] if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1
    (node,) = opaque[0].kwargs["function"](values)
    assert type(node).__name__ == "Node"
    kw = node.kwargs
    assert (kw["package"], kw["executable"], kw["name"]) == ("naima_ros", "naima_node", "naima")
    assert kw["parameters"] == [values["params_file"], {"use_sim_time": False}]
    assert kw["remappings"] == []  # defaults are the node's own names
    assert kw["arguments"] == ["--ros-args", "--log-level", "info"]
    assert (kw["respawn"], kw["respawn_delay"]) == (False, 2.0)
    # the shipped large-data profile (source tree here), unless the user exported one
    assert values["fastdds_profile"] == ""
    shipped = SHARE / "config" / "fastdds_large_data.xml"
    if os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        assert kw["additional_env"] == {}
    else:
        assert kw["additional_env"] == {"FASTDDS_DEFAULT_PROFILES_FILE": str(shipped)}


def test_node_environment_for_the_fastdds_profile(monkeypatch):
    module, _ = load_launch_module(monkeypatch)
    env, key = module.node_environment, "FASTDDS_DEFAULT_PROFILES_FILE"
    shipped = "/opt/ros/share/naima_ros/config/fastdds_large_data.xml"
    assert env("", {}, shipped) == {key: shipped}
    assert env("", {key: "/home/me/mine.xml"}, shipped) == {}  # the user's own stays in force
    assert env("", {key: ""}, shipped) == {key: shipped}  # exported but empty: not a profile
    assert env("", {}, None) == {}  # not installed: nothing to point at
    assert env(" /x/p.xml ", {key: "/home/me/mine.xml"}, shipped) == {key: "/x/p.xml"}
    assert env("none", {}, shipped) == {} and env("NONE", {}, shipped) == {}
    monkeypatch.delenv(key, raising=False)
    _, values = launch_values(module)
    assert module.node_config(values, {}, shipped)["additional_env"] == {key: shipped}
    assert Path(module.shipped_profile()).resolve() == (SHARE / "config" / "fastdds_large_data.xml").resolve()


def test_launch_arguments_follow_the_contract(monkeypatch):
    """Each remap argument defaults to its contract topic and every output follows output_prefix;
    the scale and checkpoint arguments describe the parameters as the node does."""
    module, _ = load_launch_module(monkeypatch)
    description, values = launch_values(module)
    declared = {d.args[0]: d.kwargs for d in description.args[0]
                if type(d).__name__ == "DeclareLaunchArgument"}
    remapped = {t.launch_argument: t for t in TOPICS.values()}
    assert {"rgb_topic", "rgb_info_topic", "depth_topic", "depth_info_topic",
            "output_image_topic", "output_image_16uc1_topic", "diagnostics_topic"} <= set(remapped)
    for name, topic in remapped.items():
        # an output under depth_registered/ follows output_prefix unless its argument is set
        prefixed = topic.name.startswith(OUTPUT_NAMESPACE + "/")
        assert values[name] == ("" if prefixed else topic.name), name
        assert topic.description in declared[name]["description"]
    for name in ("scale", "checkpoint"):
        assert parameter(name).description in declared[name]["description"]
    moved = dict(module.node_config(dict(values, output_prefix="sr"))["remappings"])
    outputs = {t.name for t in TOPICS.values() if t.direction == "out" and not t.name.startswith("/")}
    assert set(moved) == outputs and all(v.startswith("sr/") for v in moved.values())
    one = dict(module.node_config(dict(values, output_prefix="sr",
                                       output_points_topic="/cloud"))["remappings"])
    assert one["depth_registered/points"] == "/cloud" and one["depth_registered/image_rect"] == \
        "sr/image_rect"


def test_launch_overrides_and_remaps(monkeypatch):
    module, _ = load_launch_module(monkeypatch)
    _, values = launch_values(module, scale="4", checkpoint="/m/x4.safetensors",
                              use_sim_time="true", namespace="robot",
                              rgb_topic="/cam/color/image_raw", depth_topic="/tof/depth",
                              depth_info_topic="/tof/camera_info", output_prefix="sr",
                              diagnostics_topic="/robot/diagnostics", log_level="DEBUG",
                              respawn="true", respawn_delay="5")
    kw = module.node_config(values)
    assert kw["namespace"] == "robot"
    assert kw["parameters"][1] == {"use_sim_time": True, "scale": 4,
                                   "checkpoint": "/m/x4.safetensors"}
    assert dict(kw["remappings"]) == {
        "rgb/image_rect_color": "/cam/color/image_raw", "depth/image_rect": "/tof/depth",
        "depth/camera_info": "/tof/camera_info", "/diagnostics": "/robot/diagnostics",
        "depth_registered/image_rect": "sr/image_rect",
        "depth_registered/image_rect_32fc1": "sr/image_rect_32fc1",
        "depth_registered/image_rect_16uc1": "sr/image_rect_16uc1",
        "depth_registered/camera_info": "sr/camera_info",
        "depth_registered/confidence": "sr/confidence",
        "depth_registered/points": "sr/points"}
    assert kw["arguments"] == ["--ros-args", "--log-level", "debug"]
    assert (kw["respawn"], kw["respawn_delay"]) == (True, 5.0)


def test_node_type_picks_the_executable_and_the_launch_action(monkeypatch):
    """node_type:=lifecycle runs naima_lifecycle_node as a launch_ros LifecycleNode (so launch's
    lifecycle events reach it); a typo is one clear error."""
    module, classes = load_launch_module(monkeypatch)
    description, values = launch_values(module, node_type="lifecycle")
    opaque = next(e for e in description.args[0] if type(e).__name__ == "OpaqueFunction")
    (node,) = opaque.kwargs["function"](values)
    assert type(node) is classes["LifecycleNode"]
    assert node.kwargs["executable"] == "naima_lifecycle_node"
    assert node.kwargs["namespace"] == "" and node.kwargs["name"] == "naima"
    (node,) = opaque.kwargs["function"](dict(values, node_type="plain"))
    assert type(node) is classes["Node"] and node.kwargs["executable"] == "naima_node"
    for bad, message in (({"node_type": "component"}, "node_type must be one of plain, lifecycle"),
                         ({"log_level": "verbose"}, "log_level must be one of debug, info")):
        with pytest.raises(ValueError, match=message):
            module.node_config(dict(values, **bad))


# ---------------------------------------------------------------------- the node as launched
def ros_args(kw: dict) -> list[str]:
    """What launch_ros passes to the executable for these Node kwargs (`arguments` first, then its
    own --ros-args section)."""
    args = list(kw.get("arguments", [])) + ["--ros-args", "-r", f"__node:={kw['name']}"]
    if kw["namespace"]:
        args += ["-r", f"__ns:={kw['namespace']}"]
    params_file, overrides = kw["parameters"]
    args += ["--params-file", params_file]
    for key, value in overrides.items():
        args += ["-p", f"{key}:={yaml.safe_dump(value).splitlines()[0]}"]
    for src, dst in kw["remappings"]:
        args += ["-r", f"{src}:={dst}"]
    return args


def node_executable(name: str = "naima_node") -> str:
    """A console script as `ros2 run` finds it (lib/naima_ros under colcon), else the venv's."""
    places = ([package_prefix() / "lib" / "naima_ros"] if package_prefix() else []) + [Path(sys.executable).parent]
    for place in places:
        if (place / name).is_file():
            return str(place / name)
    raise AssertionError(f"console script {name} not installed in any of {places}")


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


def run_launched(context, kw: dict, extra: list[str], before_serving=None) -> str:
    """Run the executable with what the launch file gives it (+ `extra` ROS args), feed it pairs
    from this process (RGB /cam/color + /cam/info, ToF /tof/depth + /tof/camera_info, as remapped
    by the launch arguments) until its outputs arrive on /sr/*, stop it with SIGINT; returns its
    output. `before_serving(node)` runs once the process is up (a lifecycle node's transitions)."""
    cmd = [node_executable(kw["executable"])] + ros_args(kw) + extra
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, **kw["additional_env"]))
    node = rclpy.create_node("launch_harness", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {topic: node.create_publisher(msg_type, topic, qos) for topic, msg_type in (
            ("/cam/color", Image), ("/tof/depth", Image), ("/cam/info", CameraInfo),
            ("/tof/camera_info", CameraInfo))}
        got = {}
        for topic, msg_type in (("/sr/image_rect", Image), ("/sr/camera_info", CameraInfo),
                                ("/sr/points", PointCloud2)):
            node.create_subscription(msg_type, topic,
                                     lambda m, t=topic: got.setdefault(t, m), qos)
        if before_serving:
            before_serving(node, proc)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not all(
                pubs[t].get_subscription_count() for t in ("/cam/color", "/tof/depth",
                                                           "/cam/info", "/tof/camera_info")):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        # inputs are best-effort (config/naima.yaml): resend until the outputs arrive
        stamp = 100
        k = [40.0, 0, 31.5, 0, 40, 23.5, 0, 0, 1]
        k_lr = [5.0, 0, 3.5, 0, 5.0, 2.5, 0, 0, 1]  # the same camera at 8 x 6: the ToF registers 1:1
        while time.monotonic() < deadline and len(got) < 3:
            assert proc.poll() is None, proc.stdout.read()
            for topic, (w, h, kk) in (("/cam/info", (64, 48, k)), ("/tof/camera_info", (8, 6, k_lr))):
                pubs[topic].publish(CameraInfo(width=w, height=h, k=kk, p=kk[:3] + [0.0] + kk[3:6] + [0.0]
                                               + kk[6:] + [0.0]))
            rgb = Image(height=48, width=64, encoding="bgr8", step=192,
                        data=np.full(48 * 64 * 3, 90, np.uint8).tobytes())
            depth = Image(height=6, width=8, encoding="16UC1", step=16,
                          data=np.full(48, 1500, "<u2").tobytes())
            for msg in (rgb, depth):
                msg.header.stamp.sec = stamp
                msg.header.frame_id = "cam"
            pubs["/cam/color"].publish(rgb)
            pubs["/tof/depth"].publish(depth)
            stamp += 1
            time.sleep(0.3)
        assert len(got) == 3, f"outputs seen: {sorted(got)}"
        image = got["/sr/image_rect"]
        assert (image.encoding, image.width, image.height) == ("32FC1", 64, 48)
        assert got["/sr/points"].point_step == 32
    finally:
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert proc.returncode == 0, output
    return output


LAUNCHED = dict(namespace="/launched", rgb_topic="/cam/color", depth_topic="/tof/depth",
                rgb_info_topic="/cam/info", depth_info_topic="/tof/camera_info", output_prefix="/sr")


def test_naima_node_console_script_serves_as_launched(monkeypatch, context, tiny_checkpoint):
    """The plain node with the network, every input remapped by the launch arguments (the depth
    CameraInfo too: it registers the ToF), the outputs under output_prefix, log_level debug."""
    module, _ = load_launch_module(monkeypatch)
    _, values = launch_values(module, checkpoint=str(tiny_checkpoint(scale=8)), log_level="debug",
                              **LAUNCHED)
    kw = module.node_config(values, os.environ, module.shipped_profile())
    output = run_launched(context, kw, ["-p", "warmup_width:=64", "-p", "warmup_height:=48",
                                        "-p", "device:=cpu", "-p", "register_depth:=true"])
    assert "ready: model" in output
    assert "in: /cam/color, /tof/depth, /cam/info" in output
    assert "[DEBUG]" in output  # log_level reached the node


def test_lifecycle_node_type_runs_the_managed_node_as_launched(monkeypatch, context):
    """node_type:=lifecycle starts naima_lifecycle_node unconfigured; configure and activate over
    its lifecycle services (as launch's LifecycleNode or a lifecycle manager would) and it serves
    on the launch file's remaps; log_level warn keeps its info lines quiet."""
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    module, _ = load_launch_module(monkeypatch)
    _, values = launch_values(module, node_type="lifecycle", log_level="warn", **LAUNCHED)
    kw = module.node_config(values, os.environ, module.shipped_profile())
    assert kw["executable"] == "naima_lifecycle_node"

    def configure_and_activate(node, proc):
        get = node.create_client(GetState, "/launched/naima/get_state")
        change = node.create_client(ChangeState, "/launched/naima/change_state")
        wait_for(lambda: get.service_is_ready() and change.service_is_ready() or
                 proc.poll() is not None, "the lifecycle services", TIMEOUT)
        assert proc.poll() is None, proc.stdout.read()

        def call(client, request):
            future = client.call_async(request)
            wait_for(future.done, "a lifecycle service answer", TIMEOUT)
            return future.result()

        assert call(get, GetState.Request()).current_state.id == State.PRIMARY_STATE_UNCONFIGURED
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert call(change, ChangeState.Request(transition=Transition(id=transition))).success

    output = run_launched(context, kw, ["-p", "method:=bicubic", "-p", "warmup_iterations:=0",
                                        "-p", "register_depth:=true"], configure_and_activate)
    assert "ready:" not in output  # an info line: below log_level warn


def test_naima_node_exits_clearly_on_missing_checkpoint():
    proc = subprocess.run(
        [node_executable(), "--ros-args", "--params-file", str(CONFIG),
         "-p", "checkpoint:=/nonexistent/naima_x{scale}.safetensors", "-r", "__ns:=/missing"],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1
    assert "/nonexistent/naima_x8.safetensors" in proc.stderr + proc.stdout
    assert "not found" in proc.stderr + proc.stdout
