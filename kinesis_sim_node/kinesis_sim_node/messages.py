"""Conversions between a MuscleSim and ROS messages, and the checks a MuscleCommand must pass.

Names and indices are resolved once per model (``StateLayout``); each message is
filled from whole arrays, never muscle by muscle. Array fields are written as
``array.array('d')`` (what rosidl stores) built from the NumPy buffers.
"""

from __future__ import annotations

import array
from dataclasses import dataclass

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

from kinesis_msgs.msg import MuscleCommand, MuscleState, SimState
from kinesis_tasks.embodiment import FOOT_TOUCH_SENSORS
from kinesis_tasks.sim import MuscleSim

WORLD_FRAME = "world"

#: /kinesis/sim_state is latched (transient local, depth 1): a client that subscribes late,
#: with the same durability, still gets the state it has to answer in lockstep mode.
SIM_STATE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: Reasons a command is rejected, as counted by the node.
REJECT_REASONS = ("embodiment", "mode", "length", "non_finite", "range", "stale")


class RejectedCommand(ValueError):
    """A MuscleCommand that must not be applied; ``reason`` is one of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class StateLayout:
    """Names and indices of one model, resolved once.

    joint_names: hinge and slide joints [J]; joint_qpos / joint_dof: their qpos and qvel indices [J].
    muscle_names: actuator names [nu]. touch_sensors: sensordata indices of the foot touch sensors
    (empty when the model lacks them, e.g. an external MJCF).
    """

    joint_names: tuple[str, ...]
    joint_qpos: np.ndarray
    joint_dof: np.ndarray
    muscle_names: tuple[str, ...]
    touch_sensors: np.ndarray

    @classmethod
    def from_model(cls, model: mujoco.MjModel) -> StateLayout:
        scalar = np.flatnonzero(np.isin(model.jnt_type, (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)))
        sensor_names = {model.sensor(i).name: i for i in range(model.nsensor)}
        touch = [model.sensor_adr[sensor_names[name]] for name, _ in FOOT_TOUCH_SENSORS if name in sensor_names]
        return cls(
            joint_names=tuple(model.joint(int(j)).name for j in scalar),
            joint_qpos=model.jnt_qposadr[scalar].copy(),
            joint_dof=model.jnt_dofadr[scalar].copy(),
            muscle_names=tuple(model.actuator(i).name for i in range(model.nu)),
            touch_sensors=np.asarray(touch, dtype=int),
        )


def doubles(values: np.ndarray) -> array.array:
    """A float64 array as the ``array.array('d')`` rosidl keeps for float64[] fields."""
    return array.array("d", np.ascontiguousarray(values, dtype=np.float64).tobytes())


def time_msg(seconds: float) -> Time:
    """A time in seconds as builtin_interfaces/Time (rounded to the nanosecond)."""
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def sim_state_msg(sim: MuscleSim, layout: StateLayout, *, embodiment: str, step: int) -> SimState:
    """SimState of the current data, stamped with the simulation time."""
    data = sim.data
    return SimState(
        header=Header(stamp=time_msg(data.time), frame_id=WORLD_FRAME), sim_time=float(data.time),
        embodiment=embodiment, qpos=doubles(data.qpos), qvel=doubles(data.qvel), activation=doubles(data.act),
        foot_contacts=doubles(data.sensordata[layout.touch_sensors]), step=step, sensordata=doubles(data.sensordata),
    )


def joint_state_msg(sim: MuscleSim, layout: StateLayout) -> JointState:
    """Positions (rad or m) and velocities of the hinge and slide joints, stamped with the simulation time."""
    data = sim.data
    return JointState(
        header=Header(stamp=time_msg(data.time), frame_id=WORLD_FRAME), name=list(layout.joint_names),
        position=doubles(data.qpos[layout.joint_qpos]), velocity=doubles(data.qvel[layout.joint_dof]),
    )


def muscle_state_msg(sim: MuscleSim, layout: StateLayout) -> MuscleState:
    """Excitation (the control MuJoCo got), activation, force, length, velocity and fatigue of every muscle."""
    data = sim.data
    fatigue = sim.fatigue_state()
    return MuscleState(
        header=Header(stamp=time_msg(data.time), frame_id=WORLD_FRAME), names=list(layout.muscle_names),
        excitation=doubles(data.ctrl), activation=doubles(data.act), force=doubles(data.actuator_force),
        length=doubles(data.actuator_length), velocity=doubles(data.actuator_velocity),
        fatigue=doubles(fatigue["fatigued"] if fatigue is not None else np.empty(0)),
    )


def command_action(msg: MuscleCommand, *, embodiment: str, mode: str, nu: int) -> np.ndarray:
    """The action [nu] carried by ``msg``, checked against the running simulation.

    Raises:
        RejectedCommand: wrong embodiment or mode, wrong length, NaN/inf, or values outside [-1, 1].
    """
    if msg.embodiment != embodiment:
        raise RejectedCommand("embodiment", f"command for {msg.embodiment!r}, the simulation runs {embodiment!r}")
    if msg.mode != mode:
        raise RejectedCommand("mode", f"command mode {msg.mode!r}, the simulation runs {mode!r}")
    action = np.array(msg.values, dtype=np.float64)
    if action.shape != (nu,):
        raise RejectedCommand("length", f"{action.size} values, expected {nu}")
    if not np.all(np.isfinite(action)):
        raise RejectedCommand("non_finite", "values contain NaN or infinity")
    if np.any(np.abs(action) > 1.0):
        raise RejectedCommand("range", f"values outside [-1, 1] (min {action.min():g}, max {action.max():g})")
    return action


def relaxed_action(mode: str, nu: int) -> np.ndarray:
    """The action that makes no muscle pull: -1 in direct mode (excitation 0), +1 in target-length
    mode (target length = longest, so the PD force is clipped to 0 unless the muscle lengthens fast)."""
    return np.full(nu, -1.0 if mode == "direct" else 1.0)
