#!/usr/bin/env bash
# Build (or reuse) Jaeger v2 (module github.com/jaegertracing/jaeger v1.76.0 = Jaeger 2.13.0).
#
# `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0` is refused (Jaeger's go.mod
# has a replace directive), so deploy/jaeger/ is a tiny module that lists cmd/jaeger as a
# tool (go get -tool) and carries the same replace; only its go.mod and go.sum are in git.
# The binary goes into a cache folder keyed by a hash of go.mod, go.sum and the Go version,
# and is reused when present. Nothing is written inside the repository.
#
# Progress goes to stderr; the last line on stdout is the binary's path.
#
# Environment:
#   AGENT_RUNTIME_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/agent-runtime)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
module_dir="$repo/deploy/jaeger"
cache="${AGENT_RUNTIME_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-runtime}"
log() { printf 'build-jaeger: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not on PATH"; exit 127; }
go_version="$(go env GOVERSION)"
key="$(cat "$module_dir/go.mod" "$module_dir/go.sum" <(echo "$go_version") | sha256sum | cut -c1-16)"
out_dir="$cache/jaeger/$key"
binary="$out_dir/jaeger"

mkdir -p "$cache/jaeger"
exec 9>"$cache/jaeger/.lock"
flock 9

if [ -x "$binary" ]; then
  log "reusing $binary (key $key)"
  echo "$binary"
  exit 0
fi

start=$(date +%s)
log "building github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0 with $go_version (key $key);" \
  "a cold build takes several minutes"
mkdir -p "$out_dir.partial"
(cd "$module_dir" && go build -trimpath -ldflags "-s -w" -o "$out_dir.partial/jaeger" \
  github.com/jaegertracing/jaeger/cmd/jaeger)
rm -rf "$out_dir"
mv "$out_dir.partial" "$out_dir"
log "built in $(( $(date +%s) - start )) s"
echo "$binary"
