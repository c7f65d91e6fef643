# Two commands for a new user:
#   make demo   - set everything up, then run the end-to-end demo on an embedded default
#   make test   - set everything up, then run the test suite
#   make serve  - the web page and REST API on the demo runs (builds them first): http://127.0.0.1:8000
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo serve test lint bench clean

setup:
	@FAKESCOPE_VENV=$(VENV) bash scripts/setup_env.sh

demo: setup
	$(VENV)/bin/fakescope demo --out demo_output

serve: setup
	@[ -f demo_output/runs/airl/checkpoints/best.json ] || $(VENV)/bin/fakescope demo --out demo_output
	$(VENV)/bin/fakescope serve --run demo_output/runs/airl --run demo_output/runs/infer --data-dir demo_output/serve

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest ran no tests: failing"; exit 1; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf demo_output .pytest_cache
