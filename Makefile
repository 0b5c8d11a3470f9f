# The two set-up commands (see README): `make demo` and `make test`. Each creates .venv itself.
PY ?= python3
VENV ?= .venv

.PHONY: demo test install install-test clean

demo: install
	$(VENV)/bin/volseg demo

test: install-test
	tools/test_setup.sh
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy --cache-dir $(VENV)/.mypy_cache src/volseg
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

install:
	PYTHON=$(PY) VOLSEG_VENV=$(VENV) tools/install.sh

install-test:
	PYTHON=$(PY) VOLSEG_VENV=$(VENV) tools/install.sh test

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
