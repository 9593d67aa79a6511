# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    := out

.PHONY: demo test venv ha-venv test-deps bench bench-grpc bench-snapshots bench-feed bench-restarts bench-soak bench-cpu bench-threads models models-blazepose clean protos image image-local image-size acap acap-runtime-archive deploy

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Vigil needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile --upgrade pip
	@# the setuptools a 3.11 venv starts with: pip builds Vigil with its own; a test extra brings its own
	$(BIN)/python -m pip uninstall --quiet --yes setuptools

# everything: the runtime, the camera's gRPC client and what the tests, benches and `vigil quantize`
# use (make test, make venv)
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[camera,test,bench,quantize]'
	touch $@

# the runtime only (make demo), its .py files compiled when first imported
$(VENV)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -e .
	touch $@

venv: $(VENV)/.installed

# a venv that ever had everything keeps it: the demo brings it up to date as make venv would
## make demo: run the pipeline on the bundled clip with the bundled INT8 model (installs the runtime only)
demo: $(if $(wildcard $(VENV)/.installed),$(VENV)/.installed,$(VENV)/.installed-runtime)
	@mkdir -p $(OUT)
	$(BIN)/vigil run --config config/default.yaml --jsonl $(OUT)/demo.jsonl --save-video $(OUT)/demo.mp4 $(DEMO_ARGS)

## make test: install what the tests need (Debian packages when root), run the whole suite
test: venv test-deps ha-venv
	$(BIN)/python -m pytest -q

## make ha-venv: Home Assistant (pinned, with its own constraints) in .venv-ha: its schemas for the discovery test, a real
## server for tests/test_ha_server.py
HA_VENV    := .venv-ha
HA_VERSION := 2024.3.3
# the stamp gets a new name when what the venv holds changes, so an older .venv-ha is brought up to date
HA_STAMP   := $(HA_VENV)/.installed-server-frontend
$(HA_STAMP):
	$(PYTHON) -m venv $(HA_VENV)
	$(HA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(HA_VENV)/bin/pip download --quiet --no-deps -d $(HA_VENV)/wheels homeassistant==$(HA_VERSION)
	$(HA_VENV)/bin/python -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	  sys.stdout.write(z.read("homeassistant/package_constraints.txt").decode())' \
	  $(HA_VENV)/wheels/homeassistant-$(HA_VERSION)-py3-none-any.whl > $(HA_VENV)/constraints.txt
	# paho-mqtt: the MQTT integration's own requirement (homeassistant/components/mqtt/manifest.json);
	# josepy<2: acme (the http component imports it) needs josepy 1.x, and 2.x makes every request a 500;
	# what a server started with --skip-pip needs for the integrations it always loads (else it starts in
	# recovery mode): Pillow (image_upload, for person and onboarding), janus (file_upload, for mqtt and
	# frontend), home-assistant-frontend, psutil-home-assistant, SQLAlchemy and fnv-hash-fast (analytics,
	# hardware), securetar (backup), numpy (camera: without it the websocket's get_services fails and the
	# frontend stays on "Loading data"); versions from the package's own constraints
	$(HA_VENV)/bin/pip install --quiet -c $(HA_VENV)/constraints.txt \
	  $(HA_VENV)/wheels/homeassistant-$(HA_VERSION)-py3-none-any.whl paho-mqtt==1.6.1 'josepy<2' Pillow janus \
	  home-assistant-frontend psutil-home-assistant SQLAlchemy fnv-hash-fast securetar numpy
	touch $@

ha-venv: $(HA_STAMP)

test-deps:
	@bash tools/install-test-deps.sh

## make bench: raw invoke rate vs end-to-end rate, per-stage times, peak RSS
bench: venv
	$(BIN)/python bench/pipeline.py

## make bench-cpu: per-frame CPU time outside the model, p50/p95 per stage, file and camera (NV12) mode
bench-cpu: venv
	$(BIN)/python bench/frame_cpu.py

## make bench-threads: CPU per frame of every thread of a real run, the model's share and the rest
bench-threads: venv
	$(BIN)/python bench/thread_cpu.py

## make bench-feed: capture-to-MQTT latency, QoS 1 publish rate, CPU per frame of the publishing path (local mosquitto)
bench-feed: venv test-deps
	$(BIN)/python bench/feed_latency.py && $(BIN)/python bench/feed_throughput.py && $(BIN)/python bench/feed_cpu.py

## make bench-restarts: new/end events subscribers miss over broker restarts, per mqtt.resume_delay (a few minutes)
bench-restarts: venv test-deps
	$(BIN)/python bench/feed_restarts.py

## make bench-soak: RSS curve of a 30-minute run with the HTTP API polled every 3 s and MQTT on (SOAK_ARGS=--minutes 5 …)
bench-soak: venv test-deps
	nice -n 10 $(BIN)/python bench/soak.py $(SOAK_ARGS)

## make bench-snapshots: per-frame cost of object snapshots on the outputs thread (sample clip)
bench-snapshots: venv
	$(BIN)/python bench/snapshots.py

## make bench-grpc: per-frame cost of the ACAP Runtime gRPC path vs in-process TFLite (emulator)
bench-grpc: venv
	$(BIN)/python bench/grpc_overhead.py

## make models: rebuild the default NanoDet INT8 models (TensorFlow in its own venv, .venv-build)
BUILD_VENV := .venv-build
models:
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install --quiet "tensorflow-cpu==2.21.0" opencv-python-headless ai-edge-litert pydantic pyyaml
	$(BUILD_VENV)/bin/python tools/make_nanodet.py

## make models-blazepose: rebuild the optional BlazePose INT8 models from MediaPipe's float detector
models-blazepose: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[quantize]'
	$(BIN)/python tools/make_default_model.py

## make protos: generate the ACAP Runtime gRPC modules into app/protos (the tests do it on first use)
protos: venv
	$(BIN)/python -m app.protos

# -- camera packaging (needs Docker with buildx; docs/camera.md) ---------------------------------
IMAGE     ?= vigil
VERSION   := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PLATFORMS ?= linux/amd64,linux/arm64
ACAP_SDK  ?= axisecp/acap-native-sdk:12.11.0-aarch64-ubuntu24.04
ACAP_DIR  := $(OUT)/acap

## make image: multi-arch image (amd64 laptops, arm64 ARTPEC-8 cameras); PUSH=1 pushes to $(IMAGE)
image:
	docker buildx build --platform $(PLATFORMS) -t $(IMAGE):$(VERSION) $(if $(PUSH),--push,) .

## make image-local: the image for this machine only, loaded into the local daemon
image-local:
	docker buildx build --load -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

# the ACAP Runtime image the package carries: ref and pinned id from acap/env.config
RUNTIME_REF := $(shell sed -n 's/^INFERENCE_SERVER_IMAGE=//p' acap/env.config)
RUNTIME_ID  := $(shell sed -n 's/^INFERENCE_SERVER_IMAGE_ID=//p' acap/env.config)
ACAP_RUNTIME_TAR ?=

## make image-size: installed size per package of the camera image (ENGINE=podman|docker measures the built
## $(IMAGE):$(VERSION); without ENGINE, the arm64 wheels of the runtime dependencies, no engine needed)
image-size: venv
	$(BIN)/python tools/image_size.py $(if $(ENGINE),--image $(IMAGE):$(VERSION) --engine $(ENGINE),--wheels)

## make acap ACAP_RUNTIME_TAR=<file>: the camera package (.eap): Vigil's arm64 image and ACAP Runtime's
## (a `docker save` archive, checked against the id pinned in acap/env.config), compose file, wrapper
acap:
	@test -n "$(ACAP_RUNTIME_TAR)" || { echo "usage: make acap ACAP_RUNTIME_TAR=<docker save of $(RUNTIME_REF)> (make acap-runtime-archive makes one; docs/camera.md)"; exit 2; }
	$(PYTHON) tools/image_archive.py verify $(ACAP_RUNTIME_TAR) --ref $(RUNTIME_REF) --id "$(RUNTIME_ID)" --arch arm64
	rm -rf $(ACAP_DIR) && mkdir -p $(ACAP_DIR)
	docker buildx build --platform linux/arm64 -t $(IMAGE):$(VERSION) --output type=docker,dest=$(ACAP_DIR)/vigil-image.tar .
	cp $(ACAP_RUNTIME_TAR) $(ACAP_DIR)/acap-runtime-image.tar
	cp manifest.json acap/vigil acap/check-images acap/postinstall.sh acap/preuninstall.sh acap/env.config $(ACAP_DIR)/
	cp -r acap/html $(ACAP_DIR)/html
	cp docker-compose.acap.yml $(ACAP_DIR)/docker-compose.yml
	sed -i 's/^VIGIL_IMAGE=.*/VIGIL_IMAGE=$(IMAGE):$(VERSION)/' $(ACAP_DIR)/env.config
	sed -i "s/^VIGIL_IMAGE_ID=.*/VIGIL_IMAGE_ID=$$($(PYTHON) tools/image_archive.py id $(ACAP_DIR)/vigil-image.tar --ref $(IMAGE):$(VERSION) --arch arm64)/" $(ACAP_DIR)/env.config
	docker run --rm -v $(CURDIR)/$(ACAP_DIR):/opt/app -w /opt/app $(ACAP_SDK) \
	  sh -c '. /opt/axis/acapsdk/environment-setup* && acap-build . -a vigil-image.tar -a acap-runtime-image.tar -a docker-compose.yml -a env.config -a check-images'

## make acap-runtime-archive: on a machine that reaches Docker Hub, pull ACAP Runtime's arm64 image and
## save it to $(OUT)/acap-runtime-image.tar, refused unless it is the image pinned in acap/env.config
acap-runtime-archive:
	mkdir -p $(OUT)
	docker pull --platform linux/arm64 $(RUNTIME_REF)
	docker save -o $(OUT)/acap-runtime-image.tar $(RUNTIME_REF)
	@test -n "$(RUNTIME_ID)" || { echo "no id pinned in acap/env.config yet; this archive holds $$($(PYTHON) tools/image_archive.py id $(OUT)/acap-runtime-image.tar --ref $(RUNTIME_REF) --arch arm64): compare it with config.digest of 'docker buildx imagetools inspect --raw $(RUNTIME_REF)', then set INFERENCE_SERVER_IMAGE_ID"; exit 1; }
	$(PYTHON) tools/image_archive.py verify $(OUT)/acap-runtime-image.tar --ref $(RUNTIME_REF) --id "$(RUNTIME_ID)" --arch arm64

## make deploy CAMERA=192.168.0.90 [CAMERA_USER=root CAMERA_PASS=…]: install the .eap on a camera
CAMERA_USER ?= root
deploy:
	@test -n "$(CAMERA)" || { echo "usage: make deploy CAMERA=<camera address> [CAMERA_USER=… CAMERA_PASS=…]"; exit 2; }
	@test -n "$$(ls $(ACAP_DIR)/*.eap 2>/dev/null)" || { echo "no .eap in $(ACAP_DIR): run make acap first"; exit 2; }
	curl --fail --anyauth -u "$(CAMERA_USER):$(CAMERA_PASS)" -F packfil=@"$$(ls $(ACAP_DIR)/*.eap | head -n1)" \
	  "http://$(CAMERA)/axis-cgi/applications/upload.cgi"
	curl --fail --anyauth -u "$(CAMERA_USER):$(CAMERA_PASS)" \
	  "http://$(CAMERA)/axis-cgi/applications/control.cgi?action=start&package=vigil"

clean:
	rm -rf $(VENV) $(HA_VENV) $(OUT) .pytest_cache
