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

# Two workers (pytest-xdist), one per core of the 2-core reference machine, each on one torch thread
# (tests/conftest.py); the Ray tests share one worker (--dist loadgroup), so one Ray runs at a time.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

lint: install
	$(VENV)/bin/ruff check .

# Every figure's raw output, with device, torch version, threads and date, lands in $(BENCH_JSON).
BENCH_JSON ?= docs/runs/bench-latest.json
bench: install
	$(PY) benchmarks/run_all.py --json $(BENCH_JSON)

# Retrain the demo classifier and VAE on mnist-sample, remake the demo's precomputed first look
# (identify, distill, maps, reviewer) and write it all into models/ (about 20 minutes on one CPU thread).
demo-models: install
	$(PY) -m defuse demo --rebuild --threads 1

clean:
	rm -rf $(VENV) workspaces .pytest_cache .ruff_cache
