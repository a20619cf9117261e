"""Smoke tests of the `kinesis` command line: each entry point runs end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONFORMANCE
from kinesis.launch import private_ros_environment


def kinesis(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kinesis.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=env)


def test_help_lists_subcommands():
    out = kinesis("--help").stdout
    for command in ("demo", "motions", "checkpoint", "bench"):
        assert command in out


def test_demo_prints_table_without_video():
    result = kinesis("demo", "--sim-only", "--seconds", "0.4", "--no-video")
    assert result.returncode == 0, result.stderr
    assert "80 muscles" in result.stdout and "root height" in result.stdout


@pytest.mark.ros
def test_demo_prints_one_row_per_motion_and_writes_mcap_and_video(tmp_path, small_checkpoint):
    import imageio.v2 as imageio

    from kinesis_tasks.motions import load_library

    _, env = private_ros_environment(range(200, 232))
    result = kinesis("demo", "--duration", "3", "--checkpoint", small_checkpoint, "--out", str(tmp_path),
                     "--video-seconds", "2", env=dict(env, MUJOCO_GL="osmesa"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    # The table: one row per motion, in playlist order (the small policy falls: a motion lasts a fraction of a second,
    # so several run in 3 s, and the playlist may wrap around), and the summary of the motions run to their end.
    names = list(load_library("default"))
    rows = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("│") and line.split()[1] in names]
    assert len(rows) >= 2 and rows == names[:len(rows)], result.stdout
    assert "overall: success 0/" in result.stdout and "MPJPE" in result.stdout, result.stdout
    assert "rejected muscle command" not in out and "starts where the body is" not in out
    assert (tmp_path / "locomotion.mcap").stat().st_size > 0
    video = tmp_path / "locomotion.mp4"
    assert f"video: {video.resolve()}" in result.stdout.replace("\n", ""), result.stdout
    frames = imageio.mimread(video)
    # 2 s at 15 fps: 30 frames, fewer where the viz node missed states (16 once, with the other test worker busy)
    assert 10 <= len(frames) <= 30 and frames[0].shape == (360, 480, 3)


def test_checkpoint_info_names_kind_and_sizes():
    result = kinesis("checkpoint", "info", str(CONFORMANCE / "policy_lattice.pt"))
    assert result.returncode == 0, result.stderr
    assert "lattice" in result.stdout and "309" in result.stdout and "80" in result.stdout


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    result = kinesis("checkpoint", "info", str(tmp_path / "nope.pth"))
    assert result.returncode == 2 and "checkpoint not found" in result.stderr


def test_checkpoint_widen_writes_a_wider_checkpoint_and_refuses_a_narrower_one(tmp_path, capsys):
    from kinesis.cli import main

    source = str(CONFORMANCE / "policy_lattice.pt")
    assert main(["checkpoint", "widen", source, str(tmp_path / "w.pth"), "--units", "96,80"]) == 0
    assert main(["checkpoint", "info", str(tmp_path / "w.pth")]) == 0
    assert "policy MLP:  96-80" in capsys.readouterr().out
    assert main(["checkpoint", "widen", source, str(tmp_path / "n.pth"), "--units", "32,48"]) == 2
    assert "hidden widths [64, 48]" in capsys.readouterr().err and not (tmp_path / "n.pth").exists()


def test_bench_writes_results_with_ratio(tmp_path):
    """Two of the five sections (the ros and training ones take a minute between them; `make bench` runs all)."""
    out = tmp_path / "results.json"
    result = kinesis("bench", "--quick", "--only", "imitation_env,policy_latency_ms", "--out", str(out))
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    legs = results["imitation_env"]["legs"]
    assert legs["target_length"]["loop_baseline_control_steps_per_s"] > 0
    assert legs["control_mapping"]["speedup"] > 0
    lattice = results["policy_latency_ms"]["networks"]["lattice_paper"]
    assert lattice["speedup"] == pytest.approx(lattice["reference_ms"] / lattice["fast_ms"])
    assert results["versions"]["mujoco"] == "3.3.7"
