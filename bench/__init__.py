"""agent-runtime benchmarks: what telemetry costs per run, per event, per audit record, per
request, and what an exporter outage does. ``python -m bench [--quick]``; see README.md.

Every benchmark measures its subject and its baseline interleaved in the same run (round
robin, several repeats) and prints medians, p99 and the spread; ``make bench`` ends with one
machine-readable ``bench:`` line.
"""
