#!/usr/bin/env bash
# What CI (and a fresh machine) needs before `make test`, besides Python and uv:
# Prometheus, HAProxy and PostgreSQL from Debian, and the Collector and Jaeger binaries built
# from their Go modules into the cache (${XDG_CACHE_HOME:-$HOME/.cache}/agent-runtime), so
# that the e2e tests start at once. Idempotent: every step is skipped when its result is
# already there.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)

# Debian packages the tests run: Prometheus (and promtool, in the same package), HAProxy
# (the balancer in front of service replicas) and PostgreSQL (the tests start their own
# servers with it: scripts/processes/ looks in /usr/lib/postgresql/<major>/bin, which
# Debian keeps off PATH, then on PATH).
postgres_present() {
  local bindir
  for bindir in /usr/lib/postgresql/*/bin; do
    [ -x "$bindir/initdb" ] && [ -x "$bindir/postgres" ] && [ -x "$bindir/psql" ] && return 0
  done
  command -v initdb >/dev/null
}
missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
postgres_present || missing+=(postgresql)
if [ ${#missing[@]} -eq 0 ]; then
  echo "ci-prereqs: present: $(prometheus --version 2>&1 | head -n 1), haproxy, PostgreSQL"
elif [ "$(id -u)" = 0 ]; then
  echo "ci-prereqs: installing ${missing[*]} from Debian"
  if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    # The package would create (and may start) a system cluster on port 5432; the tests
    # make their own, so none is created (postgresql-common reads createcluster.d).
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/agent-runtime.conf
  fi
  t=$(date +%s)
  apt-get update -qq
  echo "ci-prereqs: package lists updated in $(( $(date +%s) - t )) s"
  for package in "${missing[@]}"; do
    t=$(date +%s)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null
    echo "ci-prereqs: $package installed in $(( $(date +%s) - t )) s"
  done
else
  echo "ci-prereqs: ${missing[*]} missing and this is not root: apt-get install ${missing[*]}" >&2
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
