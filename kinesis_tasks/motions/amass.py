"""AMASS (SMPL-H .npz, e.g. the KIT subset) -> ReferenceMotions via the user's SMPL model and ``smplx``.

Each AMASS clip holds ``poses`` [T, 156] (axis-angle: global orientation, 21 body
joints, 30 hand joints), ``trans`` [T, 3] (m), ``mocap_framerate`` (Hz) and
``betas``. The body is the neutral SMPL model with zero shape (betas ignored), so
the rest joints are J = J_regressor @ v_template; smplx's batch forward kinematics
(``batch_rodrigues`` + ``batch_rigid_transform``) poses the first 22 joints (the
SMPL hand joints 22-23 stay at rest, hands are not tracked), and ``trans`` is added.
AMASS is already z-up (its global orientation includes the y-up to z-up turn), so
positions are used as they are. Clips are resampled to 30 fps (linear/slerp).

Keypoints (SMPL joint index): root Pelvis(0), tibia_l L_Knee(4), tibia_r R_Knee(5),
talus_l L_Ankle(7), talus_r R_Ankle(8), toes_l L_Foot(10), toes_r R_Foot(11),
head Head(15). ``root_quat`` is the pelvis orientation expressed for the MyoLegs
root frame: q_global * Rx(-90 deg) (SMPL's rest frame is y-up facing +z, MyoLegs'
is z-up facing -y), so an upright AMASS subject gives an upright MyoLegs root.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from kinesis_tasks.motions.motion import DEFAULT_BODIES, HEAD_BODY, ReferenceMotion

SMPL_JOINTS = {"root": 0, "tibia_l": 4, "tibia_r": 5, "talus_l": 7, "talus_r": 8, "toes_l": 10, "toes_r": 11,
               "head": 15}
BODY_JOINTS = 22
TARGET_FPS = 30.0
SMPL_FILE = "SMPL_NEUTRAL.pkl"
LICENCE = "AMASS licence (non-commercial research; see https://amass.is.tue.mpg.de)"
_SMPL_TO_MYOLEGS_ROOT = Rotation.from_euler("x", -np.pi / 2)


class SmplSkeleton:
    """Rest joints and kinematic tree of the user's neutral SMPL model, loaded with ``smplx``."""

    def __init__(self, smpl_model_dir: str | Path) -> None:
        import smplx
        import torch

        path = Path(smpl_model_dir).expanduser()
        path = path / SMPL_FILE if path.is_dir() or path.suffix != ".pkl" else path
        if not path.is_file():
            raise FileNotFoundError(
                f"SMPL model not found at {path}. Register at https://smpl.is.tue.mpg.de, download "
                f"'SMPL for Python' v1.1.0, take the neutral model (basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl), "
                f"save it as {SMPL_FILE} in a folder and pass that folder as --smpl-model-dir.")
        try:
            model = smplx.SMPL(model_path=str(path), gender="neutral", dtype=torch.float64)
        except Exception as error:  # smplx raises bare assertions/unpickling errors
            raise ValueError(f"{path}: not a loadable SMPL model file ({type(error).__name__}: {error})") from None
        with torch.no_grad():
            rest = torch.einsum("jv,vc->jc", model.J_regressor, model.v_template)
        self.path = path
        self.rest_joints = rest[:BODY_JOINTS]
        self.parents = model.parents[:BODY_JOINTS].clone()

    def joints(self, poses: np.ndarray, trans: np.ndarray) -> np.ndarray:
        """[T, 22, 3] world joint positions (m) from axis-angle poses [T, >= 66] and trans [T, 3]."""
        import torch
        from smplx.lbs import batch_rigid_transform, batch_rodrigues

        frames = poses.shape[0]
        axis_angle = torch.as_tensor(poses[:, :3 * BODY_JOINTS], dtype=torch.float64).reshape(-1, 3)
        rotations = batch_rodrigues(axis_angle).reshape(frames, BODY_JOINTS, 3, 3)
        rest = self.rest_joints.expand(frames, -1, -1)
        with torch.no_grad():
            posed, _ = batch_rigid_transform(rotations, rest, self.parents, dtype=torch.float64)
        return posed.numpy() + np.asarray(trans, dtype=np.float64)[:, None, :]


def kit_key(clip: Path) -> str:
    """Motion name of an AMASS KIT clip: ``0-KIT_<subject>_<file stem>`` (the official key format)."""
    return f"0-KIT_{clip.parent.name}_{clip.stem}"


def kit_splits() -> dict[str, set[str]]:
    """The official KIT train/test key lists shipped in kinesis_tasks/data/kit."""
    folder = resources.files("kinesis_tasks") / "data" / "kit"
    return {split: {line.strip() for line in (folder / f"kit_{split}_keys.txt").read_text().splitlines()
                    if line.strip()} for split in ("train", "test")}


def find_clips(amass_dir: str | Path, keys: Iterable[str] | None = None) -> list[Path]:
    """AMASS clip files under ``amass_dir`` (``shape.npz`` skipped), optionally only those named in ``keys``."""
    root = Path(amass_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"AMASS folder not found: {root}")
    clips = sorted(p for p in root.rglob("*.npz") if p.name != "shape.npz")
    if keys is not None:
        wanted = set(keys)
        clips = [clip for clip in clips if kit_key(clip) in wanted]
    return clips


def read_amass_clip(path: str | Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(poses [T, >= 66], trans [T, 3], frame rate Hz) of an AMASS .npz (ValueError naming the file)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as error:
        raise ValueError(f"{path}: not a readable AMASS .npz ({type(error).__name__}: {error})") from None
    rate_key = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in arrays), None)
    missing = [k for k in ("poses", "trans") if k not in arrays] + ([] if rate_key else ["mocap_framerate"])
    if missing:
        raise ValueError(f"{path}: not an AMASS clip, missing {missing}")
    poses, trans, rate = arrays["poses"], arrays["trans"], float(arrays[rate_key])
    if poses.ndim != 2 or poses.shape[1] < 3 * BODY_JOINTS or trans.shape != (poses.shape[0], 3):
        raise ValueError(f"{path}: poses must be [T, >= 66] and trans [T, 3], got {poses.shape} and {trans.shape}")
    if poses.shape[0] < 2 or not rate > 0:
        raise ValueError(f"{path}: needs >= 2 frames and a positive frame rate, got {poses.shape[0]} at {rate}")
    if not (np.all(np.isfinite(poses)) and np.all(np.isfinite(trans))):
        raise ValueError(f"{path}: poses or trans contain NaN/inf")
    return poses, trans, rate


def convert_clip(path: str | Path, skeleton: SmplSkeleton, name: str | None = None) -> ReferenceMotion:
    """One AMASS clip -> a 30 fps ReferenceMotion of the 7 tracked bodies plus head."""
    path = Path(path)
    poses, trans, rate = read_amass_clip(path)
    joints = skeleton.joints(poses, trans)
    keypoints = joints[:, [SMPL_JOINTS[body] for body in (*DEFAULT_BODIES, HEAD_BODY)]]
    root_quat = (Rotation.from_rotvec(poses[:, :3]) * _SMPL_TO_MYOLEGS_ROOT).as_quat(scalar_first=True)
    motion = ReferenceMotion(name=name or kit_key(path), fps=rate, keypoints=keypoints,
                             body_names=(*DEFAULT_BODIES, HEAD_BODY), root_quat=root_quat,
                             source=f"AMASS {path.parent.name}/{path.name} via SMPL neutral ({skeleton.path.name})",
                             licence=LICENCE)
    return motion.resample(TARGET_FPS)
