"""An rclpy node in the test process, on the private ROS domain of the node processes under test."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from kinesis.launch import private_ros_environment

TIMEOUT_S = 60.0
"""How long a test waits for a node, message or process before failing. Waits end as soon as their condition
holds, so a generous bound costs nothing; under `make test` the other pytest-xdist worker loads the machine and
a node's start can take several seconds."""


@contextmanager
def private_domain(domains: range) -> Iterator[int]:
    """A random private localhost ROS domain of ``domains`` in os.environ (for the children this process
    starts), restored at exit; yields its id."""
    domain_id, env = private_ros_environment(domains)
    with pytest.MonkeyPatch.context() as mp:
        for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
            mp.setenv(key, env[key])
        yield domain_id


class RosTestClient:
    """Spins its own context; every wait fails early, with the log, when a watched process has exited.

    ``processes`` maps a name to (process, log path); it may be filled after construction.
    """

    def __init__(self, name: str, domain_id: int, processes: dict[str, tuple[subprocess.Popen, Path]], timeout: float) -> None:
        self.processes, self.timeout = processes, timeout
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, done, what: str, timeout: float | None = None) -> None:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not done():
            for name, (process, log) in self.processes.items():
                assert process.poll() is None, f"{name} exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
            self.executor.spin_once(timeout_sec=0.01)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() >= end, "time to pass")

    def call(self, srv_type, name: str, request, resend_after: float | None = None):
        """Calls service ``name``; ``resend_after`` (idempotent requests only): send the request again after
        that many seconds without a response (a request sent right after discovery, before the server's
        response writer has matched this client, can be lost under load)."""
        client = self.node.create_client(srv_type, name)
        try:
            self.spin_until(client.service_is_ready, f"service {name}")
            future = client.call_async(request)
            deadline = time.monotonic() + self.timeout
            while resend_after is not None and time.monotonic() < deadline:
                try:
                    self.spin_until(future.done, f"response of {name}", timeout=resend_after)
                    break
                except AssertionError:
                    future = client.call_async(request)
            self.spin_until(future.done, f"response of {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        if self.context.ok():
            rclpy.shutdown(context=self.context)


def mcap_channels(reader) -> tuple[dict[str, int], dict[str, tuple[str, str, str]]]:
    """(message count, (schema name, schema encoding, message encoding)) per topic of an MCAP reader."""
    summary = reader.get_summary()
    counts = {summary.channels[c].topic: n for c, n in summary.statistics.channel_message_counts.items()}
    schemas = {c.topic: (summary.schemas[c.schema_id].name, summary.schemas[c.schema_id].encoding,
                         c.message_encoding) for c in summary.channels.values()}
    return counts, schemas
