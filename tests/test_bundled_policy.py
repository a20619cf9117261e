"""The bundled policy (kinesis_tasks/data/policies/legs/): it ships, loads, acts on the legs observation, and it
is the default of `kinesis eval`, `kinesis view`, `kinesis demo` and the policy node; the fallbacks run by name.

Nothing here depends on which checkpoint the bundle holds, only on its sizes (legs: observation 504, 80 muscles).
"""

import argparse
import json
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest

from kinesis import demo_cli, eval_cli, view_cli
from kinesis_tasks import bundled
from kinesis_tasks.bundled import BUNDLE_ROOT, PolicyChoice, bundle, bundled_checkpoint, resolve_policy
from kinesis_tasks.controllers import FALLBACKS, fallback_action, hold_pose_action
from kinesis_tasks.embodiment import load_embodiment
from kinesis_tasks.evaluation import FallbackPolicy
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.motions import load_library, save_library
from kinesis_training.inference import CheckpointPolicy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def legs_model():
    return load_embodiment("legs")


def test_the_legs_bundle_ships_with_the_package():
    assert "legs" in bundled.bundled_embodiments()
    found = bundle("legs")
    assert found.folder == BUNDLE_ROOT / "legs" and found.checkpoint.is_file() and found.config.is_file()
    assert found.control_mode == "target_length" and bundled_checkpoint() == found.checkpoint
    # pip install takes the bundle along: package data of kinesis_tasks covers every file kind of a bundle
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["kinesis_tasks"]
    for name in ("model.pth", "config.yaml", "eval_test.json", "curve.png", "MODEL_CARD.md"):
        assert any(fnmatch(f"data/policies/legs/{name}", pattern) for pattern in patterns), name
    # Reach has its own bundle (the walker's lineage): the default wherever that task runs; directional control
    # and the kick (legs_back) have none: the walker runs directional control (eval_directional.json).
    own = bundle("legs", "reach")
    assert own.folder == BUNDLE_ROOT / "legs" / "reach" and own.control_mode == "target_length"
    for name in ("model.pth", "config.yaml", "eval_reach.json", "MODEL_CARD.md"):
        assert (own.folder / name).is_file(), name
        assert any(fnmatch(f"data/policies/legs/reach/{name}", pattern) for pattern in patterns), name
    assert resolve_policy(None, "legs", task="reach").checkpoint == own.checkpoint != found.checkpoint
    assert (found.folder / "eval_directional.json").is_file()
    for task in ("directional", "kick"):
        assert bundle("legs", task) == found


def test_bundled_policy_acts_on_the_legs_observation():
    from kinesis_training import load_policy

    policy = load_policy(bundled_checkpoint("legs"))
    assert (policy.obs_dim, policy.action_dim) == (504, 80)
    env = ImitationEnv(ImitationConfig.default(embodiment="legs", evaluation=True))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (504,)
    for _ in range(10):
        action = policy.mean_action(obs)
        assert action.shape == (80,) and np.isfinite(action).all()
        obs, reward, terminated, truncated, info = env.step(action)  # the simulator clips actions to [-1, 1]
        assert np.isfinite(obs).all() and np.isfinite(reward)
        control = env.sim.data.ctrl
        assert np.isfinite(control).all() and control.min() >= 0.0 and control.max() <= 1.0  # muscle activations
        if terminated or truncated:
            break


def test_resolution_of_checkpoint_arguments(tmp_path):
    for value in (None, "", "bundled", "default", " bundled "):
        assert resolve_policy(value, "legs") == PolicyChoice(checkpoint=bundled_checkpoint("legs"), bundled=True)
    assert resolve_policy(resolve_policy(None, "legs").argument, "legs").bundled
    for name in FALLBACKS:
        choice = resolve_policy(name, "legs")
        assert choice == PolicyChoice(checkpoint=None, fallback=name) and choice.argument == name
        assert resolve_policy(name, "legs_back").fallback == name  # a fallback needs no bundle
    path = tmp_path / "model.pth"
    path.write_bytes(b"")
    assert resolve_policy(str(path), "legs_back") == PolicyChoice(checkpoint=path)
    assert resolve_policy(path, "legs").argument == str(path)
    with pytest.raises(FileNotFoundError, match="nope.pth: file not found.*hold-pose"):
        resolve_policy(tmp_path / "nope.pth", "legs")
    with pytest.raises(ValueError, match="unknown official checkpoint 'kinesis:nope'"):
        resolve_policy("kinesis:nope", "legs")  # kinesis:NAME goes through assets.resolve_checkpoint


def test_a_task_with_its_own_bundle_runs_it(tmp_path, monkeypatch):
    from kinesis_tasks import bundled

    for folder in (tmp_path / "legs", tmp_path / "legs" / "reach"):
        folder.mkdir(parents=True)
        (folder / "model.pth").write_bytes(b"")
    monkeypatch.setattr(bundled, "BUNDLE_ROOT", tmp_path)
    assert resolve_policy(None, "legs", task="reach").checkpoint == tmp_path / "legs" / "reach" / "model.pth"
    for task in (None, "directional", "kick"):  # no bundle of their own: the embodiment's
        assert resolve_policy("", "legs", task=task).checkpoint == tmp_path / "legs" / "model.pth"
    assert eval_cli._policy_factory(eval_args("--task", "reach")).path == str(tmp_path / "legs" / "reach" / "model.pth")


def test_no_bundle_is_an_error_or_the_named_fallback():
    for value, embodiment in ((None, "legs_back"), ("bundled", "legs_abs"), ("", "kinesis-v1"), ("", "a/b.xml")):
        with pytest.raises(ValueError, match=r"no bundled policy for embodiment .*--checkpoint PATH.*--checkpoint hold-pose"):
            resolve_policy(value, embodiment)
    choice = resolve_policy(None, "legs_back", unbundled="fallback")
    assert choice.checkpoint is None and choice.fallback == "hold-pose" and "no bundled policy for legs_back" in choice.reason
    assert "no bundled policy for legs_back" in choice.description
    # the bundle was trained for target_length control: in direct control there is none
    assert resolve_policy("", "legs", control_mode="direct", unbundled="fallback").fallback == "hold-pose"
    with pytest.raises(ValueError, match="in direct control"):
        resolve_policy("bundled", "legs", control_mode="direct", unbundled="fallback")  # asked for by name


def test_fallback_actions(legs_model):
    np.testing.assert_array_equal(fallback_action("hold-pose", legs_model), hold_pose_action(legs_model))
    np.testing.assert_array_equal(fallback_action("hold-pose", legs_model, "direct"), -np.ones(80))
    np.testing.assert_array_equal(fallback_action("zero-action", legs_model), np.zeros(80))
    with pytest.raises(ValueError, match="unknown fallback"):
        fallback_action("nope", legs_model)


def eval_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_cli.register(parser.add_subparsers())
    return parser.parse_args(["eval", *argv])


def test_eval_policy_factory_defaults_to_the_bundle():
    factory = eval_cli._policy_factory(eval_args())
    assert factory == CheckpointPolicy(str(bundled_checkpoint("legs")), "float32", bundled=True)
    assert factory.description.startswith("bundled policy ")
    hold = eval_cli._policy_factory(eval_args("--checkpoint", "hold-pose"))
    assert isinstance(hold, FallbackPolicy) and hold.name == "hold-pose" and "hold-pose" in hold.description
    np.testing.assert_array_equal(hold(504, 80)(np.zeros(504, np.float32)),
                                  hold_pose_action(load_embodiment("legs")).astype(np.float32))
    assert eval_cli._policy_factory(eval_args("--checkpoint", "zero-action"))(504, 80)(None).tolist() == [0.0] * 80
    # tasks: the walker drives reach with the legs; the kick (legs_back) has no bundle and keeps the fallback
    assert eval_cli._policy_factory(eval_args("--task", "reach")).bundled
    kick = eval_cli._policy_factory(eval_args("--task", "kick"))
    assert isinstance(kick, FallbackPolicy) and "no bundled policy for legs_back" in kick.description
    with pytest.raises(ValueError, match="no bundled policy for embodiment 'legs_back'.*hold-pose"):
        eval_cli._policy_factory(eval_args("--embodiment", "legs_back"))


def test_kinesis_eval_without_checkpoint_runs_the_bundle(tmp_path, capsys):
    stand = load_library("default")["stand_still"]
    short = stand.replace(name="stand_short", keypoints=stand.keypoints[:8], qpos=stand.qpos[:8],
                          root_quat=stand.root_quat[:8])
    library = save_library(tmp_path / "lib.npz", [short])
    out = tmp_path / "eval.json"
    args = eval_args("--motions", str(library), "--json", str(out))
    assert args.func(args) == 0
    assert "bundled policy" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["checkpoint"] == str(bundled_checkpoint("legs")) and report["bundled"] is True
    assert report["policy"].startswith("bundled policy") and report["per_motion"][0]["frames_total"] == 7
    args = eval_args("--motions", str(library), "--json", str(out), "--checkpoint", "hold-pose")
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    assert report["checkpoint"] is None and report["bundled"] is False and "hold-pose" in report["policy"]


def test_view_uses_the_eval_default():
    parser = argparse.ArgumentParser()
    view_cli.register(parser.add_subparsers())
    args = parser.parse_args(["view"])
    assert eval_cli._policy_factory(args).bundled
    args = parser.parse_args(["view", "--checkpoint", "hold-pose"])
    assert isinstance(eval_cli._policy_factory(args), FallbackPolicy)


def demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo_cli.register(parser.add_subparsers())
    return parser.parse_args(["demo", *argv])


def test_demo_launches_the_bundle_by_default(tmp_path):
    args = demo_args()
    choice = demo_cli.demo_policy(args)
    assert choice.bundled and choice.checkpoint == bundled_checkpoint("legs")
    command = demo_cli.launch_command(args, tmp_path / "run.mcap", choice)
    assert command[:5] == [sys.executable, "-m", "kinesis.cli", "launch", "locomotion"]
    assert "checkpoint:=bundled" in command and "embodiment:=legs" in command  # the node resolves it the same
    args = demo_args("--checkpoint", "hold-pose")
    assert "checkpoint:=hold-pose" in demo_cli.launch_command(args, tmp_path / "run.mcap", demo_cli.demo_policy(args))
    unbundled = demo_cli.demo_policy(demo_args("--embodiment", "legs_back"))
    assert unbundled.fallback == "hold-pose" and "no bundled policy" in unbundled.description
    with pytest.raises(FileNotFoundError):  # a wrong path fails before anything starts
        demo_cli.demo_policy(demo_args("--checkpoint", str(tmp_path / "nope.pth")))


@pytest.fixture(scope="module")
def ros_context():
    import rclpy

    from kinesis.launch import private_ros_environment

    domain_id, _ = private_ros_environment(range(100, 200))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    yield context
    rclpy.shutdown(context=context)


def start_policy_node(context, **parameters):
    from rclpy.parameter import Parameter

    from kinesis_policy_node.policy_node import PolicyNode

    overrides = [Parameter(name, value=value) for name, value in {"sim_node": "", **parameters}.items()]
    return PolicyNode(context=context, parameter_overrides=overrides)


@pytest.mark.ros
def test_policy_node_starts_with_the_bundle(ros_context, legs_model):
    from kinesis_policy_node.policy_node import policy_choice

    assert policy_choice("", "legs", "target_length").bundled
    assert policy_choice("", "legs_back", "target_length").fallback == "hold-pose"  # the kick launch: no bundle
    node = start_policy_node(ros_context)  # config/policy_node.yaml's defaults: checkpoint ""
    try:
        assert node.get_parameter("checkpoint").value == ""
        assert node.policy is not None and node.fallback is None
        assert (node.policy.obs_dim, node.policy.action_dim) == (504, 80)
    finally:
        node.destroy_node()
    node = start_policy_node(ros_context, checkpoint="hold-pose")
    try:
        assert node.policy is None
        np.testing.assert_array_equal(node.fallback, hold_pose_action(legs_model))
    finally:
        node.destroy_node()
