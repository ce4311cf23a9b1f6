# Media Vault — the commands a newcomer can guess.
#   make demo    install everything, then archive the sample posts on the local stack
#   make test    install everything, then run the whole test suite

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SAM    := .venv-sam/bin/sam

.PHONY: setup demo test test-fast lint bench build deploy up clean

setup: $(VENV)/.installed $(SAM) .chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# aws-sam-cli pins its own boto3/cfn-lint: it lives in its own virtualenv, outside the runtime set.
$(SAM):
	$(PYTHON) -m venv .venv-sam
	.venv-sam/bin/pip install -q --upgrade pip
	.venv-sam/bin/pip install -q aws-sam-cli

.chromium:
	./scripts/install-chromium.sh
	@touch $@

demo: setup
	$(VENV)/bin/mediavault demo

up: setup
	$(VENV)/bin/mediavault local up

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "unit or integration" -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/mediavault/mediavault

bench: setup
	$(PY) bench/worker_memory.py --sizes 50 500 --repeat 3
	$(PY) bench/extraction.py --rounds 20

# The worker is a container image: `sam build` needs Docker for it.
build: setup
	$(SAM) build

deploy: build
	$(SAM) deploy --guided

clean:
	rm -rf .aws-sam .mediavault downloads .pytest_cache .ruff_cache .mypy_cache
