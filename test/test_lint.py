"""Linters as tests (ros2/examples style): ruff (pyflakes + pycodestyle) and package.xml."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_pyflakes_and_pycodestyle():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff (requirements-dev.txt) is not installed")
    res = subprocess.run([ruff, "check", "--no-cache", "--select", "E,F,W", "--line-length", "120",
                          "naima_ros", "test", "bench", "launch", "setup.py"], cwd=REPO, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "naima_ros"
    assert root.find("export/build_type").text == "ament_python"
    for dep in ("rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs"):
        assert dep in [e.text for e in root.findall("exec_depend")], dep
    assert (REPO / "resource" / "naima_ros").is_file()
