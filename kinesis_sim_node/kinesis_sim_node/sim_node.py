"""sim_node: the MuJoCo muscle simulation (kinesis_tasks.MuscleSim) as a ROS 2 node.

Run: ``python -m kinesis_sim_node.sim_node [--ros-args -p clock:=realtime ...]``.
Parameters and their defaults: ``config/sim_node.yaml``. ``scene`` (``scenes.load_scene``) builds a
task scene around the embodiment: ``soccer`` (legs_back only) adds the ball, goal and goalkeeper; the
ball's free joint follows the embodiment in qpos/qvel (SimState.qpos [nq + 7], qvel [nv + 6]).

Publishes ``/kinesis/sim_state`` (SimState, latched: transient local, depth 1), ``/joint_states``
(hinge and slide joints) and ``/kinesis/muscle_state`` (these two only when subscribed); subscribes
``/kinesis/muscle_command``. Services: ``~/reset`` (kinesis_msgs/Reset: qpos and qvel if given, else the
model default and zero velocities; activations zero; the step index restarts at 0 and state 0 is published
before the response; the motion name and seed are logged at debug level: the simulation draws no random
numbers; the policy node calls it at every motion start), ``~/pause`` (std_srvs/SetBool: true pauses, false resumes) and ``~/step`` (kinesis_msgs/Step:
lockstep only, while paused; each step applies the command that answers the current state if one
came, else holds the last applied action; the response's ``step`` is the current step, refused or not).

Clocks:
* ``lockstep``: the node publishes a state (``step`` = k) and applies the command whose
  ``state_step`` is k for one control period, then publishes state k + 1. A run is exactly an
  offline ``MuscleSim`` run with the same actions.
* ``realtime``: a wall-clock loop at ``control_rate_hz`` (``realtime.PeriodicThread``: absolute
  deadlines, its own thread, SCHED_FIFO ``realtime_priority`` when the system allows it) steps with
  the last command held. When no command came for ``watchdog_timeout_s`` (or none yet), every muscle
  is relaxed (``messages.relaxed_action``: -1 in direct mode, +1 in target-length mode) and a warning
  is logged once per stall.

A command with the wrong embodiment, mode or length, NaN/inf or values outside [-1, 1] (or, in
lockstep, answering another step) is never applied: it is counted in the parameter
``rejected.<reason>`` and logged (throttled) with all counts so far.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from kinesis_msgs.msg import MuscleCommand, MuscleState, SimState
from kinesis_msgs.srv import Reset, Step
from kinesis_sim_node import messages, realtime, scenes
from kinesis_tasks import MuscleSim
from kinesis_tasks.config import load_config
from kinesis_sim_node.spin import spin_node

CLOCKS = ("lockstep", "realtime")


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("sim_node", **kwargs)
        numeric = ParameterDescriptor(dynamic_typing=True)  # accept 30 as well as 30.0
        p = {name: self.declare_parameter(name, value, numeric if isinstance(value, float) else ParameterDescriptor()).value
             for name, value in load_config("sim_node")["/**"]["ros__parameters"].items()}
        if p["clock"] not in CLOCKS:
            raise ValueError(f"parameter clock must be one of {CLOCKS}, got {p['clock']!r}")
        self.embodiment, self.clock, self.mode = str(p["embodiment"]), p["clock"], p["control_mode"]
        self.scene = str(p["scene"])
        model = scenes.load_scene(self.embodiment, self.scene)
        self.sim = MuscleSim(model, control_mode=self.mode, substeps=substeps_for_rate(model.opt.timestep, float(p["control_rate_hz"])),
                             muscle_condition=p["muscle_condition"])
        self.layout = messages.StateLayout.from_model(model)
        self.relaxed = messages.relaxed_action(self.mode, model.nu)
        self.every = {topic: publish_every(float(p["control_rate_hz"]), float(p[f"{topic}_rate_hz"])) for topic in ("joint_state", "muscle_state")}
        self.watchdog_timeout = float(p["watchdog_timeout_s"])
        self.held, self.pending, self.step_index, self.paused = self.relaxed, None, 0, False
        self.last_command_time: float | None = None
        self.stalled = False
        self.rejected: Counter[str] = Counter()
        self.lock = threading.Lock()  # the realtime thread steps while services run on the executor's
        for reason in messages.REJECT_REASONS:
            self.declare_parameter(f"rejected.{reason}", 0, ParameterDescriptor(description="output: rejected commands"))

        self.state_pub = self.create_publisher(SimState, "/kinesis/sim_state", messages.SIM_STATE_QOS)
        self.joint_pub = self.create_publisher(JointState, "/joint_states", 10)
        self.muscle_pub = self.create_publisher(MuscleState, "/kinesis/muscle_state", 10)
        self.create_subscription(MuscleCommand, "/kinesis/muscle_command", self.on_command, 10)
        self.create_service(Reset, "~/reset", self.on_reset)
        self.create_service(SetBool, "~/pause", self.on_pause)
        self.create_service(Step, "~/step", self.on_step)
        self.publish_state()
        self.ticker = None
        if self.clock == "realtime":
            self.ticker = realtime.PeriodicThread(self.sim.control_dt, self.on_tick, priority=int(p["realtime_priority"]))
            self.ticker.start()
        where = f" in the {self.scene} scene" if self.scene else ""
        loop = f" ({self.ticker.scheduling})" if self.ticker else ""
        self.get_logger().info(f"ready: {self.embodiment} ({model.nu} muscles){where}, {self.mode} control, {self.clock} clock "
                               f"at {1 / self.sim.control_dt:g} Hz{loop}")

    def close(self) -> None:
        """Stop the realtime loop."""
        if self.ticker is not None:
            self.ticker.stop()

    def on_command(self, msg: MuscleCommand) -> None:
        try:
            action = messages.command_action(msg, embodiment=self.embodiment, mode=self.mode, nu=self.sim.nu)
            if self.clock == "lockstep" and msg.state_step != self.step_index:
                raise messages.RejectedCommand("stale", f"answers step {msg.state_step}, the current step is {self.step_index}")
        except messages.RejectedCommand as error:
            self.reject(error)
            return
        if self.clock == "realtime":
            self.held, self.last_command_time = action, time.monotonic()
            if self.stalled:
                self.get_logger().info("commands resumed")
                self.stalled = False
        elif self.paused:
            self.pending = action
        else:
            with self.lock:
                self.advance(action)

    def on_tick(self) -> None:
        """Realtime: one control step with the held command, or relaxed muscles once the commands stopped."""
        with self.lock:
            if self.paused:
                return
            silent = self.last_command_time is None or time.monotonic() - self.last_command_time > self.watchdog_timeout
            if silent and self.last_command_time is not None and not self.stalled:
                self.get_logger().warning(f"watchdog: no muscle command for {self.watchdog_timeout:g} s, relaxing all muscles")
                self.stalled = True
            self.advance(self.relaxed if silent else self.held)

    def advance(self, action: np.ndarray) -> None:
        self.sim.step(action)
        self.held = action
        self.step_index += 1
        self.publish_state()

    def publish_state(self) -> None:
        """The SimState first (the policy waits for it), then the optional topics that someone subscribes."""
        self.state_pub.publish(messages.sim_state_msg(self.sim, self.layout, embodiment=self.embodiment, step=self.step_index))
        if self.due("joint_state", self.joint_pub):
            self.joint_pub.publish(messages.joint_state_msg(self.sim, self.layout))
        if self.due("muscle_state", self.muscle_pub):
            self.muscle_pub.publish(messages.muscle_state_msg(self.sim, self.layout))

    def due(self, topic: str, publisher) -> bool:
        every = self.every[topic]
        return bool(every) and self.step_index % every == 0 and publisher.get_subscription_count() > 0

    def reject(self, error: messages.RejectedCommand) -> None:
        self.rejected[error.reason] += 1
        self.set_parameters([Parameter(f"rejected.{error.reason}", value=self.rejected[error.reason])])
        counts = ", ".join(f"{reason}={count}" for reason, count in sorted(self.rejected.items()))
        self.get_logger().warning(f"rejected muscle command ({error}); rejected so far: {counts}", throttle_duration_sec=1.0)

    def on_reset(self, request: Reset.Request, response: Reset.Response) -> Reset.Response:
        model = self.sim.model
        given = {name: np.array(values, dtype=np.float64) if len(values) else None
                 for name, values in (("qpos", request.qpos), ("qvel", request.qvel))}
        for name, size in (("qpos", model.nq), ("qvel", model.nv)):  # checked first: a refused reset changes nothing
            value = given[name]
            if value is not None and (value.shape != (size,) or not np.all(np.isfinite(value))):
                response.success = False
                response.message = f"reset refused: {name} needs {size} finite values, got {value.size}"
                self.get_logger().warning(response.message)
                return response
        with self.lock:
            self.sim.reset(qpos=given["qpos"], qvel=given["qvel"])
            self.held, self.pending, self.step_index, self.last_command_time = self.relaxed, None, 0, None
            self.publish_state()
        response.success = True
        response.message = (f"reset to {'the given qpos' if given['qpos'] is not None else 'the model default'}"
                            f"{', qvel' if given['qvel'] is not None else ''}"
                            f" (motion {request.motion!r}, seed {request.seed})")
        self.get_logger().debug(response.message)
        return response

    def on_pause(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            self.paused = bool(request.data)
            response.success, response.message = True, "paused" if self.paused else "resumed"
            if not self.paused and self.pending is not None:
                action, self.pending = self.pending, None
                self.advance(action)
        return response

    def on_step(self, request: Step.Request, response: Step.Response) -> Step.Response:
        if self.clock != "lockstep" or not self.paused:
            response.success = False
            response.message = "step needs the lockstep clock" if self.clock != "lockstep" else "pause the simulation first"
        else:
            with self.lock:
                for _ in range(request.n):
                    action, self.pending = (self.held if self.pending is None else self.pending), None
                    self.advance(action)
            response.success, response.message = True, f"stepped {request.n}"
        response.step = self.step_index
        return response


def substeps_for_rate(timestep: float, control_rate_hz: float) -> int:
    """Physics steps per control step; the control rate must divide the physics rate 1/timestep."""
    ratio = 1.0 / (timestep * control_rate_hz) if control_rate_hz > 0 else 0.0
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-6:
        raise ValueError(f"parameter control_rate_hz={control_rate_hz:g} must divide the physics rate {1 / timestep:g} Hz")
    return int(round(ratio))


def publish_every(control_rate_hz: float, rate_hz: float) -> int:
    """Publish every n-th control step for ``rate_hz`` (0: never)."""
    return max(1, int(round(control_rate_hz / rate_hz))) if rate_hz > 0 else 0


def main(args: list[str] | None = None) -> int:
    return spin_node(SimNode, "sim_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
