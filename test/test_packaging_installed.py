"""The installed package as ROS tools see it: ament index, share/naima_ros, lib/naima_ros executables.

Runs where the package is installed in an ament prefix (`colcon test` after `colcon build`, `make test-colcon`;
or a sourced apt/colcon install); elsewhere (the pip venv) it skips. Everything is found through the ament
index, never the source tree.
"""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prefix() -> Path:
    packages = pytest.importorskip("ament_index_python.packages", reason="ament_index_python")
    try:
        return Path(packages.get_package_prefix("naima_ros"))
    except (LookupError, OSError, ValueError) as err:  # PackageNotFoundError is a KeyError
        pytest.skip(f"naima_ros is not in an ament prefix here (run by `make test-colcon`): {err!r}")


def test_share_directory_is_the_install_space_with_the_data(prefix):
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("naima_ros"))
    assert share == prefix / "share" / "naima_ros"
    assert REPO not in share.resolve().parents, f"{share} is inside the source tree"
    for relative in ("package.xml", "launch/naima.launch.py", "config/naima.yaml"):
        assert (share / relative).is_file(), relative
    assert sorted(p.name for p in (share / "checkpoints").glob("*.safetensors")) == \
        sorted(p.name for p in (REPO / "checkpoints").glob("*.safetensors"))


def test_checkpoint_lookup_finds_the_installed_checkpoint(prefix, tmp_path, monkeypatch):
    from naima_ros.resources import SHIPPED_CHECKPOINTS, resolve_checkpoint, share_dirs

    monkeypatch.chdir(tmp_path)  # not the source tree: the relative name must come from share/naima_ros
    share = prefix / "share" / "naima_ros"
    assert share_dirs()[0] == share
    path = resolve_checkpoint("checkpoints/naima_light_x{scale}_demo.safetensors", 8)
    assert path == share / "checkpoints" / "naima_light_x8_demo.safetensors"
    assert resolve_checkpoint("shipped", 8) == share / SHIPPED_CHECKPOINTS[8]
    assert SHIPPED_CHECKPOINTS[8].startswith("checkpoints/")


@pytest.mark.parametrize("executable", ["naima-eval", "naima-bag", "naima_node"])
def test_ros2_run_executables_are_in_lib_package(prefix, executable):
    """`ros2 run naima_ros <executable>` runs <prefix>/lib/naima_ros/<executable>."""
    path = prefix / "lib" / "naima_ros" / executable
    assert path.is_file() and os.access(path, os.X_OK), path
    if executable != "naima_node":  # the node would start serving; the CLIs answer --help and exit
        result = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "usage:" in result.stdout
