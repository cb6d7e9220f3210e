# Every user-facing target builds the virtualenv on first use, so on a fresh
# machine `make report` and `make test` do the whole set-up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: venv browser compiler test test-slow lint report clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[frameworks,report,test,jax,fast]'
	touch $(STAMP)

# Headless Chromium and its driver, for the report's browser tests (Debian packages).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "no chromium and no apt-get: the browser tests will be skipped"; fi

# A C++ compiler for torch.compile's Inductor backend (the torch-compile: impls).
compiler:
	@if command -v g++ >/dev/null || command -v c++ >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing g++ (apt-get) for torch.compile"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; \
	else echo "no C++ compiler and no apt-get: the torch-compile impls will be skipped"; fi

test: $(STAMP) browser compiler
	$(PY) -m pytest -q -m "not slow"

# The oracle's property tests at 5000 examples each (about an hour on 2 cores).
test-slow: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/test_oracle_properties.py tests/test_oracle_gradients.py

lint: $(STAMP)
	$(PY) -m ruff check lossfuzz harness oracles reports tests bench lossfuzz_pytest.py
	$(PY) -m ruff format --check lossfuzz harness oracles reports tests bench lossfuzz_pytest.py

report: $(STAMP) compiler
	$(PY) -m lossfuzz run --out out/results.json
	@$(PY) -m lossfuzz report out/results.json -o out/report.html

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
