"""The per-step math, compiled with numba: rotations, the muscle force model, observations, rewards.

Every control step of an environment evaluates the target-length control law at each physics
sub-step, then the observation, the reward and the termination of the new state. These are small
loops over muscles and bodies; as NumPy expressions they cost tens of microseconds of dispatch per
step, as compiled loops about a microsecond per call. The modules that own each computation
(``control``, ``rotations``, ``observations``, ``rewards``, ``imitation``) document the formulas,
check shapes and dtypes at their boundary and call the kernels here, for one state or, through
``per_state``, for each state of a batch: one implementation whatever the caller.

Every compiled function of this math lives in this module, on purpose: numba's on-disk cache marks
a compiled function stale only when the source file of that function changes, not when a kernel it
calls in another file does (``kinesis_tasks.jit``). With all of them in one file, any edit here
recompiles them all.

Kernel conventions: one state at a time, float64 C-contiguous inputs, outputs written into arrays
the caller allocated (float32 outputs take the float64 results rounded, as ``astype`` would), no
checks, compiled with ``kinesis_tasks.jit.kernel`` (IEEE arithmetic as NumPy, cached on disk).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from kinesis_tasks.jit import kernel

# --- batches -----------------------------------------------------------------------------------------


def per_state(batch: tuple[int, ...], *arrays: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """The arrays [*batch, *core] state by state: one tuple of their [*core] parts per batch index.

    With ``batch == ()`` the arrays themselves, once. Parts of C-contiguous arrays are views, so a
    kernel that fills an output part fills the output.
    """
    if not batch:
        yield arrays
        return
    yield from zip(*(a.reshape((-1,) + a.shape[len(batch) :]) for a in arrays))


def float64_arrays(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arguments as C-contiguous float64 arrays (no copy where they already are)."""
    return [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]


def broadcast_batch(array: np.ndarray, batch: tuple[int, ...], core_ndim: int) -> np.ndarray:
    """``array`` [..., *core] (core: its last ``core_ndim`` dims) broadcast to [*batch, *core]."""
    core = array.shape[array.ndim - core_ndim :]
    return array if array.shape == batch + core else np.broadcast_to(array, batch + core)


@kernel
def all_finite(values: np.ndarray) -> bool:
    """Whether no value is NaN or infinite (the input check of every control step)."""
    for v in values.flat:
        if not math.isfinite(v):
            return False
    return True


# --- rotations (kinesis_tasks.rotations) -------------------------------------------------------------


@kernel
def quat_matrix(q: np.ndarray) -> tuple[float, float, float, float, float, float, float, float, float]:
    """Rotation matrix entries (R00, R01, R02, R10, ..., R22) of quaternion ``q`` [4] (wxyz, need not be unit)."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    n = w * w + x * x + y * y + z * z
    return (
        (w * w + x * x - y * y - z * z) / n, 2.0 * (x * y - w * z) / n, 2.0 * (x * z + w * y) / n,
        2.0 * (x * y + w * z) / n, (w * w - x * x + y * y - z * z) / n, 2.0 * (y * z - w * x) / n,
        2.0 * (x * z - w * y) / n, 2.0 * (y * z + w * x) / n, (w * w - x * x - y * y + z * z) / n,
    )  # fmt: skip


@kernel
def heading(q: np.ndarray) -> float:
    """Heading of quaternion ``q`` [4]: the yaw of its rotated x axis, atan2(R10, R00), rad."""
    r = quat_matrix(q)
    return math.atan2(r[3], r[0])


@kernel
def tilt(q: np.ndarray) -> tuple[float, float]:
    """(roll ex, pitch ey) of quaternion ``q`` [4]: extrinsic x-y-z Euler angles, rad."""
    r = quat_matrix(q)
    return math.atan2(r[7], r[8]), -math.asin(min(max(r[6], -1.0), 1.0))


@kernel
def put_rotated(out: np.ndarray, k: int, cos_h: float, sin_h: float, vx: float, vy: float, vz: float) -> None:
    """out[k : k+3] = (vx, vy, vz) rotated by -h about z: (cos h vx + sin h vy, -sin h vx + cos h vy, vz)."""
    out[k] = cos_h * vx + sin_h * vy
    out[k + 1] = -sin_h * vx + cos_h * vy
    out[k + 2] = vz


@kernel
def matrix_rows(quat: np.ndarray, out: np.ndarray) -> None:
    """out [N, 9] = the matrices of quaternions [N, 4]."""
    for b in range(quat.shape[0]):
        r = quat_matrix(quat[b])
        for k in range(9):
            out[b, k] = r[k]


@kernel
def heading_rows(quat: np.ndarray, out: np.ndarray) -> None:
    """out [N] = the headings of quaternions [N, 4]."""
    for b in range(quat.shape[0]):
        out[b] = heading(quat[b])


@kernel
def tilt_rows(quat: np.ndarray, out: np.ndarray) -> None:
    """out [N, 2] = (ex, ey) of quaternions [N, 4]."""
    for b in range(quat.shape[0]):
        out[b, 0], out[b, 1] = tilt(quat[b])


@kernel
def rotate_rows(angles: np.ndarray, vec: np.ndarray, out: np.ndarray) -> None:
    """out [N, 3] = vectors [N, 3] rotated by -angles [N] about z."""
    for b in range(vec.shape[0]):
        put_rotated(out[b], 0, math.cos(angles[b]), math.sin(angles[b]), vec[b, 0], vec[b, 1], vec[b, 2])


# --- muscle force model of muscle i (kinesis_tasks.control); p = MuscleParams.table -------------------

# Rows of MuscleParams.table, one per-muscle constant each.
(LENGTH_MAX, PEAK_FORCE, FORCE_SCALE, PASSIVE_SCALE, LENGTH_OFFSET, INV_OPTIMAL_LENGTH, INV_VELOCITY_SCALE,
 INV_WIDTH_SHORT, INV_WIDTH_LONG, FVMAX, INV_FV_SPAN) = range(11)  # fmt: skip
MUSCLE_TABLE_ROWS = 11
KP_PER_PEAK_FORCE = 5.0
KD_PER_KP = 0.1


@kernel
def force_length(stretch: float, inv_width_short: float, inv_width_long: float) -> float:
    """Active force-length curve: 1 at the optimum, 0 outside [lmin, lmax].

    With s = |L - 1| / width (the width of the side of the optimum L lies on), MuJoCo's four
    quadratic pieces become 1 - s^2/2 for s <= 1 and (2 - s)^2/2 for 1 < s <= 2.
    """
    s = min(-stretch * inv_width_short if stretch < 0.0 else stretch * inv_width_long, 2.0)
    return 1.0 - 0.5 * s * s if s <= 1.0 else 0.5 * (2.0 - s) ** 2


@kernel
def force_velocity(velocity: float, fvmax: float, inv_fv_span: float) -> float:
    """Force-velocity curve: 0 at -vmax (shortening), 1 isometric, fvmax when lengthening fast."""
    span = fvmax - 1.0
    v = min(max(velocity, -1.0), span)
    return (v + 1.0) ** 2 if v <= 0.0 else fvmax - (span - v) ** 2 * inv_fv_span


@kernel
def muscle_gain(p: np.ndarray, i: int, length: float, velocity: float) -> float:
    """Active force per unit control, -F * FL(L) * FV(V) (N, <= 0)."""
    stretch = length * p[INV_OPTIMAL_LENGTH, i] + p[LENGTH_OFFSET, i] - 1.0  # normalized length - 1
    return (
        -p[FORCE_SCALE, i]
        * force_length(stretch, p[INV_WIDTH_SHORT, i], p[INV_WIDTH_LONG, i])
        * force_velocity(velocity * p[INV_VELOCITY_SCALE, i], p[FVMAX, i], p[INV_FV_SPAN, i])
    )


@kernel
def muscle_bias(p: np.ndarray, i: int, length: float) -> float:
    """Passive force (N, <= 0): 0 below the optimum, quadratic, then linear."""
    s = max(length * p[INV_OPTIMAL_LENGTH, i] + p[LENGTH_OFFSET, i] - 1.0, 0.0) * p[INV_WIDTH_LONG, i]
    return -p[PASSIVE_SCALE, i] * (0.5 * s * s if s <= 1.0 else s - 0.5)


@kernel
def target_length(p: np.ndarray, i: int, action: float) -> float:
    """L* = (a + 1)/2 * lengthrange_max (m), a clipped to [-1, 1]."""
    return (min(max(action, -1.0), 1.0) + 1.0) * 0.5 * p[LENGTH_MAX, i]


@kernel
def desired_force(p: np.ndarray, i: int, action: float, length: float, velocity: float) -> float:
    """clip(kp (L* - L) - kd V, -F_peak, 0), N."""
    kp = KP_PER_PEAK_FORCE * p[PEAK_FORCE, i]
    kd = KD_PER_KP * kp
    force = kp * (target_length(p, i, action) - length) - kd * velocity
    return min(max(force, -p[PEAK_FORCE, i]), 0.0)


@kernel
def target_length_control(p: np.ndarray, i: int, action: float, length: float, velocity: float) -> float:
    """Control in [0, 1] making muscle i pull with its desired force: clip((F_d - bias) / min(-1, gain), 0, 1)."""
    force = desired_force(p, i, action, length, velocity)
    u = (force - muscle_bias(p, i, length)) / min(-1.0, muscle_gain(p, i, length, velocity))
    return min(max(u, 0.0), 1.0)


@kernel
def target_length_control_into(
    p: np.ndarray, action: np.ndarray, length: np.ndarray, velocity: np.ndarray, out: np.ndarray, ctrl: np.ndarray
) -> None:
    """out [nu] and ctrl [nu] = the target-length controls of one muscle state (``MuscleSim``'s sub-step call:
    ``out`` is its record of the sub-step, ``ctrl`` MuJoCo's ``data.ctrl``)."""
    for i in range(out.shape[0]):
        u = target_length_control(p, i, action[i], length[i], velocity[i])
        out[i] = u
        ctrl[i] = u


# Quantities of force_model_rows, in its output order.
TARGET_LENGTH, DESIRED_FORCE, GAIN, BIAS, CONTROL = range(5)


@kernel
def force_model_rows(
    p: np.ndarray, action: np.ndarray, length: np.ndarray, velocity: np.ndarray, out: np.ndarray
) -> None:
    """out [5, B, nu] = every quantity of the law (TARGET_LENGTH ... CONTROL) for rows [B, nu] of the inputs."""
    for b in range(length.shape[0]):
        for i in range(length.shape[1]):
            a, lm, v = action[b, i], length[b, i], velocity[b, i]
            out[TARGET_LENGTH, b, i] = target_length(p, i, a)
            out[DESIRED_FORCE, b, i] = desired_force(p, i, a, lm, v)
            out[GAIN, b, i] = muscle_gain(p, i, lm, v)
            out[BIAS, b, i] = muscle_bias(p, i, lm)
            out[CONTROL, b, i] = target_length_control(p, i, a, lm, v)


# --- observations (kinesis_tasks.observations) ---------------------------------------------------------


@kernel
def gather_state_into(xpos, xquat, qpos, sensordata, body_ids, root_qposadr, linvel_adr, angvel_adr, touch_adr,
                      out_xpos, out_xquat, out_root_quat, out_linvel, out_angvel, out_touch):  # fmt: skip
    """The BodyState fields of one MjData state (observed bodies, root quaternion, sensors) into the outputs."""
    for j in range(body_ids.shape[0]):
        body = body_ids[j]
        for c in range(3):
            out_xpos[j, c] = xpos[body, c]
            out_linvel[j, c] = sensordata[linvel_adr[j, c]]
            out_angvel[j, c] = sensordata[angvel_adr[j, c]]
        for c in range(4):
            out_xquat[j, c] = xquat[body, c]
    for c in range(4):
        out_root_quat[c] = qpos[root_qposadr + 3 + c]
    for t in range(touch_adr.shape[0]):
        out_touch[t] = sensordata[touch_adr[t]]


@kernel
def proprioception_into(xpos, xquat, root_quat, linvel, angvel, touch, root, others, out):  # fmt: skip
    """Proprioceptive blocks of one BodyState, concatenated in PROPRIOCEPTION_BLOCKS order into ``out``."""
    h = heading(xquat[root])
    cos_h, sin_h = math.cos(h), math.sin(h)
    ex, ey = tilt(root_quat)
    out[0] = xpos[root, 2]
    out[1], out[2], out[3], out[4] = math.cos(ex), math.sin(ex), math.cos(ey), math.sin(ey)
    k = 5
    for j in others:  # local_body_pos: relative to the root
        dx, dy, dz = xpos[j, 0] - xpos[root, 0], xpos[j, 1] - xpos[root, 1], xpos[j, 2] - xpos[root, 2]
        put_rotated(out, k, cos_h, sin_h, dx, dy, dz)
        k += 3
    for j in range(xquat.shape[0]):  # local_body_rot: the body's x and z axes
        r = quat_matrix(xquat[j])
        put_rotated(out, k, cos_h, sin_h, r[0], r[3], r[6])
        put_rotated(out, k + 3, cos_h, sin_h, r[2], r[5], r[8])
        k += 6
    for velocity in (linvel, angvel):  # local_body_vel, local_body_ang_vel
        for j in range(velocity.shape[0]):
            put_rotated(out, k, cos_h, sin_h, velocity[j, 0], velocity[j, 1], velocity[j, 2])
            k += 3
    for t in range(touch.shape[0]):  # feet_contacts
        out[k + t] = touch[t]


@kernel
def imitation_into(xpos, xquat, linvel, root, tracked, ref_pos, ref_vel, out):  # fmt: skip
    """Imitation blocks of one BodyState into ``out`` [9 K]: IMITATION_BLOCKS order, each body-major xyz."""
    h = heading(xquat[root])
    cos_h, sin_h = math.cos(h), math.sin(h)
    n = tracked.shape[0]
    for k in range(n):
        j = tracked[k]
        put_rotated(out, 3 * k, cos_h, sin_h,
                    ref_pos[k, 0] - xpos[j, 0], ref_pos[k, 1] - xpos[j, 1], ref_pos[k, 2] - xpos[j, 2])
        put_rotated(out, 3 * (n + k), cos_h, sin_h,
                    ref_vel[k, 0] - linvel[j, 0], ref_vel[k, 1] - linvel[j, 1], ref_vel[k, 2] - linvel[j, 2])
        put_rotated(out, 3 * (2 * n + k), cos_h, sin_h,
                    ref_pos[k, 0] - xpos[root, 0], ref_pos[k, 1] - xpos[root, 1], ref_pos[k, 2] - xpos[root, 2])  # fmt: skip


# --- rewards (kinesis_tasks.rewards) -------------------------------------------------------------------


@kernel
def tracking_term(values: np.ndarray, rows: np.ndarray, ref: np.ndarray, sharpness: float) -> float:
    """exp(-sharpness * mean over k and xyz of (ref[k] - values[rows[k]])^2)."""
    total = 0.0
    for k in range(rows.shape[0]):
        for c in range(3):
            error = ref[k, c] - values[rows[k], c]
            total += error * error
    return math.exp(-sharpness * (total / (3 * rows.shape[0])))


@kernel
def tracking_distance(values: np.ndarray, rows: np.ndarray, ref: np.ndarray, use_max: bool) -> float:
    """Mean (or max) over k of |ref[k] - values[rows[k]]|, m."""
    reduced = 0.0
    for k in range(rows.shape[0]):
        j = rows[k]
        dx, dy, dz = ref[k, 0] - values[j, 0], ref[k, 1] - values[j, 1], ref[k, 2] - values[j, 2]
        distance = math.sqrt(dx * dx + dy * dy + dz * dz)
        reduced = max(reduced, distance) if use_max else reduced + distance
    return reduced if use_max else reduced / rows.shape[0]


@kernel
def upright(root_quat: np.ndarray) -> float:
    """exp(-3 (ex^2 + ey^2)) of the root roll and pitch, each wrapped to [-pi, pi]."""
    ex, ey = tilt(root_quat)
    ax, ay = math.atan2(math.sin(ex), math.cos(ex)), math.atan2(math.sin(ey), math.cos(ey))
    return math.exp(-3.0 * (ax * ax + ay * ay))


@kernel
def energy(ctrl: np.ndarray, k_energy: float) -> float:
    """exp(-k_energy (sum|u| + ||u||_2)) of one sub-step's controls [nu]."""
    absolute, squared = 0.0, 0.0
    for u in ctrl:
        absolute += abs(u)
        squared += u * u
    return math.exp(-k_energy * (absolute + math.sqrt(squared)))


@kernel
def reward_terms_into(xpos, linvel, root_quat, tracked, ref_pos, ref_vel, substep_ctrl,
                      k_pos, k_vel, k_energy, out):  # fmt: skip
    """out [5] = body_pos, vel, upright, energy (mean over sub-steps) of one state, then its mean tracking distance."""
    out[0] = tracking_term(xpos, tracked, ref_pos, k_pos)
    out[1] = tracking_term(linvel, tracked, ref_vel, k_vel)
    out[2] = upright(root_quat)
    total = 0.0
    for s in range(substep_ctrl.shape[0]):
        total += energy(substep_ctrl[s], k_energy)
    out[3] = total / substep_ctrl.shape[0]
    out[4] = tracking_distance(xpos, tracked, ref_pos, False)


# --- reference motions (kinesis_tasks.imitation) -------------------------------------------------------


@kernel
def interpolate_into(keypoints, velocities, position, pos, vel):  # fmt: skip
    """pos, vel [K, 3] = keypoints, velocities [T, K, 3] interpolated linearly at fractional frame ``position``
    (clamped to the motion)."""
    position = min(max(position, 0.0), keypoints.shape[0] - 1.0)
    low = min(int(position), keypoints.shape[0] - 2)
    alpha = position - low
    for k in range(keypoints.shape[1]):
        for c in range(3):
            pos[k, c] = keypoints[low, k, c] + alpha * (keypoints[low + 1, k, c] - keypoints[low, k, c])
            vel[k, c] = velocities[low, k, c] + alpha * (velocities[low + 1, k, c] - velocities[low, k, c])


# --- one ImitationEnv step after the physics (kinesis_tasks.imitation) ----------------------------------


@kernel
def imitation_step_into(xpos, xquat, qpos, sensordata,  # one MjData state
                        body_ids, root_qposadr, linvel_adr, angvel_adr, touch_adr, root, others, tracked,  # BodyLayout
                        keypoints, velocities, frame, next_frame,  # reference track [T, K, 3] and fractional frames
                        substep_ctrl, k_pos, k_vel, k_energy,  # last step's controls [S, nu], reward sharpness
                        state_xpos, state_xquat, state_root_quat, state_linvel, state_angvel, state_touch,  # out
                        ref_pos, ref_vel,  # [K, 3] scratch
                        obs, values):  # out: observation [D], reward terms and tracking distance [5]
    """Everything ``ImitationEnv.step`` computes from the new state, in one call: the body state, the
    reward terms and tracking distance against the reference at ``frame`` (reward_terms_into) and the
    observation [proprioception | imitation] against the reference at ``next_frame``."""  # fmt: skip
    gather_state_into(xpos, xquat, qpos, sensordata, body_ids, root_qposadr, linvel_adr, angvel_adr, touch_adr,
                      state_xpos, state_xquat, state_root_quat, state_linvel, state_angvel, state_touch)  # fmt: skip
    interpolate_into(keypoints, velocities, frame, ref_pos, ref_vel)
    reward_terms_into(state_xpos, state_linvel, state_root_quat, tracked, ref_pos, ref_vel, substep_ctrl,
                      k_pos, k_vel, k_energy, values)  # fmt: skip
    interpolate_into(keypoints, velocities, next_frame, ref_pos, ref_vel)
    split = obs.shape[0] - 9 * tracked.shape[0]
    proprioception_into(state_xpos, state_xquat, state_root_quat, state_linvel, state_angvel, state_touch,
                        root, others, obs[:split])  # fmt: skip
    imitation_into(state_xpos, state_xquat, state_linvel, root, tracked, ref_pos, ref_vel, obs[split:])
