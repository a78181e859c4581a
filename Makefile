# One-command entry points. Everything runs from local venvs installed from the package registries.
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data
PIP_FLAGS := --quiet --disable-pip-version-check
# Jazzy's Python (Ubuntu 24.04: 3.12) and Humble's (Ubuntu 22.04: 3.10), from pyenv.
PYENV_ROOT ?= $(HOME)/.pyenv
JAZZY_PYTHON ?= $(PYENV_ROOT)/versions/3.12.1/bin/python
HUMBLE_PYTHON ?= $(PYENV_ROOT)/versions/3.10.13/bin/python
JAZZY_VENV ?= .venv-jazzy
PY310_VENV ?= .venv-py310
# The Jazzy job: the node over DDS with a baseline method (no torch in that venv).
JAZZY_TESTS ?= test/test_packaging_ros_runtime.py test/test_ros_node.py test/test_ros_bag_parity.py \
  test/test_ros_compat.py test/test_ros_conversions.py test/test_ros_sync.py test/test_serving.py \
  test/test_model_slot.py test/test_resources.py test/test_contract.py test/test_ros_geometry.py \
  test/test_ros_tf.py test/test_ros_diagnostics.py test/test_ros_node_conventions.py test/test_ros_any_depth.py \
  test/test_frames_any_size.py test/test_confidence.py
# The Humble-Python job: ROS-free, torch-free suites on Python 3.10 with the robot's pins.
PY310_TESTS ?= test/test_depth_codec.py test/test_geometry.py test/test_image_transport.py test/test_registration.py \
  test/test_data_synthetic.py test/test_data_benchmarks.py test/test_data_registry.py test/test_data_nyu.py \
  test/test_data_rgbdd_tofdsr.py test/test_ros_sync.py test/test_serving.py test/test_fsio.py test/test_resources.py \
  test/test_bags_make.py test/test_bags_eval.py test/test_contract.py test/test_bags_ros1.py test/test_health.py \
  test/test_params_file.py test/test_frames_any_size.py test/test_tof.py test/test_confidence.py
# The colcon job's pytest run (`colcon test`): the installed package's layout and a few fast suites.
COLCON_TESTS ?= test/test_packaging_installed.py test/test_depth_codec.py test/test_geometry.py test/test_ros_launch.py

.PHONY: setup test test-kilted test-colcon test-jazzy test-py310 demo bench clean

# Create the venv and install pinned runtime + test dependencies and this package (editable).
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.py setup.cfg
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -r requirements-dev.txt
	$(PY) -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	touch $@

# Every CI job, fast ones first; each prints its wall time (docs/testing.md).
test: setup
	@for job in test-colcon test-jazzy test-py310 test-kilted; do \
	  start=$$(date +%s); $(MAKE) --no-print-directory $$job || exit 1; \
	  echo "== $$job: $$(( $$(date +%s) - start )) s"; done

# Kilted (Python 3.11, the project venv): the whole suite.
test-kilted: setup
	$(PY) -m pytest -q test

# colcon build + colcon test + colcon test-result in a throwaway workspace whose src/ links to this checkout.
# Fails unless colcon ran more than 0 tests with 0 failures/errors.
test-colcon: setup
	@ws=$$(mktemp -d) && trap 'rm -rf "$$ws"' EXIT && mkdir "$$ws/src" && ln -s "$(CURDIR)" "$$ws/src/naima_ros" && \
	cd "$$ws" && \
	"$(CURDIR)/$(VENV)/bin/colcon" build --event-handlers console_direct- && \
	"$(CURDIR)/$(VENV)/bin/colcon" test --event-handlers console_direct+ --pytest-args $(COLCON_TESTS) && \
	summary=$$("$(CURDIR)/$(VENV)/bin/colcon" test-result --all --verbose | tail -n 1) && \
	echo "colcon test-result: $$summary" && \
	echo "$$summary" | grep -Eq '^Summary: [1-9][0-9]* tests, 0 errors, 0 failures'

# Other Pythons, each in its own venv with the package installed (not editable) with --no-deps and no torch:
# Jazzy's 3.12 with the ros-jazzy-* wheels, Humble's 3.10 without ROS. $(1) Python, $(2) venv, $(3) requirements.
define make_venv
	@test -x "$(1)" || { echo "no Python at $(1) (set JAZZY_PYTHON / HUMBLE_PYTHON)"; exit 1; }
	test -x $(2)/bin/python || $(1) -m venv $(2)
	$(2)/bin/python -m pip install $(PIP_FLAGS) -r $(3)
	touch $(2)/.installed
endef
# $(1) venv, $(2) test files. pytest's own script, so that `naima_ros` is the installed copy, not the source tree.
define test_installed
	rm -rf build  # setuptools' build/lib keeps files deleted from the source: they would be installed too
	$(1)/bin/python -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation --use-pep517 --force-reinstall .
	@! $(1)/bin/python -c "import torch" 2>/dev/null || { echo "$(1) must not have torch"; exit 1; }
	NAIMA_SHARED_DATA=$(abspath $(SHARED_DATA)) $(1)/bin/pytest -q -p no:cacheprovider $(2)
endef

$(JAZZY_VENV)/.installed: requirements-jazzy.txt requirements-robot-base.txt
	$(call make_venv,$(JAZZY_PYTHON),$(JAZZY_VENV),requirements-jazzy.txt)

$(PY310_VENV)/.installed: requirements-py310.txt requirements-robot-base.txt
	$(call make_venv,$(HUMBLE_PYTHON),$(PY310_VENV),requirements-py310.txt)

# Jazzy: the node over DDS with a baseline method.
test-jazzy: $(JAZZY_VENV)/.installed
	$(call test_installed,$(JAZZY_VENV),$(JAZZY_TESTS))

# Humble's Python 3.10: the robot's pins installed for real; the ROS-free, torch-free suites.
test-py310: $(PY310_VENV)/.installed
	$(call test_installed,$(PY310_VENV),$(PY310_TESTS))

# The main job: see README "Setup, demo, tests".
demo: setup
	$(PY) -m naima_ros.demo --shared-data $(SHARED_DATA) --out out/demo

bench: setup
	$(PY) bench/bench_model.py

clean:
	rm -rf $(VENV) $(JAZZY_VENV) $(PY310_VENV) build *.egg-info out
