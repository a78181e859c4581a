# One-command entry points. Everything runs from a local venv (.venv) installed from the package registries.
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data

.PHONY: setup test demo bench clean

# Create the venv and install pinned runtime + test dependencies and this package (editable).
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.py setup.cfg
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

test: setup
	$(PY) -m pytest -q test

# The main job: see README "Demo".
demo: setup
	$(PY) -m naima_ros.demo --shared-data $(SHARED_DATA) --out out/demo

bench: setup
	$(PY) bench/bench_model.py

clean:
	rm -rf $(VENV) build *.egg-info out
