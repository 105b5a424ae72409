"""The repository's own tooling: `python -m scripts.stack`, and scripts.processes, which the
stack, the e2e and reliability tests and the benchmarks share to run programs as processes."""
