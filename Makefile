# `make run`: install (once) and start the app on the demo project. `make test`: install (once) and run the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-requirements

.PHONY: run test install bench lint demo-models clean

install: $(STAMP)

# Reinstall only when requirements.txt changed since the last install (the stamp keeps a copy of it).
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@cmp -s requirements.txt $(STAMP) || { \
	  $(PY) -m pip install --quiet --upgrade pip && \
	  $(PY) -m pip install --quiet -r requirements.txt && \
	  cp requirements.txt $(STAMP); }
	@touch $(STAMP)

run: install
	$(VENV)/bin/streamlit run streamlit_app.py

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) benchmarks/run_all.py

# Retrain the demo classifier and VAE on mnist-sample and write them into models/ (minutes on a CPU).
demo-models: install
	$(PY) -m defuse demo --rebuild

clean:
	rm -rf $(VENV) workspaces .pytest_cache .ruff_cache
