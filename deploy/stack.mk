# `make stack` / `make stack-down`: the telemetry stack as local processes (no Docker):
# Collector and Jaeger built from their Go modules (cached outside the repository),
# Prometheus from Debian, and the service (`uv run agent-runtime serve`). Pid files and
# logs go to .stack/ (gitignored); stack-down stops exactly the process groups recorded
# there. STACK_ARGS=--tail-sampling adds the production overlay; --no-service leaves the
# service out (run `make serve` yourself).
STACK_ARGS ?=

stack: sync
	@$(UV) run --frozen python scripts/stack.py up $(STACK_ARGS)

stack-down:
	@python3 scripts/stack.py down

stack-status:
	@python3 scripts/stack.py status

.PHONY: stack-status
