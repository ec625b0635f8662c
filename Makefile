# Two commands do all set-up on a fresh machine:
#   make demo   -> creates .venv, trains the mini-world zoo, mines, writes reports/
#   make test   -> creates .venv and runs the whole test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch and torchvision are pinned to the builds that pip finds on this machine's
# disk; override on your own machine, e.g. make demo TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
export MDC_WIDGETS_HOME ?= $(CURDIR)/.mdc_cache

.PHONY: setup demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m mdc_widgets reproduce --output reports

# the zoo is trained (or found in the cache) before the tests, so no test waits minutes on a fixture
test: setup
	$(PY) -m mdc_widgets train-zoo
	$(PY) -m pytest -n auto --timeout 900 --doctest-modules tests mdc_widgets $(PYTEST_ARGS)

clean:
	rm -rf reports .mdc_cache
