"""ImitationEnv: track a reference motion with a muscle-driven embodiment (KINESIS v1 imitation task).

One episode follows one motion of a library from a start frame. Time: control step t (t = 0 at reset)
is at motion time tau_t = start / fps + t dt, dt = substeps * timestep (1/30 s by default); the
reference is interpolated linearly at these times, so motions may have any frame rate.

step(action) (README 2.6 and 4.1 of tests/data/conformance):
1. ``MuscleSim.step``, then ``mj_kinematics``: body poses are those of the new state while the sensor
   vector (COM velocities, touch) and muscle lengths stay one sub-step stale, exactly as KINESIS v1.
2. reward: named terms {"body_pos", "vel", "upright", "energy"} (``rewards.reward_terms_from_state``)
   against the reference at tau_t (the time of the new state), weighted by ``RewardConfig.scales`` and summed;
   in training, with a "joint" scale, also ``rewards.joint_term`` of the free hinges against the motion's qpos.
3. terminated: mean tracked-body distance to the reference at tau_t above the threshold (0.15 m
   training, 0.5 m evaluation); truncated: the reference has no time tau_{t+1} left (end of the motion).
4. observation [proprioception | imitation] (``observations``) with the reference at tau_{t+1}.
Steps 2 to 4 are one compiled call (``kernels.imitation_step_into``) made of the same kernels that
``rewards`` and ``observations`` run, so the env and those functions agree to the bit.

Observation sizes (float32): 309 for the KINESIS v1 MJCF (16 bodies, 7 tracked), 504 for ``legs``
(29 bodies, 7 tracked), 513 for ``legs_abs`` and ``legs_back`` (29 bodies, 8 tracked: head after root).

Initial state (``initial_pose.InitialStates``, shared with the policy node, which resets the simulation to
it over ROS): the motion's qpos at the start frame when it carries one for this embodiment (qvel by
forward difference with ``mj_differentiatePos``), otherwise a least-squares IK fit to the keypoints
(``initial_pose``; qvel from the fits of the start frame and the next), cached per (motion, frame).
Activations start at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, Mapping, Sequence

import gymnasium as gym
import mujoco
import numpy as np

from kinesis_tasks import kernels, observations, rewards, symmetry
from kinesis_tasks.config import load_config
from kinesis_tasks.embodiment import builtin_embodiments, load_embodiment
from kinesis_tasks.initial_pose import InitialStates
from kinesis_tasks.motions import HEAD_BODY, ReferenceMotion, load_library
from kinesis_tasks.sim import MuscleSim

_EPS = 1e-9
#: Name of the tracked root body in motions (the model's free root body may be named otherwise).
_MOTION_ROOT = "root"


@dataclass(frozen=True)
class ImitationConfig:
    """Settings of the imitation task (defaults: KINESIS v1; ``config/imitation.yaml`` mirrors them)."""

    embodiment: str = "legs"
    """Built-in embodiment name (legs, legs_abs, legs_back) or path to an MJCF file."""
    motions: str = "default"
    """Motion library: "default" (embedded) or a library .npz file or folder."""
    split: str | None = "train"
    """Library split to use ("train", "test"), or None for every motion."""
    control_mode: Literal["target_length", "direct"] = "target_length"
    """Muscle control law of ``MuscleSim``."""
    muscle_condition: Literal["none", "fatigue"] = "none"
    """"fatigue" enables 3CC-r muscle fatigue."""
    include_head: bool | None = None
    """Track the head (8 bodies) as well; None: only for built-ins with torso muscles (legs_abs, legs_back)."""
    evaluation: bool = False
    """Evaluation mode: every episode starts at frame 0 and terminates at ``eval_termination_distance``."""
    random_start: bool = True
    """Training: start each episode at a uniformly random frame (False: frame 0)."""
    termination_distance: float = 0.15
    """Training termination threshold on the mean tracked-body distance, m."""
    eval_termination_distance: float = 0.5
    """Evaluation termination threshold on the mean tracked-body distance, m."""
    reward: rewards.RewardConfig = field(default_factory=rewards.RewardConfig)
    """Reward sharpness constants and term weights."""

    @property
    def termination(self) -> rewards.TerminationConfig:
        """The termination rule of the current mode."""
        distance = self.eval_termination_distance if self.evaluation else self.termination_distance
        return rewards.TerminationConfig(distance=distance, reduction="mean")

    def tracks_head(self) -> bool:
        if self.include_head is not None:
            return self.include_head
        info = builtin_embodiments().get(self.embodiment)
        return bool(info and info.has_torso_muscles)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ImitationConfig:
        """Config from a (YAML) mapping; unknown keys raise ValueError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"imitation config: unknown keys {unknown} (known: {sorted(known)})")
        values = dict(values)
        if "reward" in values and not isinstance(values["reward"], rewards.RewardConfig):
            values["reward"] = rewards.RewardConfig(**values["reward"])
        return cls(**values)

    @classmethod
    def default(cls, **overrides: Any) -> ImitationConfig:
        """``config/imitation.yaml`` with ``overrides`` applied."""
        return cls.from_dict({**load_config("imitation"), **overrides})


@dataclass(frozen=True, eq=False)
class MotionTrack:
    """A motion prepared for one embodiment: tracked keypoints, velocities and (optionally) qpos.

    Shared with the policy node (``kinesis_policy_node.tracking``), which follows motions the same way.
    """

    name: str
    fps: float
    keypoints: np.ndarray  # [T, K, 3] tracked bodies in task order
    velocities: np.ndarray  # [T, K, 3]
    qpos: np.ndarray | None  # [T, nq] when the motion carries one for this embodiment
    frames_per_step: float  # motion frames per control step

    @classmethod
    def prepare(cls, motion: ReferenceMotion, motion_bodies: Sequence[str], dt: float, *,
                embodiment: str | None = None, nq: int | None = None) -> MotionTrack:
        """The keypoints of ``motion_bodies`` stepped at ``dt`` s; its qpos kept when it is ``embodiment``'s [T, nq]."""
        missing = [body for body in motion_bodies if body not in motion.body_names]
        if missing:
            hint = " (the head is tracked for embodiments with torso muscles)" if HEAD_BODY in missing else ""
            raise ValueError(
                f"motion {motion.name!r} has no keypoints for {missing}{hint}; it has {list(motion.body_names)}"
            )
        index = [motion.body_names.index(body) for body in motion_bodies]
        frames_per_step = dt * motion.fps
        if motion.num_frames - 1 < frames_per_step - _EPS:
            raise ValueError(
                f"motion {motion.name!r} lasts {motion.duration:.3f} s, shorter than one control step ({dt:.4f} s)"
            )
        own_qpos = motion.qpos is not None and motion.embodiment == embodiment and motion.qpos.shape[1] == nq
        return cls(
            name=motion.name,
            fps=motion.fps,
            keypoints=np.ascontiguousarray(motion.keypoints[:, index]),
            velocities=np.ascontiguousarray(motion.velocities[:, index]),
            qpos=motion.qpos if own_qpos else None,
            frames_per_step=frames_per_step,
        )

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    def steps_from(self, start: int) -> int:
        """Control steps the reference covers from frame ``start``."""
        return int(np.floor((self.num_frames - 1 - start) / self.frames_per_step + _EPS))

    @property
    def last_start(self) -> int:
        """Latest start frame that leaves at least one control step."""
        return int(np.floor(self.num_frames - 1 - self.frames_per_step + _EPS))

    def qpos_at(self, position: float, addresses: np.ndarray) -> np.ndarray:
        """qpos entries ``addresses`` at fractional frame ``position`` (linear, clamped to the motion)."""
        position = min(max(position, 0.0), self.num_frames - 1.0)
        low = int(position)
        high, weight = min(low + 1, self.num_frames - 1), position - low
        return (1.0 - weight) * self.qpos[low, addresses] + weight * self.qpos[high, addresses]

    def at(self, position: float) -> tuple[np.ndarray, np.ndarray]:
        """(positions [K, 3], velocities [K, 3]) at fractional frame ``position`` (clamped to the motion)."""
        pos, vel = np.empty(self.keypoints.shape[1:]), np.empty(self.keypoints.shape[1:])
        kernels.interpolate_into(self.keypoints, self.velocities, float(position), pos, vel)
        return pos, vel


class ImitationEnv(gym.Env):
    """Motion imitation with a MuscleSim: Box action [-1, 1]^nu, Box observation [D] float32.

    reset options: ``{"motion": name, "start": frame}`` pick the motion and start frame; ``"qpos"``,
    ``"qvel"`` (and ``"act"``) replace the initial state derived from the reference.
    info: "motion", "frame" (fractional reference frame of the state), "step", and after a step the reward
    terms as "reward/<term>", "tracking_distance" (m, mean over tracked bodies) and "mpjpe_mm".
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        config: ImitationConfig | None = None,
        motions: Mapping[str, ReferenceMotion] | Sequence[ReferenceMotion] | None = None,
        *,
        model: mujoco.MjModel | None = None,
    ) -> None:
        """``motions`` default to ``config.motions``/``config.split``; ``model`` (read-only, may be shared by
        envs) defaults to ``load_embodiment(config.embodiment)``."""
        self.config = config if config is not None else ImitationConfig.default()
        if motions is None:
            motions = load_library(self.config.motions, split=self.config.split)
        motion_list = list(motions.values()) if isinstance(motions, Mapping) else list(motions)
        if not motion_list:
            raise ValueError("motions: the motion set is empty")
        self._motions = {motion.name: motion for motion in motion_list}
        self.model = model if model is not None else load_embodiment(self.config.embodiment)
        self.sim = MuscleSim(
            self.model, control_mode=self.config.control_mode, muscle_condition=self.config.muscle_condition
        )
        tracked = observations.tracked_bodies(self.model, include_head=self.config.tracks_head())
        self.layout = observations.body_layout(self.model, tracked)
        # Buffers and arguments of the per-step kernel (kernels.imitation_step_into).
        layout = self.layout
        self._layout_arrays = (layout.body_ids, layout.root_qposadr, layout.linvel_adr, layout.angvel_adr,
                               layout.touch_adr, layout.root, layout.others, layout.tracked)  # fmt: skip
        self._sharpness = (self.config.reward.k_pos, self.config.reward.k_vel, self.config.reward.k_energy)
        self._state = observations.BodyState.empty(layout)
        self._references = (np.empty((len(layout.tracked), 3)), np.empty((len(layout.tracked), 3)))
        self._values = np.empty(5)
        # The optional joint-angle term: training only (evaluation judges positions), needs the motions' qpos.
        joint_weighted = rewards.JOINT_TERM in self.config.reward.scales and not self.config.evaluation
        self._joint_qpos = rewards.free_hinges(self.model) if joint_weighted else None
        self._motion_bodies = (_MOTION_ROOT, *tracked[1:])
        self._termination_distance = self.config.termination.distance
        self.dt = self.sim.control_dt
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.layout.full_size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.model.nu,), np.float32)
        self._tracks: dict[str, MotionTrack] = {}
        self._initial_states = InitialStates(self.model, self.layout.tracked_names)
        self._weights: np.ndarray | None = None
        self._track: MotionTrack | None = None
        self._start = 0
        self._t = 0
        self._max_steps = 0

    # --- motion set -----------------------------------------------------------------------------

    @property
    def motion_names(self) -> tuple[str, ...]:
        return tuple(self._motions)

    @property
    def max_episode_steps(self) -> int:
        """Control steps the current episode can last (its reference length from the start frame)."""
        return self._max_steps

    def set_motion_weights(self, weights: Mapping[str, float] | Sequence[float] | np.ndarray | None) -> None:
        """Sampling weights of the motions (by name, or in ``motion_names`` order); None: uniform.

        Names left out of a mapping get weight 0. Weights must be finite, >= 0, with a positive sum.
        """
        if weights is None:
            self._weights = None
            return
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(self._motions))
            if unknown:
                raise ValueError(f"weights: unknown motions {unknown[:5]}")
            values = np.array([float(weights.get(name, 0.0)) for name in self._motions])
        else:
            values = np.asarray(weights, dtype=np.float64)
            if values.shape != (len(self._motions),):
                raise ValueError(f"weights: expected {len(self._motions)} values, got shape {values.shape}")
        if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
            raise ValueError("weights: need finite values >= 0 with a positive sum")
        self._weights = values / values.sum()

    def _prepared(self, name: str) -> MotionTrack:
        track = self._tracks.get(name)
        if track is None:
            track = self._tracks[name] = MotionTrack.prepare(
                self._motions[name], self._motion_bodies, self.dt, embodiment=self.config.embodiment, nq=self.model.nq
            )
            if self._joint_qpos is not None and track.qpos is None:
                raise ValueError(f"reward scale {rewards.JOINT_TERM!r}: motion {name!r} carries no qpos for "
                                 f"embodiment {self.config.embodiment!r}; drop the scale or the motion")
        return track

    def mirror_map(self) -> symmetry.MirrorMap:
        """Left-right mirror of this env's observations and actions (``kinesis_tasks.symmetry``), found on
        states around the poses of the motions that carry qpos for this embodiment."""
        poses = [track.qpos for track in map(self._prepared, self._motions) if track.qpos is not None]
        return symmetry.mirror_map(self.model, self.layout, reference_qpos=np.concatenate(poses) if poses else None)

    # --- initial state --------------------------------------------------------------------------

    def fitted_qpos(self, name: str, frame: int) -> np.ndarray:
        """IK-fitted qpos [nq] for frame ``frame`` of motion ``name`` (cached)."""
        return self._initial_states.fitted_qpos(self._prepared(name), frame)

    def initial_state(self, name: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(qpos [nq], qvel [nv]) at frame ``frame`` of motion ``name`` (see the module docstring)."""
        return self._initial_states(self._prepared(name), frame)

    # --- gymnasium API --------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"motion", "start", "qpos", "qvel", "act"})
        if unknown:
            raise ValueError(f"options: unknown keys {unknown}")
        name = options.get("motion")
        if name is None:
            name = self.motion_names[int(self.np_random.choice(len(self._motions), p=self._weights))]
        elif name not in self._motions:
            raise ValueError(f"options['motion']: no motion {name!r} in this environment's motion set")
        track = self._prepared(name)
        start = options.get("start")
        if start is None:
            random = self.config.random_start and not self.config.evaluation
            start = int(self.np_random.integers(0, track.last_start + 1)) if random else 0
        if not 0 <= int(start) <= track.last_start:
            raise ValueError(f"options['start']: frame {start} outside [0, {track.last_start}] for motion {name!r}")
        self._track, self._start, self._t = track, int(start), 0
        self._max_steps = track.steps_from(self._start)
        qpos, qvel = (None, None) if "qpos" in options and "qvel" in options else self.initial_state(name, self._start)
        self.sim.reset(options.get("qpos", qpos), options.get("qvel", qvel), options.get("act"))
        return self._observation(), {"motion": name, "frame": float(self._start), "step": 0}

    def step(self, action: np.ndarray):
        if self._track is None:
            raise RuntimeError("step() called before reset()")
        self.sim.step(action)
        data = self.sim.data
        mujoco.mj_kinematics(self.model, data)
        self._t += 1
        frame, track, obs = self._frame(self._t), self._track, np.empty(self.layout.full_size, dtype=np.float32)
        # Body state, reward terms against the reference at tau_t, observation with the one at tau_{t+1}.
        kernels.imitation_step_into(
            data.xpos, data.xquat, data.qpos, data.sensordata, *self._layout_arrays,
            track.keypoints, track.velocities, frame, self._frame(self._t + 1),
            self.sim.substep_controls, *self._sharpness, *self._state, *self._references, obs, self._values,
        )  # fmt: skip
        values = self._values.tolist()
        terms, distance = dict(zip(rewards.TERMS, values)), values[4]
        if self._joint_qpos is not None:
            angles, reference = data.qpos[self._joint_qpos], track.qpos_at(frame, self._joint_qpos)
            terms[rewards.JOINT_TERM] = rewards.joint_term(angles, reference, self.config.reward.k_joint)
        reward = float(rewards.total(terms, self.config.reward))
        terminated = distance > self._termination_distance
        truncated = not terminated and self._t >= self._max_steps
        info = {
            "motion": self._track.name,
            "frame": frame,
            "step": self._t,
            **{f"reward/{name}": value for name, value in terms.items()},
            "tracking_distance": distance,
            "mpjpe_mm": 1000.0 * distance,  # mean per-body distance = tracking distance (mean reduction)
        }
        return obs, reward, terminated, truncated, info

    # --- helpers --------------------------------------------------------------------------------

    def _frame(self, t: int) -> float:
        """Fractional reference frame at control step ``t`` of the episode."""
        return self._start + t * self._track.frames_per_step

    def _observation(self) -> np.ndarray:
        """Policy input of the current data with the reference of the next control step (tau_{t+1})."""
        state = observations.data_state(self.layout, self.sim.data, out=self._state)
        ref_pos, ref_vel = self._track.at(self._frame(self._t + 1))
        return observations.full_from_state(self.layout, state, ref_pos, ref_vel)
