"""scripts/compare_checkpoints.py: one row per checkpoint, the same numbers as the evaluation API."""

import json
import subprocess
import sys
from pathlib import Path

from kinesis_tasks.bundled import resolve_policy
from kinesis_tasks.evaluation import evaluate_task, summarize_tasks
from kinesis_training.inference import load_policy

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_checkpoints.py"


def compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_scores_match_the_evaluation_api_and_bad_arguments_are_refused(tmp_path):
    bundle = str(resolve_policy(None).checkpoint)
    result = compare(bundle, "--gauges", "reach", "--goals", "1", "--seed", "3", "--json", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["gauges"] == ["reach"] and scores["goals"] == 1 and scores["seed"] == 3
    direct = summarize_tasks(evaluate_task("reach", lambda *_: load_policy(bundle).mean_action, goals=1, seed=3))
    assert scores["scores"][bundle]["reach"]["success_rate"] == direct["success_rate"]
    assert scores["scores"][bundle]["reach"]["mean_return"] == direct["mean_return"]
    assert "unknown gauges ['walk']" in compare(bundle, "--gauges", "walk").stderr
    assert "needs --holdout" in compare(bundle, "--gauges", "holdout").stderr
    assert "no such checkpoint: missing.pth" in compare("missing.pth").stderr
