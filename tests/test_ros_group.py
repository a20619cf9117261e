"""The ROS 2 tests keep to one xdist worker: pytest-xdist 3.8 groups by renaming ``item._nodeid``, which pytest 9
ignores (the group then ran on both workers at once and ROS tests timed out); requirements.txt pins pytest 8."""

import os
import re
from pathlib import Path

pytest_plugins = ["pytester"]

TESTS = """
import pytest

@pytest.mark.ros
@pytest.mark.parametrize("i", range(6))
def test_ros(i):
    pass

@pytest.mark.parametrize("i", range(6))
def test_other(i):
    pass
"""


def test_ros_tests_run_on_one_worker(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(test_grouping=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    ros: starts ROS 2 processes\n")
    result = pytester.runpytest_subprocess("-p", "ros_group", "-n", "2", "--dist", "loadgroup", "-v",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)
    workers = {match.group(1) for match in re.finditer(r"\[(gw\d)\].*PASSED.*test_ros\[", result.stdout.str())}
    assert len(workers) == 1, result.stdout.str()
