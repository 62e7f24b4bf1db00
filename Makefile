# Dark Halo Scope — the two commands that matter: `make demo` and `make test`.
# Each sets itself up from nothing: creates .venv and installs the project with its pinned deps.

# Python 3.11: the one version pyproject.toml, the README, CI and the EMR presets support.
PYTHON      ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
export SPARK_LOCAL_IP ?= 127.0.0.1
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYSPARK_PYTHON ?= $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON ?= $(abspath $(PY))
PYTEST_ARGS ?=

.PHONY: venv browser test test-all demo bench bench-gpu ablate-demo lint clean

venv: $(STAMP)

# torch/torchvision first and pinned (pip takes them from this machine's disk), then the project
# (metadata in pyproject.toml; setup.py is its build step).
$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[all]'
	touch $(STAMP)

# Debian's chromium for the report's browser test; best effort (the test skips without it).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "chromium not available: the report browser test will be skipped"

test: $(STAMP) browser
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP) browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m dhs.demo $(if $(FORCE),--force,)

bench: $(STAMP)
	$(PY) -m benchmarks

# model alone vs trainer vs scorer for resnet18, efficientnet_b0, convnext_tiny on one GPU (< 5 min):
# build/bench/device_table.md (docs/training.md). DEVICE=cpu for a smoke run at small sizes.
bench-gpu: $(STAMP)
	$(PY) -m benchmarks.gpu --device $(or $(DEVICE),cuda)

# A small ablation on the demo's data (docs/ablation.md): the demo chain first (resumable), then
# 2 variants x 2 seeds, then the report again with the ablation section.
ablate-demo: $(STAMP)
	$(PY) -m dhs.demo
	$(PY) -m dhs.ablate --config configs/ablation_demo.yaml
	$(PY) -m dhs.demo --redo report

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf build dist *.egg-info .pytest_cache spark-warehouse

# --- EMR (docs/cloud.md): make emr-<pipeline> PRESET=<emr/presets.yaml name> [CONFIG=a.yaml[,b.yaml]]
#     [URIS="tractor=s3://... positives=s3://..."] [DRY_RUN=1] [S3_PREFIX=s3://bucket/prefix] [ACCOUNT=account.yaml]
#     [EMR_ARGS="--set k=v -- --extra {run}/x"]
#     make smoke-<pipeline> [CONFIG=...] [URIS=...]: the same job chain through local spark-submit (local[2]),
#     with configs/<job>_demo.yaml and mock-survey inputs.
PRESET     ?= smoke
emr_comma  := ,
EMR_CONFIG_ARGS = $(foreach c,$(subst $(emr_comma), ,$(CONFIG)),--config $(c)) $(foreach u,$(URIS),--uri $(u))

.PHONY: emr-phase4c emr-negatives emr-cutouts emr-compact
emr-phase4c emr-negatives emr-cutouts emr-compact: $(STAMP)
	$(PY) -m emr.launch $(@:emr-%=%) --preset $(PRESET) $(EMR_CONFIG_ARGS) $(if $(DRY_RUN),--dry-run,) \
		$(if $(S3_PREFIX),--s3-prefix $(S3_PREFIX),) $(if $(ACCOUNT),--account $(ACCOUNT),) $(EMR_ARGS)

smoke-%: $(STAMP)
	$(PY) -m emr.smoke $* $(EMR_CONFIG_ARGS) $(SMOKE_ARGS)
