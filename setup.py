"""ament_python package naima_ros: installable with colcon on a robot and with pip in a venv."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "naima_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench"]),
    package_data={PACKAGE: ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/train", glob("config/train/*.yaml")),
        (f"share/{PACKAGE}/checkpoints", glob("checkpoints/*.safetensors")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    description="NAIMA RGB-guided depth super-resolution: ROS 2 node, training and evaluation",
    license="Apache-2.0",
    # colcon test runs pytest only when it finds pytest among the test dependencies: setuptools >= 72 dropped
    # `tests_require`, colcon-core reads the `test` extra.
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "naima_node = naima_ros.ros.node:main",
            "naima_lifecycle_node = naima_ros.ros.node:lifecycle_main",
            "naima-info = naima_ros.info:main",
            "naima-convert = naima_ros.convert_cli:main",
            "naima-train = naima_ros.train:main",
            "naima-eval = naima_ros.eval.run:main",
            "naima-bag = naima_ros.bags.cli:main",
        ],
    },
)
