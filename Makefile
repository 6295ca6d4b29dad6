# fakewatch: every target creates or reuses the virtualenv and installs what is missing first.
#   make scan DIR=~/Pictures     classify every image under DIR (embedded mode, no servers)
#   make watch DIR=~/Incoming    watch DIR and classify new images as they arrive
#   make serve                   the web console and HTTP API on http://127.0.0.1:8000 (prints the login URL)
#   make test                    lint, type-check and run the test suite
#   make bench                   run the benchmarks in bench/ (prints tables)
#   make bench-distributed       distributed-mode throughput (needs the local Redis and PostgreSQL)
#   make bench-web               the console's listings on a million rows and upload-to-verdict
#   make bench-faults            the fault suite and the fuzzing scan (needs Redis, PostgreSQL; root for disk-full)
#   make default-classifier      retrain the shipped classifier from ../shared/data (about an hour on 2 cores)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CIFAKE ?= ../shared/data/cifake-train.tar.gz
WORK ?= build/data

.PHONY: install scan watch serve test lint bench bench-distributed bench-faults bench-web default-classifier clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[cpu,dev]'
	touch $(STAMP)

install: $(STAMP)

scan: $(STAMP)
	@test -n "$(DIR)" || (echo "usage: make scan DIR=folder-with-images" >&2; exit 2)
	$(BIN)/fakewatch scan "$(DIR)"

watch: $(STAMP)
	@test -n "$(DIR)" || (echo "usage: make watch DIR=folder-to-watch" >&2; exit 2)
	$(BIN)/fakewatch watch "$(DIR)"

serve: $(STAMP)
	$(BIN)/fakewatch serve

test: $(STAMP)
	$(BIN)/ruff check fakewatch tests bench
	$(BIN)/mypy fakewatch
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check fakewatch tests bench
	$(BIN)/mypy fakewatch

bench: $(STAMP)
	$(BIN)/python bench/classifier_speed.py
	$(BIN)/python bench/scan_speed.py
	$(BIN)/python bench/watch_latency.py
	$(BIN)/python bench/results_query.py

bench-distributed: $(STAMP)
	$(BIN)/python bench/distributed_throughput.py

bench-web: $(STAMP)
	$(BIN)/python bench/web_console.py

bench-faults: $(STAMP)
	$(BIN)/python bench/faults.py

default-classifier: $(STAMP)
	mkdir -p $(WORK)/cifake && tar -xzf $(CIFAKE) -C $(WORK)/cifake
	FAKEWATCH_REGISTRY_DIR=fakewatch/builtin_classifiers $(BIN)/fakewatch train $(WORK)/cifake/train \
	  --arch resnet --width 32 --blocks 2,2,2 --stem patch --input-size 32 --epochs 56 --batch-size 256 \
	  --learning-rate 0.002 --patience 12 \
	  --valid-fraction 0.05 --test-fraction 0.05 --seed 1337 \
	  --description "CIFAKE training split (Bird & Lotfi, IEEE Access 2024): 50,000 CIFAR-10 photos (real) and 50,000 Stable Diffusion 1.4 images (fake), 32x32 JPEG; deduplicated by SHA-256, then carved 90/5/5 stratified by label and CIFAR-10 class" --no-activate

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
