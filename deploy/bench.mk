# `make bench`: every benchmark of bench/ (about 14 minutes on 2 cores), ending with one
# `bench: ...` line; `make bench-quick`: the CI-sized run that only checks they run;
# `make bench-profile`: where one agent run's CPU goes (cProfile), telemetry on and off.
BENCH_ARGS ?=

bench: sync ## every benchmark of bench/ (BENCH_ARGS=)
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench $(BENCH_ARGS)

bench-quick: sync ## the benchmarks CI-sized: they run (figures mean nothing)
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench --quick $(BENCH_ARGS)

bench-profile: sync ## where one agent run's CPU goes (cProfile), telemetry on and off
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench.profile_run on 200
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench.profile_run off 200

# `make bench-profile-transcript`: where a request's CPU goes against a 1,000-entry transcript,
# and for a 1,000-chunk answer (cProfile, in process, telemetry off; bench/README.md).
bench-profile-transcript: sync ## where a request's CPU goes against a long transcript
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench.profile_transcript off 1000 20
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench.profile_transcript off 10 10 1000

.PHONY: bench bench-quick bench-profile bench-profile-transcript

# `make bench-peers`: agent-runtime beside pydantic-ai, the OpenAI Agents SDK and LangGraph on
# one workload, each framework in a process of its own (<= 15 minutes on 2 cores), ending
# with one `peers:` line (bench/README.md). The peers come from bench/peers' own uv project
# and lock file, never from the service's; agent-runtime and the floor run on the service's.
# `make bench-peers-check` (CI, about a minute once the packages are cached): both
# environments synced, the workload server and every driver started, nothing measured.
# `make bench-peers-lint`: mypy --strict on the peers' drivers against the peers' packages.
PEERS_ARGS ?=
PEERS_DRIVERS := bench/peers/drivers/pydantic_ai_agent.py bench/peers/drivers/openai_agents.py \
	bench/peers/drivers/langgraph_graph.py

bench-peers-sync: sync ## the peers' own environment (bench/peers/uv.lock)
	@$(UV) sync --quiet --frozen --project bench/peers

bench-peers: bench-peers-sync ## agent-runtime beside its peers on one workload (PEERS_ARGS=)
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench.peers $(PEERS_ARGS)

bench-peers-check: bench-peers-sync ## CI: the peers' benchmark starts (nothing measured)
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench.peers --check

bench-peers-lint: bench-peers-sync ## mypy --strict on the peers' drivers
	@MYPYPATH=. bench/peers/.venv/bin/mypy --strict --cache-dir bench/peers/.mypy_cache \
		--python-executable bench/peers/.venv/bin/python $(PEERS_DRIVERS)

.PHONY: bench-peers-sync bench-peers bench-peers-check bench-peers-lint
