"""Smoke tests of the `kinesis` command line: each entry point runs end to end."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import CONFORMANCE


def kinesis(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kinesis.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_help_lists_subcommands():
    out = kinesis("--help").stdout
    for command in ("demo", "motions", "checkpoint", "bench"):
        assert command in out


def test_demo_prints_table_without_video():
    result = kinesis("demo", "--sim-only", "--seconds", "0.4", "--no-video")
    assert result.returncode == 0, result.stderr
    assert "80 muscles" in result.stdout and "root height" in result.stdout


def test_checkpoint_info_names_kind_and_sizes():
    result = kinesis("checkpoint", "info", str(CONFORMANCE / "policy_lattice.pt"))
    assert result.returncode == 0, result.stderr
    assert "lattice" in result.stdout and "309" in result.stdout and "80" in result.stdout


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    result = kinesis("checkpoint", "info", str(tmp_path / "nope.pth"))
    assert result.returncode == 2 and "checkpoint not found" in result.stderr


def test_bench_writes_results_with_ratio(tmp_path):
    out = tmp_path / "results.json"
    result = kinesis("bench", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    legs = results["imitation_env"]["legs"]
    assert legs["target_length"]["loop_baseline_control_steps_per_s"] > 0
    assert legs["control_mapping"]["speedup"] > 0
    assert results["versions"]["mujoco"] == "3.3.7"
