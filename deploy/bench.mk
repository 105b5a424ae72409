# `make bench`: every benchmark of bench/ (<= 10 minutes on 2 cores), ending with one
# `bench: ...` line; `make bench-quick`: the CI-sized run that only checks they run;
# `make bench-profile`: where one agent run's CPU goes (cProfile), telemetry on and off.
BENCH_ARGS ?=

bench: sync
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench $(BENCH_ARGS)

bench-quick: sync
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench --quick $(BENCH_ARGS)

bench-profile: sync
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench.profile_run on 200
	@PYTHONPATH=src:. $(UV) run --frozen python -m bench.profile_run off 200

.PHONY: bench bench-quick bench-profile
