# Two commands set everything up on a fresh machine (Python 3.11, nothing installed):
#   make demo   pretrain the default model on the bundled Shakespeare, then print a sample
#   make test   run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch; pinned so CI never pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test install clean

$(BIN)/gptkit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)" -e ".[test]"
	touch $@

install: $(BIN)/gptkit

demo: install
	$(BIN)/gptkit pretrain

# Two workers, whole files each (a module's server or trained model is built once): the suite
# is mostly single-threaded processes, so this halves its wall time on 2 cores.
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs .pytest_cache
