"""EMG comparison (kinesis_tasks.emg, emg_io, `kinesis emg compare`) on generated recordings of known correlation."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from kinesis_tasks.emg import (
    ChannelMap,
    SimEpisode,
    channel_key,
    compare_gait,
    emg_envelope,
    heel_strikes,
    pearson_r,
    resolve_mapping,
    split_side,
    wrap_percent,
)
from kinesis_tasks.emg_io import decode_sim_state, load_mapping, read_emg_csv, read_events, read_run

SIM_CYCLE, EMG_CYCLE, CYCLES = 1.0, 1.2, 10
SIM_DT, EMG_FS = 1.0 / 30.0, 1000.0
NAMES = ("tibant_r", "soleus_r", "gasmed_r", "gaslat_r", "glmax1_r", "glmax2_r", "glmax3_r", "tibant_l", "soleus_l")


def shape(phase: np.ndarray, peak: float = 0.3) -> np.ndarray:
    """Envelope over the cycle: a baseline and a periodic bump at ``peak``."""
    d = (phase - peak + 0.5) % 1.0 - 0.5
    return 0.15 + np.exp(-0.5 * (d / 0.08) ** 2)


def emg_signal(shapes: list, cycle: float = EMG_CYCLE, cycles: int = CYCLES, seed: int = 0):
    """(time, EMG [T, K]): white noise modulated by each shape of the phase."""
    time = np.arange(0.0, cycle * cycles, 1.0 / EMG_FS)
    noise = np.random.default_rng(seed).standard_normal((time.size, len(shapes)))
    return time, np.stack([f((time / cycle) % 1.0) for f in shapes], axis=1) * noise


def contact(phase: np.ndarray) -> np.ndarray:
    """Foot touch force: 600 N in stance (first 60 % of the cycle)."""
    return np.where(phase < 0.6, 600.0, 0.0)


def sim_episode(activations: dict, names=NAMES, cycle: float = SIM_CYCLE, cycles: int = CYCLES, start: float = 0.0):
    """SimEpisode at the control rate: activation of named muscles given as shapes, 0.02 elsewhere."""
    time = np.arange(0.0, cycle * cycles + 1e-9, SIM_DT)
    phase = (time / cycle) % 1.0
    act = np.full((time.size, len(names)), 0.02)
    for name, f in activations.items():
        act[:, names.index(name)] = f(phase)
    contacts = np.stack([contact(phase), np.zeros_like(time), contact((phase + 0.5) % 1.0), np.zeros_like(time)], 1)
    return SimEpisode(time + start, act, contacts, "walk")


def compare_one(act_shape, *, emg_shape=shape, strikes=True):
    time, emg = emg_signal([emg_shape])
    events = np.arange(CYCLES + 1) * EMG_CYCLE if strikes else None
    channel = ChannelMap("TA_r", "r", ("tibant_r",))
    result = compare_gait(time, emg, [channel], [sim_episode({"tibant_r": act_shape})], NAMES, emg_strikes=events)
    return result.results[0]


# --- signal processing and comparison -------------------------------------------------------------


def test_same_envelope_correlates():
    result = compare_one(shape)
    assert result.comparison.r > 0.95
    assert abs(result.comparison.emg_peak - 30.0) <= 2.0 and abs(result.comparison.peak_shift) <= 2.0


def test_inverted_envelope_anticorrelates():
    result = compare_one(lambda p: 1.5 - shape(p))
    assert result.comparison.r < -0.9


def test_shifted_envelope_gives_the_shift_and_analytic_r():
    result = compare_one(lambda p: shape(p, peak=0.4))
    grid = np.linspace(0.0, 1.0, 101)
    assert result.comparison.peak_shift == pytest.approx(10.0, abs=2.0)
    assert result.comparison.r == pytest.approx(pearson_r(shape(grid), shape(grid, peak=0.4)), abs=0.05)


def test_cycles_by_duration_without_emg_events():
    time, emg = emg_signal([shape], cycle=SIM_CYCLE)
    channel = ChannelMap("TA_r", "r", ("tibant_r",))
    result = compare_gait(time, emg, [channel], [sim_episode({"tibant_r": shape})], NAMES)
    assert "none" in result.emg_events and len(result.emg_cycle_durations) == CYCLES - 1  # the last ends after the data
    assert result.results[0].comparison.r > 0.95


def test_envelope_of_modulated_noise_follows_the_modulation():
    time, emg = emg_signal([shape])
    env = emg_envelope(emg[:, 0], EMG_FS)
    inner = slice(int(EMG_FS), -int(EMG_FS))
    assert pearson_r(env[inner], shape((time[inner] / EMG_CYCLE) % 1.0)) > 0.9


def test_band_pass_needs_a_sample_rate_above_the_band():
    with pytest.raises(ValueError, match="cannot be band-passed"):
        emg_envelope(np.random.default_rng(0).standard_normal(500), 30.0)


def test_wrap_percent():
    assert wrap_percent(90.0) == -10.0 and wrap_percent(-60.0) == 40.0 and wrap_percent(10.0) == 10.0


def test_heel_strikes_of_a_chattering_contact():
    time = np.arange(0.0, 5.0, 0.01)
    force = contact((time / SIM_CYCLE) % 1.0)
    force[(np.round(time * 100) % 100 == 3)] = 0.0  # a dropout just after each strike
    force[(np.round(time * 100) % 100 == 70)] = 20.0  # a small bump in swing, below the threshold
    strikes = heel_strikes(time, force)
    np.testing.assert_allclose(strikes, np.arange(1, 5) * SIM_CYCLE, atol=0.01)  # at 0 the foot is already down


def test_heel_strikes_from_event_pulses():
    time = np.arange(0.0, 3.0, 0.001)
    pulses = np.zeros_like(time)
    pulses[[500, 1700, 2900]] = 1.0
    np.testing.assert_allclose(heel_strikes(time, pulses), [0.5, 1.7, 2.9], atol=0.001)


# --- mapping --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("TA_r", ("ta", "r")), ("TA_L", ("ta", "l")), ("R_TA", ("ta", "r")), ("l-soleus", ("soleus", "l")),
    ("Tibialis Anterior right", ("tibialisanterior", "r")), ("VastusLateralisLeft", ("vastuslateralis", "l")),
    ("rectus_femoris", ("rectusfemoris", None)), ("VL", ("vl", None)),
])
def test_split_side(name, expected):
    assert split_side(name) == expected


def test_default_mapping_fits_the_legs_model(legs_names):
    names = legs_names
    patterns = load_mapping()["patterns"]
    assert len({channel_key(k) for k in patterns}) == len(patterns), "patterns that differ only by case/separators"
    for side in ("r", "l"):  # every entry names muscles of the model
        mapped, _ = resolve_mapping([f"{k}_{side}" for k in patterns], {"patterns": patterns}, names)
        assert len(mapped) == len(patterns) and all(m.side == side for m in mapped)
    columns = ["TA_r", "soleus_l", "gastrocmed", "Gluteus_Maximus_R", "GMED_l", "BF_r", "semitendinosus", "RF_L",
               "VL_r", "VM_l", "gaslat_r", "rightexternaloblique"]
    mapped, unmapped = resolve_mapping(columns, load_mapping(), names, default_side="r")
    got = {m.channel: m.muscles for m in mapped}
    assert got["TA_r"] == ("tibant_r",) and got["soleus_l"] == ("soleus_l",) and got["gastrocmed"] == ("gasmed_r",)
    assert got["Gluteus_Maximus_R"] == ("glmax1_r", "glmax2_r", "glmax3_r")
    assert got["GMED_l"] == ("glmed1_l", "glmed2_l", "glmed3_l") and got["RF_L"] == ("recfem_l",)
    assert got["BF_r"] == ("bflh_r",) and got["semitendinosus"] == ("semiten_r",)
    assert got["VL_r"] == ("vaslat_r",) and got["VM_l"] == ("vasmed_l",) and got["gaslat_r"] == ("gaslat_r",)
    assert unmapped == ["rightexternaloblique"]


def test_explicit_channels_and_their_side():
    mapped, _ = resolve_mapping(["EMG1", "EMG2"], {"channels": {"EMG1": ["tibant_l"], "EMG2": "soleus"}}, NAMES, "r")
    assert [(m.channel, m.side, m.muscles) for m in mapped] == [("EMG1", "l", ("tibant_l",)), ("EMG2", "r", ("soleus_r",))]


def test_mapping_channel_missing_from_the_recording_is_named():
    with pytest.raises(ValueError, match="channel 'EMG9' is not a column"):
        resolve_mapping(["EMG1"], {"channels": {"EMG9": ["tibant_r"]}}, NAMES)


def test_unknown_muscle_is_named():
    with pytest.raises(ValueError, match="unknown muscle 'tibialis_r'.*close: tibant_r"):
        resolve_mapping(["EMG1"], {"channels": {"EMG1": ["tibialis_r"]}}, NAMES)
    with pytest.raises(ValueError, match="unknown muscle 'solues_r'"):
        resolve_mapping(["SOL_r"], {"patterns": {"sol": ["solues"]}}, NAMES)


def test_unknown_mapping_section():
    with pytest.raises(ValueError, match="unknown sections"):
        resolve_mapping(["EMG1"], {"channel": {"EMG1": "tibant_r"}}, NAMES)


# --- files ----------------------------------------------------------------------------------------


def write_csv(path, time, columns: dict, delimiter=","):
    header = delimiter.join(["time", *columns])
    np.savetxt(path, np.column_stack([time, *columns.values()]), delimiter=delimiter, header=header, comments="",
               fmt="%.6g")
    return path


def test_csv_time_events_and_channels(tmp_path):
    time = np.arange(0.0, 1.0, 0.001)
    hs = (np.arange(time.size) % 500 == 100).astype(float)
    path = write_csv(tmp_path / "emg.csv", time, {"TA_r": np.sin(time), "heel_strike_r": hs}, delimiter=";")
    recording = read_emg_csv(path)
    assert recording.channels == ("TA_r",) and set(recording.events) == {"heel_strike_r"}
    strikes, column = recording.heel_strikes("r")
    assert column == "heel_strike_r"
    np.testing.assert_allclose(strikes, [0.1, 0.6], atol=0.001)
    assert recording.heel_strikes("l") == (None, None)


def test_csv_without_time_column_is_an_error(tmp_path):
    path = tmp_path / "emg.csv"
    path.write_text("stamp,TA_r\n0,1\n0.001,2\n")
    with pytest.raises(ValueError, match="no time column.*--time-column"):
        read_emg_csv(path)
    assert read_emg_csv(path, time_column="stamp").channels == ("TA_r",)


def test_csv_non_numeric_cell_is_named(tmp_path):
    path = tmp_path / "emg.csv"
    path.write_text("time,TA_r,SOL_r\n0,1,2\n0.001,x,3\n")
    with pytest.raises(ValueError, match="column 'TA_r'.*row 2"):
        read_emg_csv(path)


def test_events_file(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("heel_strike_s\n# right foot\n0.5\n1.6, extra\n2.7\n")
    np.testing.assert_allclose(read_events(path), [0.5, 1.6, 2.7])


# --- MCAP recordings ------------------------------------------------------------------------------


class Cdr:
    """Little-endian CDR writer for the test recordings."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def pack(self, fmt: str, value) -> Cdr:
        size = struct.calcsize(fmt)
        self.buf += b"\0" * (-len(self.buf) % size) + struct.pack("<" + fmt, value)
        return self

    def string(self, text: str) -> Cdr:
        data = text.encode() + b"\0"
        self.pack("I", len(data)).buf += data
        return self

    def doubles(self, values) -> Cdr:
        values = np.asarray(values, dtype="<f8")
        self.pack("I", values.size)
        if values.size:
            self.buf += b"\0" * (-len(self.buf) % 8) + values.tobytes()
        return self

    def header(self, t: float) -> Cdr:
        return self.pack("i", int(t)).pack("I", int(round((t % 1) * 1e9))).string("world")

    def data(self) -> bytes:
        return b"\x00\x01\x00\x00" + bytes(self.buf)


def sim_state_cdr(t: float, act, contacts, step: int) -> bytes:
    cdr = Cdr().header(t).pack("d", t).string("legs").doubles(np.zeros(3)).doubles(np.zeros(2)).doubles(act)
    return cdr.doubles(contacts).pack("Q", step).doubles(np.zeros(4)).data()


def write_run(path, episodes, names=NAMES):
    from mcap.writer import Writer

    with open(path, "wb") as stream:
        writer = Writer(stream)
        writer.start()
        ids = {}
        for topic, schema in (("/kinesis/sim_state", "SimState"), ("/kinesis/muscle_state", "MuscleState"),
                              ("/kinesis/tracking", "TrackingStatus")):
            schema_id = writer.register_schema(f"kinesis_msgs/msg/{schema}", "ros2msg", b"")
            ids[topic] = writer.register_channel(topic, "cdr", schema_id)
        log = 1
        names_cdr = Cdr().header(0.0).pack("I", len(names))
        for name in names:
            names_cdr.string(name)
        writer.add_message(ids["/kinesis/muscle_state"], log, names_cdr.doubles([]).data(), log)
        for episode in episodes:
            for step, t in enumerate(episode.time):
                log += 1
                data = sim_state_cdr(t, episode.activation[step], episode.contacts[step], step)
                writer.add_message(ids["/kinesis/sim_state"], log, data, log)
                if step == 0:  # the same latched state twice
                    writer.add_message(ids["/kinesis/sim_state"], log, data, log)
                motion = Cdr().header(t).string(episode.motion).pack("I", step).data()
                writer.add_message(ids["/kinesis/tracking"], log, motion, log)
        writer.finish()
    return path


def test_cdr_matches_rclpy_serialization():
    serialization = pytest.importorskip("rclpy.serialization")
    msg = pytest.importorskip("kinesis_msgs.msg")
    for contacts in ([1.0, 2.0, 3.0, 4.0], []):
        state = msg.SimState(sim_time=1.25, embodiment="legs", qpos=[0.1, 0.2, 0.3], qvel=[1.0],
                             activation=[0.5, 0.25], foot_contacts=contacts, step=7, sensordata=[9.0])
        decoded = decode_sim_state(serialization.serialize_message(state))
        assert decoded["sim_time"] == 1.25 and decoded["embodiment"] == "legs" and decoded["step"] == 7
        assert decoded["activation"].tolist() == [0.5, 0.25] and decoded["foot_contacts"].tolist() == contacts


def test_read_run_splits_episodes(tmp_path):
    episodes = [sim_episode({"tibant_r": shape}, cycles=3), sim_episode({"tibant_r": shape}, cycles=2)]
    episodes[1] = SimEpisode(episodes[1].time, episodes[1].activation, episodes[1].contacts, "turn")
    run = read_run(write_run(tmp_path / "run.mcap", episodes))
    assert run.embodiment == "legs" and run.muscle_names == NAMES
    assert [e.motion for e in run.episodes] == ["walk", "turn"]
    for got, want in zip(run.episodes, episodes):
        np.testing.assert_array_equal(got.time, want.time)
        np.testing.assert_array_equal(got.activation, want.activation)
        np.testing.assert_array_equal(got.contacts, want.contacts)


def test_read_run_rejects_other_files(tmp_path):
    path = tmp_path / "run.mcap"
    path.write_bytes(b"not an mcap file")
    with pytest.raises(ValueError, match="not a readable MCAP"):
        read_run(path)


# --- command line ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def legs_names() -> tuple[str, ...]:
    from kinesis_tasks import load_embodiment

    model = load_embodiment("legs")
    return tuple(model.actuator(i).name for i in range(model.nu))


@pytest.fixture
def recordings(tmp_path, legs_names):
    """(EMG CSV, run MCAP of the 80 legs muscles): TA_r follows tibant_r, Soleus_r is its inverse, 'extra' is
    unmapped."""
    time, emg = emg_signal([shape, lambda p: shape(p, peak=0.8), shape])
    hs = (np.round(time * EMG_FS) % round(EMG_CYCLE * EMG_FS) == 0).astype(float)
    csv = write_csv(tmp_path / "emg.csv", time, {"TA_r": emg[:, 0], "Soleus_r": emg[:, 1], "extra": emg[:, 2],
                                                 "heel_strike_r": hs})
    activations = {"tibant_r": shape, "soleus_r": lambda p: 1.5 - shape(p, peak=0.8)}
    episodes = [sim_episode(activations, legs_names, cycles=5), sim_episode(activations, legs_names, cycles=5)]
    return csv, write_run(tmp_path / "run.mcap", episodes, legs_names)


def test_cli_compare_with_a_run(recordings, tmp_path, capsys):
    from kinesis.cli import main

    csv, run = recordings
    out = tmp_path / "out"
    assert main(["emg", "compare", "--recording", str(csv), "--run", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "TA_r" in printed and "extra" in printed and "heel_strike_r" not in printed.split("events:")[0]
    report = json.loads((out / "emg_compare.json").read_text())
    channels = {c["channel"]: c for c in report["channels"]}
    assert channels["TA_r"]["muscles"] == ["tibant_r"] and channels["TA_r"]["r"] > 0.95
    assert channels["Soleus_r"]["r"] < -0.9 and len(channels["TA_r"]["emg_mean"]) == 101
    assert report["unmapped"] == ["extra"] and report["sim_cycles"] >= 8
    assert report["emg_cycles"] == CYCLES - 2  # the pulse at t = 0 opens no cycle
    assert (out / "emg_compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_episode_and_motion_selection(recordings, tmp_path, capsys):
    from kinesis.cli import main

    csv, run = recordings
    base = ["emg", "compare", "--recording", str(csv), "--run", str(run), "--out", str(tmp_path / "o")]
    assert main([*base, "--episode", "1"]) == 0
    assert main([*base, "--episode", "2"]) == 2
    assert main([*base, "--motion", "kick"]) == 2
    err = capsys.readouterr().err
    assert "--episode 2: " in err and "2 episodes" in err and "no episode" in err and "walk" in err


def test_cli_unknown_muscle_in_mapping(recordings, tmp_path, capsys):
    from kinesis.cli import main

    csv, run = recordings
    mapping = tmp_path / "map.yaml"
    mapping.write_text("channels:\n  TA_r: [tibialis_anterior_r]\n")
    code = main(["emg", "compare", "--recording", str(csv), "--run", str(run), "--mapping", str(mapping),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "unknown muscle 'tibialis_anterior_r'" in capsys.readouterr().err


def test_policy_rollout_records_activations_and_contacts(tmp_path, recordings, capsys):
    """A freshly initialised Lattice policy (no training): act and touch are recorded every control step."""
    import torch
    from kinesis_training import Critic, LatticeActor, save_checkpoint

    from kinesis_training.inference import CheckpointPolicy
    from kinesis_tasks.emg_io import record_episode
    from kinesis_tasks.evaluation import evaluation_config
    from kinesis_tasks.imitation import ImitationEnv
    from kinesis_tasks.motions import load_motion

    motion = load_motion("myosuite_walk_a")
    env = ImitationEnv(evaluation_config(), [motion])
    obs_dim, nu = env.observation_space.shape[0], env.model.nu
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    save_checkpoint(path, LatticeActor(obs_dim, nu, (8,)), Critic(obs_dim, (8,)), epoch=0, frame=0)
    episode, names, terminated = record_episode(CheckpointPolicy(str(path)), "myosuite_walk_a")
    assert len(names) == nu == 80 and names[names.index("tibant_r")] == "tibant_r"
    assert episode.activation.shape == (episode.time.size, nu) and episode.contacts.shape == (episode.time.size, 4)
    assert episode.time.size >= 2 and np.all(np.diff(episode.time) > 0) and np.all(episode.contacts >= 0)
    assert np.all(episode.activation >= 0) and np.all(np.isfinite(episode.activation))  # act may pass 1 slightly
    assert episode.motion == "myosuite_walk_a" and np.any(episode.contacts[0] > 0)
    assert terminated or episode.time.size - 1 == env.max_episode_steps

    from kinesis.cli import main

    code = main(["emg", "compare", "--recording", str(recordings[0]), "--policy", str(path), "--motion",
                 "myosuite_walk_a", "--out", str(tmp_path / "o")])
    assert code == 2 and "fewer than two heel strikes" in capsys.readouterr().err  # an untrained policy falls
