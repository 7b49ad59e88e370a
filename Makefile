# The two README commands: `make demo` (train, export, serve) and `make test`.
# Both create .venv with the pinned packages on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast notebooks benchmarks clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "rnn_toolkit needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

demo: install
	$(BIN)/python -m rnn_toolkit demo

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg

test-fast: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow" tests

notebooks: install
	$(BIN)/python notebooks/execute.py

benchmarks: install
	$(BIN)/python benchmarks/char_lm_training_throughput.py
	$(BIN)/python benchmarks/generation_throughput.py
	$(BIN)/python benchmarks/sentiment_bucketing.py
	$(BIN)/python benchmarks/sentiment_serving_latency.py
	$(BIN)/python benchmarks/translator_attention.py
	$(BIN)/python benchmarks/translator_decoding_throughput.py
	$(BIN)/python benchmarks/translator_serving_latency.py
	$(BIN)/python benchmarks/captioner_comparison.py
	$(BIN)/python benchmarks/captioner_heldout_words.py
	$(BIN)/python benchmarks/captioner_self_critical.py
	$(BIN)/python benchmarks/captioner_input_pipeline.py
	$(BIN)/python benchmarks/captioner_serving_latency.py
	$(BIN)/python benchmarks/frame_labeller_comparison.py
	$(BIN)/python benchmarks/cells_against_keras.py
	$(BIN)/python benchmarks/gradient_flow_and_lag.py
	$(BIN)/python benchmarks/interpretable_neurons.py
	$(BIN)/python benchmarks/multi_worker_throughput.py
	$(BIN)/python benchmarks/gpu_cudnn_kernels.py

clean:
	rm -rf $(VENV) runs .pytest_cache
