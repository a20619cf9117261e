"""Under pytest-xdist (`make test`: a worker per core, ``--dist loadgroup``) the tests marked ``ros`` (they start
ROS 2 processes) run on one worker, one at a time as in a serial run, while the other tests share the other
workers. A plugin of its own so that tests/test_ros_group.py can check it in a bare pytest run."""

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("ros") is not None:
            item.add_marker(pytest.mark.xdist_group("ros"))
