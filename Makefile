# The README's two commands. Both set up everything they need from nothing.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo lint

setup:
	bash scripts/setup.sh

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

demo: setup
	$(VENV)/bin/speechcrawl demo --workdir work/demo
