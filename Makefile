# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TASK ?= pick the blue block into the orange bowl
SEED ?= 1

.PHONY: demo test lint bench clean system-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) system-packages
	rm -rf runs/demo  # a run folder belongs to one run: the demo's last one makes way
	$(BIN)/erarm run "$(TASK)" --seed $(SEED) --out runs/demo

# espeak-ng speaks --speak's narration offline (Debian's package); its tests skip without it
system-packages:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  $$SUDO apt-get install -y -q espeak-ng >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q espeak-ng >/dev/null 2>&1; } || \
	  echo "note: could not install espeak-ng (apt-get); its tests will skip"; }

test: $(STAMP) system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto --dist worksteal

bench: $(STAMP)
	$(BIN)/python scripts/bench_spine.py --seeds 50

clean:
	rm -rf $(VENV) runs build *.egg-info
