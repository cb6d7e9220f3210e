# Every user-facing target builds the virtualenv on first use, so on a fresh
# machine `make report` and `make test` do the whole set-up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: venv test test-slow lint report clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[frameworks,report,test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(PY) -m ruff check harness oracles reports tests bench
	$(PY) -m ruff format --check harness oracles reports tests bench

report: $(STAMP)
	@echo "make report arrives with the HTML report (issue 4)"

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
