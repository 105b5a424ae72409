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

# `make help` lists every target of this file and of the deploy/*.mk it includes, from the
# `## ` text after each rule's prerequisites: a target is documented where it is defined, so
# the list cannot go stale (tests/test_makefile.py fails when a target has no such text).
help: ## this list
	@awk 'BEGIN { FS = ":[^#]*## " } /^[A-Za-z0-9_.-]+:[^=]*## / { printf "  make %-25s %s\n", $$1, $$2 }' \
		$(MAKEFILE_LIST)

uv: ## install uv 0.13.8 with pip when it is not on PATH
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --user --quiet "uv==0.13.8" \
		|| python3 -m pip install --user --quiet --break-system-packages "uv==0.13.8" \
		|| python3 -m pip install --quiet "uv==0.13.8"

sync: uv ## the locked environment in .venv (uv sync --frozen)
	@$(UV) sync --quiet --frozen

demo: sync ## the offline demo on the scripted model: timelines and metrics
	@$(UV) run --frozen agent-runtime demo

# The end-to-end tests need Prometheus (Debian) and the Collector and Jaeger built from
# their Go modules: deploy/ci-prereqs.sh installs/builds what is missing (cached after the
# first run, which takes several minutes on a cold machine).
test: sync prereqs ## every test, the end-to-end pipeline included (PYTEST_ARGS=)
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

prereqs: ## Prometheus, the Collector and Jaeger for the end-to-end tests
	@deploy/ci-prereqs.sh

serve: sync ## the service on http://127.0.0.1:8001 (PORT=, HOST= to change)
	@PORT=$(PORT) $(UV) run --frozen agent-runtime serve

lint: sync ## ruff check, ruff format --check, mypy --strict
	@$(UV) run --frozen ruff check src tests bench scripts
	@$(UV) run --frozen ruff format --check src tests bench scripts
	@$(UV) run --frozen mypy --strict src
	@MYPYPATH=src:. $(UV) run --frozen mypy --strict bench
	@MYPYPATH=. $(UV) run --frozen mypy --strict scripts

format: sync ## ruff format and ruff check --fix
	@$(UV) run --frozen ruff format src tests bench scripts
	@$(UV) run --frozen ruff check --fix src tests bench scripts

-include deploy/stack.mk
-include deploy/soak.mk
-include deploy/bench.mk
