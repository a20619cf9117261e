"""`kinesis view`: the session logic (keys, episodes, ghosts) and the passive viewer under Xvfb with a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mujoco
import numpy as np
import pytest

from kinesis_tasks.evaluation import ZeroPolicy, evaluation_config
from kinesis_tasks.imitation import ImitationConfig
from kinesis_tasks.motions import load_library
from kinesis_tasks.view_session import KEYS, ViewSession, add_spheres

REPO = Path(__file__).resolve().parent.parent
RIGHT, LEFT, BACKSPACE, SPACE = 262, 263, 259, 32


def kinesis(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kinesis.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def motions():
    return load_library("default", split="test")


@pytest.fixture(scope="module")
def session(motions) -> ViewSession:
    return ViewSession.for_motions(evaluation_config(embodiment="legs"), motions, ZeroPolicy())


def test_keys_switch_reset_and_pause(session, motions):
    names = list(session.items)
    assert names == list(motions) and session.index == 0
    assert session.handle_key(RIGHT) == "next" and session.index == 1
    assert session.handle_key(ord("N")) == "next" and session.index == 2
    assert session.handle_key(LEFT) == "previous" and session.index == 1
    session.select(-2)
    assert session.index == len(names) - 1  # wraps around
    assert session.handle_key(ord("P")) == "previous" and session.index == len(names) - 2
    session.step()
    session.step()
    assert session.info["step"] == 2
    assert session.handle_key(BACKSPACE) == "reset" and session.info["step"] == 0 and session.info["frame"] == 0.0
    assert session.handle_key(SPACE) == "pause" and session.paused
    assert session.step() is False and session.info["step"] == 0
    session.handle_key(SPACE)
    assert session.step() is True and session.info["step"] == 1
    assert session.handle_key(ord("Z")) is None
    assert set(KEYS.values()) == {"next", "previous", "reset", "pause"}


def test_episode_end_starts_the_next_motion(motions):
    config = evaluation_config(embodiment="legs")
    session = ViewSession.for_motions(config, motions, ZeroPolicy(), motion=list(motions)[1])
    assert session.index == 1
    for _ in range(400):  # the zero action falls: the episode terminates well before this
        session.step()
        if session.episodes:
            break
    assert session.episodes == 1 and session.index == 2 and session.info["step"] == 0


def test_unknown_motion_is_a_clear_error(motions):
    with pytest.raises(ValueError, match="--motion nope: not in the motion set"):
        ViewSession.for_motions(evaluation_config(embodiment="legs"), motions, ZeroPolicy(), motion="nope")


def test_ghosts_follow_the_reference_and_draw_as_spheres(session):
    session.reset()
    first = session.ghosts().reference
    assert first.shape == (7, 3) and np.all(np.isfinite(first))
    for _ in range(10):
        session.step()
    later = session.ghosts().reference
    assert not np.allclose(first, later)  # the reference moves with the motion's frame
    scene = mujoco.MjvScene(session.model, maxgeom=20)
    scene.ngeom = 0
    session.ghosts().draw(scene)
    assert scene.ngeom == 7
    assert scene.geoms[0].type == mujoco.mjtGeom.mjGEOM_SPHERE
    np.testing.assert_allclose(scene.geoms[0].pos, later[0])
    assert add_spheres(scene, np.zeros((30, 3)), 0.05, (1, 0, 0, 1)) == 13  # stops when the scene is full


def test_task_session_draws_reference_and_goal():
    config = ImitationConfig.default(embodiment="legs")
    session = ViewSession.for_task("reach", config, ZeroPolicy(), goals=3, seed=1)
    ghosts = session.ghosts()
    assert ghosts.reference.shape == (7, 3) and ghosts.goal.shape == (1, 3)
    np.testing.assert_allclose(ghosts.goal[0, :2], np.asarray(session.items[0])[:2])
    session.handle_key(RIGHT)
    np.testing.assert_allclose(session.ghosts().goal[0, :2], np.asarray(session.items[1])[:2])
    assert "goal 2/3" in session.status()


def test_no_display_exits_2_with_a_clear_message():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = kinesis("view", "--steps", "3", env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "no display" in result.stderr and "xvfb-run" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_display_exits_2():
    result = kinesis("view", "--steps", "3", env={**os.environ, "DISPLAY": ":4242"}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "cannot open an OpenGL window on the display ':4242'" in result.stderr and "Traceback" not in result.stderr


def test_bad_arguments_are_clear_errors():
    result = kinesis("view", "--size", "12", timeout=120)
    assert result.returncode == 2 and "--size 12: expected WIDTHxHEIGHT" in result.stderr
    result = kinesis("view", "--screenshot", "out.jpg", timeout=120)
    assert result.returncode == 2 and "must end in .png" in result.stderr


@pytest.fixture(scope="module")
def xvfb_display():
    """A private Xvfb server (Debian package xvfb); its DISPLAY value."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb; scripts/setup.sh installs it)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write)
    number = b""
    deadline = time.monotonic() + 30
    while not number.endswith(b"\n") and time.monotonic() < deadline and server.poll() is None:
        number += os.read(read, 16)
    os.close(read)
    if server.poll() is not None or not number.strip():
        server.kill()
        pytest.skip(f"Xvfb could not start: {server.stderr.read().decode(errors='replace')[-300:]}")
    yield f":{number.decode().strip()}"
    server.terminate()
    server.wait(timeout=10)


def test_viewer_screenshot_under_xvfb(xvfb_display, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "view.png"
    env = {**os.environ, "DISPLAY": xvfb_display}
    result = kinesis("view", "--screenshot", str(out), "--steps", "30", "--size", "320x240", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "after 30 control steps" in result.stdout
    image = iio.imread(out)
    assert image.shape == (240, 320, 3)
    assert image.std() > 10  # not a uniform picture
    r, g, b = (image[..., i].astype(int) for i in range(3))
    orange = (r > 180) & (g > 70) & (g < 190) & (b < 90) & (r - g > 50)
    assert orange.sum() > 20  # the reference's ghost spheres are in the picture
