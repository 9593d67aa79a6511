# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    := out

.PHONY: demo test venv test-deps bench models clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Vigil needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench,quantize]'
	touch $@

venv: $(VENV)/.installed

## make demo: run the pipeline on the bundled clip with the bundled INT8 model
demo: venv
	@mkdir -p $(OUT)
	$(BIN)/vigil run --config config/default.yaml --jsonl $(OUT)/demo.jsonl --save-video $(OUT)/demo.mp4 $(DEMO_ARGS)

## make test: install what the tests need (Debian packages when root), run the whole suite
test: venv test-deps
	$(BIN)/python -m pytest -q

test-deps:
	@bash tools/install-test-deps.sh

## make bench: raw invoke rate vs end-to-end rate, per-stage times, peak RSS
bench: venv
	$(BIN)/python bench/pipeline.py

## make models: rebuild the INT8 default models from MediaPipe's float detector
models: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[quantize]'
	$(BIN)/python tools/make_default_model.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
