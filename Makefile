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
# The Jazzy job: the node over DDS with a baseline method (no torch in that venv).
JAZZY_TESTS ?= test/test_packaging_ros_runtime.py
# The colcon job's pytest run (`colcon test`): the installed package's layout and a few fast suites.
COLCON_TESTS ?= test/test_packaging_installed.py test/test_depth_codec.py test/test_geometry.py

.PHONY: setup test test-kilted test-colcon test-jazzy check-robot-pins demo bench clean

# Create the venv and install pinned runtime + test dependencies and this package (editable).
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.py setup.cfg
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -r requirements-dev.txt
	$(PY) -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	touch $@

# Every CI job, fast ones first; each prints its wall time (README "Tests and CI").
test: setup
	@for job in check-robot-pins test-colcon test-jazzy test-kilted; do \
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

# Jazzy (Python 3.12, ros-jazzy-* wheels, no torch): the package installed (not editable) with --no-deps.
$(JAZZY_VENV)/.installed: requirements-jazzy.txt requirements-robot-base.txt
	@test -x "$(JAZZY_PYTHON)" || { echo "Jazzy job: no Python 3.12 at $(JAZZY_PYTHON) (set JAZZY_PYTHON)"; exit 1; }
	test -x $(JAZZY_VENV)/bin/python || $(JAZZY_PYTHON) -m venv $(JAZZY_VENV)
	$(JAZZY_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements-jazzy.txt
	touch $@

test-jazzy: $(JAZZY_VENV)/.installed
	$(JAZZY_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation --force-reinstall .
	@! $(JAZZY_VENV)/bin/python -c "import torch" 2>/dev/null || { echo "Jazzy venv must not have torch"; exit 1; }
	$(JAZZY_VENV)/bin/pytest -q -p no:cacheprovider $(JAZZY_TESTS)

# The robot's torch-free pins resolve to wheels on Humble's Python 3.10 (Jazzy's 3.12: test-jazzy installs them).
check-robot-pins:
	@test -x "$(HUMBLE_PYTHON)" || { echo "no Python 3.10 at $(HUMBLE_PYTHON) (set HUMBLE_PYTHON)"; exit 1; }
	$(HUMBLE_PYTHON) -m pip install $(PIP_FLAGS) --dry-run --ignore-installed --only-binary=:all: \
	  -r requirements-robot-base.txt

# The main job: see README "Demo".
demo: setup
	$(PY) -m naima_ros.demo --shared-data $(SHARED_DATA) --out out/demo

bench: setup
	$(PY) bench/bench_model.py

clean:
	rm -rf $(VENV) $(JAZZY_VENV) build *.egg-info out
