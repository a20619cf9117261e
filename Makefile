# KINESIS: `make demo` and `make test` set up what is missing first (see scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kinesis-ready
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa
export AMENT_PREFIX_PATH ?= $(abspath $(VENV))

.PHONY: setup demo test bench clean

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml scripts/setup.sh scripts/build_msgs.sh $(wildcard kinesis_msgs/msg/*.msg kinesis_msgs/srv/*.srv third_party/composition_interfaces/srv/*.srv)
	VENV=$(VENV) scripts/setup.sh
	@touch $@

setup:
	VENV=$(VENV) scripts/setup.sh
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kinesis demo

# A worker per core; the ROS 2 tests run on one of them, one at a time (tests/ros_group.py).
test: $(STAMP)
	$(PY) -m pytest -q -ra -n auto --dist loadgroup

bench: $(STAMP)
	$(VENV)/bin/kinesis bench --out bench/results.json

clean:
	rm -rf build $(VENV) .pytest_cache
