# The service's everyday commands. Every target installs what it needs first (uv from PyPI
# when missing, then the locked environment), so a fresh machine with only Python works.
.DEFAULT_GOAL := help
PORT ?= 8001
# uv on PATH, else the uv that pip installs for this Python (`python3 -m uv` finds its binary
# wherever pip put it: ~/.local/bin, a pyenv or a venv bin folder).
UV_ON_PATH := $(shell command -v uv 2>/dev/null)
UV := $(if $(UV_ON_PATH),$(UV_ON_PATH),python3 -m uv)
PYTEST_ARGS ?=

.PHONY: help uv sync demo test prereqs serve lint format stack stack-down

help:
	@echo "make demo     run the offline demo (scripted model) and print its timelines"
	@echo "make test     run every test (unit, service over real HTTP, end-to-end pipeline)"
	@echo "make serve    start the service on port $(PORT) (PORT= to change)"
	@echo "make lint     ruff check, ruff format --check, mypy --strict"
	@echo "make stack    start Collector + Jaeger + Prometheus + the service as processes"

uv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --user --quiet "uv==0.13.8" \
		|| python3 -m pip install --user --quiet --break-system-packages "uv==0.13.8" \
		|| python3 -m pip install --quiet "uv==0.13.8"

sync: uv
	@$(UV) sync --quiet --frozen

demo: sync
	@$(UV) run --frozen agent-runtime demo

# The end-to-end tests need Prometheus (Debian) and the Collector and Jaeger built from
# their Go modules: deploy/ci-prereqs.sh installs/builds what is missing (cached after the
# first run, which takes several minutes on a cold machine).
test: sync prereqs
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

prereqs:
	@deploy/ci-prereqs.sh

serve: sync
	@PORT=$(PORT) $(UV) run --frozen agent-runtime serve

lint: sync
	@$(UV) run --frozen ruff check src tests bench scripts
	@$(UV) run --frozen ruff format --check src tests bench scripts
	@$(UV) run --frozen mypy --strict src
	@MYPYPATH=src:. $(UV) run --frozen mypy --strict bench
	@MYPYPATH=. $(UV) run --frozen mypy --strict scripts

format: sync
	@$(UV) run --frozen ruff format src tests bench scripts
	@$(UV) run --frozen ruff check --fix src tests bench scripts

-include deploy/stack.mk
-include deploy/soak.mk
-include deploy/bench.mk
