# Two commands do all set-up on a fresh machine:
#   make demo   -> creates .venv, trains the mini-world zoo, mines under both protocols, writes reports/
#   make test   -> creates .venv and runs the whole test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch and torchvision are pinned to the builds that pip finds on this machine's
# disk; override on your own machine, e.g. make demo TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
export MDC_WIDGETS_HOME ?= $(CURDIR)/.mdc_cache

.PHONY: setup demo test docstrings clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed

# the paper table under both rules of the single-task sets: reports/paper_table_{mdc,ijcv2021}.{md,csv};
# the executed notebook and its HTML are those of the last run (ijcv2021, the default)
demo: setup
	$(PY) -m mdc_widgets reproduce --output reports -p protocol mdc
	$(PY) -m mdc_widgets reproduce --output reports -p protocol ijcv2021

# Debian's chromium drives the JupyterLab end-to-end test; where it cannot be installed that test is skipped.
# The zoo is trained (or found in the cache) before the tests, so no test waits minutes on a fixture.
# ruff (lint and format, configured in pyproject.toml) holds the code style without anyone remembering it.
# tests/test_docstrings.py validates every public docstring with numpydoc ([tool.numpydoc_validation] in pyproject.toml);
# `make docstrings` runs it alone and lists each violation as file:line.
# nbval runs every notebook (--dist loadfile keeps a notebook's cells on one worker, hence one kernel);
# MDC_WIDGETS_QUICK=1 shrinks the two long experiments to smoke size.
test: setup
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
		echo "chromium is not available: the browser test will be skipped"
	$(PY) -m ruff check mdc_widgets tests benchmarks
	$(PY) -m ruff format --check mdc_widgets tests benchmarks
	$(PY) -m mdc_widgets train-zoo
	MDC_WIDGETS_QUICK=1 $(PY) -m pytest -n auto --dist loadfile --timeout 900 --doctest-modules tests mdc_widgets \
		--nbval-lax notebooks $(PYTEST_ARGS)

docstrings: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/test_docstrings.py
	$(PY) tests/test_docstrings.py

clean:
	rm -rf reports .mdc_cache
