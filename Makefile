# Two commands on a fresh machine (Python 3.11+): `make demo` and `make test`.
# Both create .venv and install ctdistill with its test extras (and ray, for the Ray executor's tests) the first time.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: demo test test-fast install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

install: $(STAMP)

## The main job on the built-in synthetic phantoms (time: BENCHMARKS.md, "Today's results").
demo: $(STAMP)
	$(BIN)/ctdistill run --config configs/demo.toml --out $(DEMO_OUT)

## Every test, slow ones included (what CI runs), one process per core (pytest-xdist); the browser the
## report test opens is installed as CI installs it, and that test may not skip.
test: $(STAMP)
	.ci/browser
	CTDISTILL_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n auto --dist loadgroup

## The fast tests only (synthetic data, a tiny teacher, no subprocess), for the edit-test loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadgroup -m "not slow and not spawns"

clean:
	rm -rf $(VENV) .pytest_cache
