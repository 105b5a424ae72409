#!/usr/bin/env bash
# What CI (and a fresh machine) needs before `make test`, besides Python and uv:
# Prometheus from Debian, and the Collector and Jaeger binaries built from their Go modules
# into the cache (${XDG_CACHE_HOME:-$HOME/.cache}/agent-runtime), so that the e2e tests
# start at once. Idempotent: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)

if command -v prometheus >/dev/null; then
  echo "ci-prereqs: prometheus present: $(prometheus --version 2>&1 | head -n 1)"
elif [ "$(id -u)" = 0 ]; then
  echo "ci-prereqs: installing prometheus from Debian"
  t=$(date +%s)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  echo "ci-prereqs: prometheus installed in $(( $(date +%s) - t )) s"
else
  echo "ci-prereqs: prometheus is missing and this is not root: apt-get install prometheus" >&2
fi

if command -v go >/dev/null; then
  t=$(date +%s)
  scripts/build-collector.sh >/dev/null
  echo "ci-prereqs: collector ready in $(( $(date +%s) - t )) s"
  t=$(date +%s)
  scripts/build-jaeger.sh >/dev/null
  echo "ci-prereqs: jaeger ready in $(( $(date +%s) - t )) s"
else
  echo "ci-prereqs: go is not on PATH; the e2e tests will be skipped" >&2
fi
echo "ci-prereqs: done in $(( $(date +%s) - t0 )) s"
