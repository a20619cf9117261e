"""Files of the EMG comparison (``kinesis emg compare``): EMG CSV, heel-strike events, the channel mapping,
simulated episodes from a ROS 2 MCAP recording or an offline policy rollout, the JSON report and the plot.

The MCAP reader decodes the recorded CDR of ``kinesis_msgs/SimState`` (and ``MuscleState`` names,
``TrackingStatus`` motion names) itself, so it needs neither ROS nor the built messages.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kinesis_tasks.config import CONFIG_DIR
from kinesis_tasks.emg import GaitComparison, SimEpisode, heel_strikes, split_side

DEFAULT_MAPPING = CONFIG_DIR / "emg_mapping.yaml"
TIME_COLUMNS = ("time", "t", "time_s", "times", "seconds", "header")
#: Gait-event columns of an EMG CSV: heel-strike pulses or a contact / foot-switch signal, optionally per side.
EVENT_COLUMN = re.compile(r"^(heel[\s_]?strikes?|hs|contact|foot[\s_]?(switch|contact))([\s_.\-]?(r|l|right|left))?$",
                          re.IGNORECASE)
SIM_STATE_TOPIC, MUSCLE_STATE_TOPIC, TRACKING_TOPIC = "/kinesis/sim_state", "/kinesis/muscle_state", "/kinesis/tracking"


# --- EMG CSV, events, mapping ---------------------------------------------------------------------


@dataclass(frozen=True)
class EmgRecording:
    """EMG columns [T, K] on ``time`` [T] (s), and the gait-event columns by name."""

    time: np.ndarray
    channels: tuple[str, ...]
    data: np.ndarray
    events: dict[str, np.ndarray]

    def heel_strikes(self, side: str) -> tuple[np.ndarray | None, str | None]:
        """(heel-strike times, column) from the event column of ``side`` (else one without side), or (None, None)."""
        by_side = {}
        for name in self.events:
            side_of = split_side(name)[1]
            by_side.setdefault(side_of, name)
        column = by_side.get(side) or by_side.get(None)
        if column is None:
            return None, None
        return heel_strikes(self.time, self.events[column]), column


def read_emg_csv(path: str | Path, time_column: str | None = None) -> EmgRecording:
    """EMG CSV: a header row, a time column (s) and one column per channel; ',', ';' or tab separated.

    Lines starting with '#' are comments. Raises ValueError for a missing time column, no EMG column, or a
    non-numeric / empty cell (named by column and row).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EMG recording {path}: file not found")
    with path.open() as stream:
        header = next((line for line in stream if line.strip() and not line.lstrip().startswith("#")), "")
    delimiter = ";" if header.count(";") > header.count(",") else "\t" if header.count("\t") > header.count(",") else ","
    names = [name.strip().strip('"').strip("'") for name in header.rstrip("\n").split(delimiter)]
    lowered = [name.lower() for name in names]
    if time_column is not None:
        if time_column not in names:
            raise ValueError(f"{path}: no time column {time_column!r} (columns: {', '.join(names)})")
        t_index = names.index(time_column)
    else:
        candidates = [lowered.index(c) for c in TIME_COLUMNS if c in lowered]
        candidates += [i for i, n in enumerate(lowered) if re.match(r"^time\s*[\[(]?s[\])]?$", n)]
        if not candidates:
            raise ValueError(f"{path}: no time column (looked for {', '.join(TIME_COLUMNS)}, 'time (s)'; columns: "
                             f"{', '.join(names)}); name it with --time-column")
        t_index = candidates[0]
    values = np.genfromtxt(path, delimiter=delimiter, skip_header=1, comments="#", dtype=float, ndmin=2)
    if values.size == 0 or values.shape[1] != len(names):
        raise ValueError(f"{path}: {values.shape[1] if values.size else 0} values per row for {len(names)} header names")
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise ValueError(f"{path}: column {names[col]!r} has a non-numeric or empty value in data row {row + 1}")
    events = {names[i]: values[:, i] for i in range(len(names)) if i != t_index and EVENT_COLUMN.match(names[i])}
    emg = [i for i in range(len(names)) if i != t_index and names[i] not in events]
    if not emg:
        raise ValueError(f"{path}: no EMG column besides the time column {names[t_index]!r}")
    return EmgRecording(values[:, t_index], tuple(names[i] for i in emg), values[:, emg], events)


def read_events(path: str | Path) -> np.ndarray:
    """Heel-strike times (s) from a text file: one per line (first field of a CSV row), '#' comments, an
    optional header line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"events file {path}: file not found")
    times = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        field = re.split(r"[,;\s]+", line.split("#")[0].strip())[0]
        if not field:
            continue
        try:
            times.append(float(field))
        except ValueError:
            if times:
                raise ValueError(f"{path}: line {number}: {field!r} is not a time in seconds") from None
    if len(times) < 2:
        raise ValueError(f"{path}: need at least two heel-strike times, found {len(times)}")
    return np.sort(np.asarray(times))


def load_mapping(path: str | Path | None = None) -> dict[str, Any]:
    """The channel -> muscle mapping YAML (default ``config/emg_mapping.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_MAPPING
    if not path.is_file():
        raise FileNotFoundError(f"mapping {path}: file not found")
    mapping = yaml.safe_load(path.read_text())
    if not isinstance(mapping, dict):
        raise ValueError(f"mapping {path}: expected a YAML mapping with 'channels' and/or 'patterns'")
    return mapping


# --- simulated episodes ---------------------------------------------------------------------------


class _Cdr:
    """Reader of a CDR (XCDR1) payload: 4-byte encapsulation header, then aligned little/big-endian fields."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 4 or data[0] != 0 or data[1] not in (0, 1):
            raise ValueError("not a plain CDR message (encapsulation header)")
        self.buf, self.pos, self.endian = memoryview(data)[4:], 0, "<" if data[1] == 1 else ">"

    def _scalar(self, fmt: str, size: int) -> Any:
        self.pos += -self.pos % size
        (value,) = struct.unpack_from(self.endian + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def uint32(self) -> int:
        return self._scalar("I", 4)

    def uint64(self) -> int:
        return self._scalar("Q", 8)

    def float64(self) -> float:
        return self._scalar("d", 8)

    def string(self) -> str:
        size = self.uint32()
        text = bytes(self.buf[self.pos:self.pos + max(size - 1, 0)]).decode("utf-8")
        self.pos += size
        return text

    def strings(self) -> list[str]:
        return [self.string() for _ in range(self.uint32())]

    def float64s(self) -> np.ndarray:
        count = self.uint32()
        if count == 0:
            return np.empty(0)
        self.pos += -self.pos % 8
        values = np.frombuffer(self.buf, dtype=self.endian + "f8", count=count, offset=self.pos).astype(float)
        self.pos += 8 * count
        return values

    def header(self) -> None:
        self.uint32(), self.uint32(), self.string()  # stamp.sec, stamp.nanosec, frame_id


def decode_sim_state(data: bytes) -> dict[str, Any]:
    """The fields of a CDR ``kinesis_msgs/msg/SimState`` the comparison uses."""
    cdr = _Cdr(data)
    cdr.header()
    sim_time, embodiment = cdr.float64(), cdr.string()
    cdr.float64s(), cdr.float64s()  # qpos, qvel
    activation, contacts, step = cdr.float64s(), cdr.float64s(), cdr.uint64()
    return {"sim_time": sim_time, "embodiment": embodiment, "activation": activation, "foot_contacts": contacts,
            "step": step}


def _decode_names(data: bytes) -> list[str]:
    """``names`` of a CDR ``kinesis_msgs/msg/MuscleState``."""
    cdr = _Cdr(data)
    cdr.header()
    return cdr.strings()


def _decode_motion(data: bytes) -> str:
    """``motion`` of a CDR ``kinesis_msgs/msg/TrackingStatus``."""
    cdr = _Cdr(data)
    cdr.header()
    return cdr.string()


@dataclass(frozen=True)
class SimRun:
    """Episodes of a recording, the actuator names (None: take them from the embodiment) and the embodiment."""

    episodes: list[SimEpisode]
    muscle_names: tuple[str, ...] | None
    embodiment: str


def read_run(path: str | Path) -> SimRun:
    """Episodes of /kinesis/sim_state in an MCAP recording of the ROS stack (a new one at each reset).

    Muscle names come from /kinesis/muscle_state when recorded; each episode's motion is the name most
    /kinesis/tracking messages logged during it carry.
    """
    from mcap.reader import make_reader

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run {path}: file not found")
    states: list[list[tuple[int, dict]]] = []
    tracking: list[tuple[int, str]] = []
    names: list[str] | None = None
    with path.open("rb") as stream:
        try:
            messages = list(make_reader(stream).iter_messages(topics=[SIM_STATE_TOPIC, MUSCLE_STATE_TOPIC, TRACKING_TOPIC]))
        except Exception as error:  # the mcap package raises its own exception types
            raise ValueError(f"run {path}: not a readable MCAP file ({error})") from None
    for _, channel, message in messages:
        if channel.topic == SIM_STATE_TOPIC:
            state = decode_sim_state(message.data)
            last = states[-1][-1][1] if states else None
            if last is not None and (state["step"], state["sim_time"]) == (last["step"], last["sim_time"]):
                continue  # the same state again (latched)
            if last is None or state["step"] <= last["step"] or state["sim_time"] <= last["sim_time"]:
                states.append([])
            states[-1].append((message.log_time, state))
        elif channel.topic == MUSCLE_STATE_TOPIC and names is None:
            names = _decode_names(message.data)
        elif channel.topic == TRACKING_TOPIC:
            tracking.append((message.log_time, _decode_motion(message.data)))
    if not states:
        raise ValueError(f"run {path}: no {SIM_STATE_TOPIC} messages (record with `kinesis launch ... record:=FILE`)")
    episodes = []
    for episode in states:
        first, last = episode[0][0], episode[-1][0]
        motions = Counter(m for t, m in tracking if first <= t <= last and m)
        rows = [s for _, s in episode]
        episodes.append(SimEpisode(np.array([s["sim_time"] for s in rows]), np.stack([s["activation"] for s in rows]),
                                   np.stack([s["foot_contacts"] for s in rows]),
                                   motions.most_common(1)[0][0] if motions else None))
    return SimRun(episodes, tuple(names) if names else None, states[0][0][1]["embodiment"])


def record_episode(policy_factory: Callable[[int, int], Callable[[np.ndarray], np.ndarray]], motion: str, *,
                   embodiment: str = "legs", library: str = "default") -> tuple[SimEpisode, tuple[str, ...], bool]:
    """Run a policy (``policy_factory(obs_size, action_size)``, as ``kinesis_tasks.evaluation``) on ``motion``
    once from frame 0 (ImitationEnv in evaluation mode), recording act and foot touch every control step.

    Returns (episode, actuator names, terminated early).
    """
    from kinesis_tasks.embodiment import FOOT_TOUCH_SENSORS
    from kinesis_tasks.evaluation import evaluation_config
    from kinesis_tasks.imitation import ImitationEnv
    from kinesis_tasks.motions import load_motion

    reference = load_motion(motion, library)
    env = ImitationEnv(evaluation_config(embodiment=embodiment), [reference])
    model, data = env.model, env.sim.data
    touch = [model.sensor_adr[model.sensor(name).id] for name, _ in FOOT_TOUCH_SENSORS]
    policy = policy_factory(env.observation_space.shape[0], env.action_space.shape[0])
    obs, _ = env.reset(seed=0, options={"motion": reference.name, "start": 0})
    time, act, contacts = [data.time], [data.act.copy()], [data.sensordata[touch].copy()]
    terminated = truncated = False
    while not (terminated or truncated):
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        time.append(data.time), act.append(data.act.copy()), contacts.append(data.sensordata[touch].copy())
    names = tuple(model.actuator(i).name for i in range(model.nu))
    return SimEpisode(np.asarray(time), np.stack(act), np.stack(contacts), reference.name), names, bool(terminated)


# --- outputs --------------------------------------------------------------------------------------


def report_dict(comparison: GaitComparison, **meta: Any) -> dict[str, Any]:
    """JSON-ready report: ``meta``, the cycles and per channel r, peaks and the mean/std curves."""
    def curve(values: np.ndarray) -> list[float]:
        return [round(float(v), 6) for v in values]

    channels = []
    for result in comparison.results:
        c = result.comparison
        channels.append({
            "channel": result.channel.channel, "side": result.channel.side, "muscles": list(result.channel.muscles),
            "r": None if np.isnan(c.r) else round(c.r, 4), "emg_peak_percent": c.emg_peak,
            "activation_peak_percent": c.activation_peak, "peak_shift_percent": c.peak_shift,
            "emg_mean": curve(result.emg_mean), "emg_std": curve(result.emg_std),
            "activation_mean": curve(result.activation_mean), "activation_std": curve(result.activation_std),
        })
    return {**meta, "emg_events": comparison.emg_events,
            "sim_cycles": len(comparison.sim_cycle_durations), "emg_cycles": len(comparison.emg_cycle_durations),
            "sim_cycle_s": round(float(np.median(comparison.sim_cycle_durations)), 4),
            "emg_cycle_s": round(float(np.median(comparison.emg_cycle_durations)), 4),
            "channels": channels}


def plot_comparison(comparison: GaitComparison, path: str | Path, title: str = "") -> Path:
    """PNG of EMG envelope vs activation (each divided by its mean curve's peak, +-1 sd) per channel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = comparison.results
    cols = min(4, len(results))
    rows = -(-len(results) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.5 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    for ax, result in zip(axes, results):
        x = np.linspace(0.0, 100.0, len(result.emg_mean))
        for mean, std, color, label in ((result.emg_mean, result.emg_std, "tab:gray", "EMG envelope"),
                                        (result.activation_mean, result.activation_std, "tab:red", "activation")):
            scale = float(np.max(np.abs(mean))) or 1.0
            ax.plot(x, mean / scale, color=color, label=label)
            ax.fill_between(x, (mean - std) / scale, (mean + std) / scale, color=color, alpha=0.2, linewidth=0)
        r = result.comparison.r
        ax.set_title(f"{result.channel.channel}  r = {r:.2f}" if np.isfinite(r) else result.channel.channel, fontsize=9)
        ax.set_xlim(0, 100)
    for ax in axes[len(results):]:
        ax.set_visible(False)
    for ax in axes[max(len(results) - cols, 0):len(results)]:
        ax.set_xlabel("% gait cycle")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title or "EMG vs simulated activation (normalised to peak)", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
