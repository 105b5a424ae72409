# `make stack` / `make stack-down`: the telemetry stack as local processes (no Docker):
# Collector and Jaeger built from their Go modules (cached outside the repository),
# Prometheus from Debian (with the alert rules of deploy/prometheus/alerts.yml), and the
# service (`uv run agent-runtime serve`). Pid files and logs go to .stack/ (gitignored);
# stack-down stops exactly the process groups recorded there.
#   TIERS=2                   two hosts (service + agent Collector each) and two gateway
#                             Collectors that tail-sample whole traces (docs/pipeline.md)
#   STACK_ARGS=--tail-sampling  one Collector with tail sampling in front of Jaeger
#   STACK_ARGS=--no-service     only the backends; run `make serve` yourself
#   DATABASE_URL=postgresql://user:pass@host:5432/db   the service (every host) stores its
#                             data there instead of its embedded SQLite file
#   REPLICAS=N                N service processes (ports 8011...) behind HAProxy on 8001, one
#                             PostgreSQL for all (DATABASE_URL or POSTGRES=1), one shared
#                             tool-workspace folder (docs/replicas.md)
#   POSTGRES=1                start a local PostgreSQL (Debian's, cluster in .stack/postgres,
#                             127.0.0.1:5432; STACK_ARGS=--postgres-port=N to move it) and run
#                             the service on it; its URL is in .stack/postgres.url
STACK_ARGS ?=
TIERS ?=
REPLICAS ?=
POSTGRES ?=

stack: sync ## Collector, Jaeger, Prometheus and the service as processes (TIERS=, REPLICAS=, POSTGRES=1)
	@$(UV) run --frozen python -m scripts.stack up $(if $(TIERS),--tiers $(TIERS)) \
		$(if $(REPLICAS),--replicas $(REPLICAS)) \
		$(if $(POSTGRES),--postgres) $(STACK_ARGS)

stack-down: ## stop exactly what `make stack` started
	@python3 -m scripts.stack down

stack-status: ## which of the stack's processes run
	@python3 -m scripts.stack status

.PHONY: stack-status
