"""Tests of the benchmarks' own parts: the peers' workload server and the runtime driver."""
