# Two entry points for a fresh machine that only has Python 3.11+:
#   make demo   set up .venv, install the package, run the demo on a local cluster
#   make test   set up .venv, install the package with test/docs extras, run the tests and build the docs
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test docs bench lint clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,docs,plot]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/daskml-lab demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check daskml_lab tests benchmarks examples

clean:
	rm -rf $(VENV) docs/_build .pytest_cache
