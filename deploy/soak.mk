# Reliability suite (tests/reliability/): load, kill -9 crash safety, exporter faults,
# hostile input (Schemathesis + targeted), access control, shutdown.
#
# `make test` runs its short form (a couple of minutes, CI-sized): 100 concurrent SSE
# conversations, 24 approvals killed mid-decision, 120 requests per exporter fault,
# 25 Schemathesis examples per operation, 30 non-reading clients.
#
# `make soak` runs the same tests with AGENT_RUNTIME_SOAK=1, which every test reads to scale
# up: 200 concurrent conversations (half decided by a second client), 120 approvals + 60
# extra streams at the kill -9, 1500 requests per exporter fault (RSS growth still bounded
# by 40 MiB), 400 Schemathesis examples per operation, 200 slow consumers, 40 streams open
# at SIGTERM. Everything stays on 127.0.0.1 and bounded in time (pytest-timeout applies).
# Pass more pytest options with SOAK_ARGS=, e.g. `make soak SOAK_ARGS="-k load -s"`.
SOAK_ARGS ?=

.PHONY: soak

soak: sync ## the reliability suite scaled up (AGENT_RUNTIME_SOAK=1; SOAK_ARGS=)
	@AGENT_RUNTIME_SOAK=1 $(UV) run --frozen pytest tests/reliability -ra -p no:cacheprovider $(SOAK_ARGS)
