#!/usr/bin/env bash
# Build (or reuse) agent-runtime's OpenTelemetry Collector from deploy/collector/builder-config.yaml.
#
# The OpenTelemetry Collector Builder (ocb) is installed with `go install` into the cache, and
# the Collector is built into a cache folder keyed by a hash of the manifest, the builder
# version and the Go version: a second run with the same inputs reuses the binary at once.
# Nothing is written inside the repository.
#
# Progress goes to stderr; the last line on stdout is the binary's path, so callers can do
#   collector="$(scripts/build-collector.sh | tail -n 1)"
#
# Environment:
#   AGENT_RUNTIME_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/agent-runtime)
#   GOFLAGS, GOCACHE, GOMODCACHE, GOPROXY  honoured as the go command defines them
set -euo pipefail

BUILDER_VERSION="v0.161.0"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
manifest="$repo/deploy/collector/builder-config.yaml"
cache="${AGENT_RUNTIME_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-runtime}"
log() { printf 'build-collector: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not on PATH"; exit 127; }
go_version="$(go env GOVERSION)"
key="$( { cat "$manifest"; echo "$BUILDER_VERSION $go_version"; } | sha256sum | cut -c1-16)"
out_dir="$cache/collector/$key"
binary="$out_dir/otelcol-agent-runtime"

mkdir -p "$cache/collector"
# One build at a time (make stack and a test run may start together).
exec 9>"$cache/collector/.lock"
flock 9

if [ -x "$binary" ]; then
  log "reusing $binary (key $key)"
  echo "$binary"
  exit 0
fi

start=$(date +%s)
builder_dir="$cache/go-bin/builder-$BUILDER_VERSION"
if [ ! -x "$builder_dir/builder" ]; then
  log "installing go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION into $builder_dir"
  GOBIN="$builder_dir" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
fi

work="$cache/collector/$key.partial"
rm -rf "$work"
mkdir -p "$work"
# The same manifest, with the generated sources and the binary under the cache folder.
awk -v out="$work/src" '{ print } /^dist:/ { print "  output_path: " out }' "$manifest" \
  >"$work/builder-config.yaml"
log "building the Collector with $go_version (key $key); a cold build takes several minutes"
"$builder_dir/builder" --config "$work/builder-config.yaml" >&2
mv "$work/src/otelcol-agent-runtime" "$work/otelcol-agent-runtime"
rm -rf "$work/src"
rm -rf "$out_dir"
mv "$work" "$out_dir"
log "built in $(( $(date +%s) - start )) s"
echo "$binary"
