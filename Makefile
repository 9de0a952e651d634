# wgops: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench soak screenshots broker venv clean lint

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

broker:
	@bash scripts/ensure-broker.sh

demo: venv broker
	$(VENV)/bin/wgops init
	$(VENV)/bin/wgops demo

test: venv broker
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-browser.sh
	@bash scripts/ensure-promtool.sh
	@bash scripts/ensure-faketime.sh
	@bash scripts/run-tests.sh $(PY) $(PYTEST_ARGS)

bench: venv broker
	$(PY) -m bench

# the chaos soak (not in CI, not in `make test`): SOAK_ARGS="--minutes 5 --seed 7"
soak: venv
	$(PY) -m bench.soak $(SOAK_ARGS)

screenshots: venv
	@bash scripts/ensure-screenshot-tools.sh
	$(PY) -m wgops.console.screenshots

lint: venv
	$(PY) -m ruff check wgops console daemon store tests bench || true

clean:
	rm -rf $(VENV) .pytest_cache
