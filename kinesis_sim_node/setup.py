"""colcon (ament_python) build of kinesis_sim_node for a full ROS 2 install.

In this repository the package is installed with the rest by the top-level pyproject.toml and
started by `kinesis launch` as `python -m kinesis_sim_node.<exec>`; this file only serves
`colcon build`, which installs the same modules as `ros2 run kinesis_sim_node <exec>` scripts.
kinesis_tasks (the ROS-free core) must be importable in that environment.
"""

from setuptools import setup

PACKAGE = "kinesis_sim_node"

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
    description="KINESIS simulation node and visualization",
    license="MIT",
    entry_points={"console_scripts": [
        "sim_node = kinesis_sim_node.sim_node:main",
        "viz_node = kinesis_sim_node.viz_node:main",
        "component_container = kinesis_sim_node.component_container:main",
    ]},
)
