"""scripts/distill_experts.py: DAgger rounds write a student per iteration and a log; teachers are checked."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from kinesis_tasks.bundled import resolve_policy
from kinesis_training.checkpoint import load_checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "distill_experts.py"


@pytest.fixture
def distill(monkeypatch):
    spec = importlib.util.spec_from_file_location("distill_experts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()  # the script runs torch on one thread

    def run(*args: str) -> None:
        monkeypatch.setattr(sys, "argv", ["distill_experts.py", *args])
        module.main()

    yield run
    torch.set_num_threads(threads)


def test_a_student_taught_by_itself_stays_itself_and_another_teacher_moves_it(tmp_path, distill):
    bundle = str(resolve_policy(None).checkpoint)
    common = ("--student", bundle, "--motions", "default:train", "--iterations", "2", "--states", "100", "--no-eval")
    distill(*common, "--out", str(tmp_path / "self"))
    log = [json.loads(line) for line in (tmp_path / "self" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [1, 2] and 100 <= log[0]["states"] < log[1]["states"]
    assert log[0]["loss"] < 1e-3  # its own clipped mean action: nothing to learn
    assert (tmp_path / "self" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    other = str(resolve_policy(None, task="reach").checkpoint)
    distill(*common, "--teacher", f"{other}=stand_still,myosuite_start", "--teacher-share", "1",
            "--out", str(tmp_path / "taught"))
    assert json.loads((tmp_path / "taught" / "log.jsonl").read_text().splitlines()[0])["loss"] > 1e-3
    before, after = load_checkpoint(bundle).policy, load_checkpoint(tmp_path / "taught" / "model_2.pth").policy
    assert after.net.affine_layers[0].weight.shape == before.net.affine_layers[0].weight.shape
    assert not torch.equal(after.action_mean.weight, before.action_mean.weight)
    with pytest.raises(SystemExit, match=r"motions \['moonwalk'\] are not in default:train"):
        distill(*common, "--teacher", f"{other}=moonwalk", "--out", str(tmp_path / "bad"))
