"""colcon (ament_python) build of kinesis_policy_node for a full ROS 2 install.

In this repository the package is installed with the rest by the top-level pyproject.toml and
started by `kinesis launch` as `python -m kinesis_policy_node.<exec>`; this file only serves
`colcon build`, which installs the same modules as `ros2 run kinesis_policy_node <exec>` scripts.
kinesis_tasks (the ROS-free core) must be importable in that environment.
"""

from setuptools import setup

PACKAGE = "kinesis_policy_node"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="KINESIS-ROS maintainers",
    description="KINESIS policy node and text-to-motion node",
    license="MIT",
    entry_points={"console_scripts": [
        "policy_node = kinesis_policy_node.policy_node:main",
        "text_to_motion_node = kinesis_policy_node.text_to_motion_node:main",
    ]},
)
