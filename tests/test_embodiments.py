"""Built-in embodiments: muscle counts, tracked bodies, sensors, floor, timestep; external MJCF; bad names."""

import mujoco
import numpy as np
import pytest
from conftest import V1_MODEL

from kinesis_tasks import TRACKED_BODIES, load_embodiment
from kinesis_tasks.embodiment import muscle_actuators


@pytest.mark.parametrize(("name", "muscles"), [("legs", 80), ("legs_abs", 86), ("legs_back", 290)])
def test_builtin_embodiment(name, muscles):
    model = load_embodiment(name)
    assert model.nu == muscles
    assert len(muscle_actuators(model)) == muscles
    assert model.opt.timestep == pytest.approx(1 / 150)
    for body in TRACKED_BODIES:
        assert model.body(body).id > 0
    assert model.jnt_type[model.body("root").jntadr[0]] == mujoco.mjtJoint.mjJNT_FREE
    assert model.joint("root").id == model.body("root").jntadr[0]
    floor = model.geom("floor")
    assert floor.type[0] == mujoco.mjtGeom.mjGEOM_PLANE and floor.pos[2] == 0.0
    nbody = model.nbody - 1
    kinds = model.sensor_type
    assert np.sum(kinds == mujoco.mjtSensor.mjSENS_FRAMELINVEL) == nbody
    assert np.sum(kinds == mujoco.mjtSensor.mjSENS_FRAMEANGVEL) == nbody
    assert [model.sensor(i).name for i in np.flatnonzero(kinds == mujoco.mjtSensor.mjSENS_TOUCH)] == ["r_foot", "r_toes", "l_foot", "l_toes"]


def test_feet_rest_on_floor_and_touch_sensors_read_contact():
    model = load_embodiment("legs")
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    assert data.ncon == 0 or data.contact.dist.min() > -1e-3  # no deep penetration at qpos0
    data.qpos[2] -= 0.005  # press 5 mm into the floor
    mujoco.mj_forward(model, data)
    touch = data.sensordata[model.sensor("r_foot").adr[0] : model.sensor("l_toes").adr[0] + 1]
    assert data.ncon > 0 and touch.max() > 0


def test_external_mjcf_path_loads_with_control_timestep():
    model = load_embodiment(str(V1_MODEL))
    assert (model.nq, model.nv, model.nu, model.nbody) == (35, 34, 80, 17)
    assert model.opt.timestep == pytest.approx(1 / 150)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"legs.*legs_abs.*legs_back"):
        load_embodiment("arms")
    with pytest.raises(FileNotFoundError):
        load_embodiment("/nonexistent/model.xml")
