#!/bin/sh
# Build the opencontainers/runtime-tools validation programs with the project's own make targets.
#   conformance/build_runtime_tools.sh CHECKOUT
# CHECKOUT is a runtime-tools source tree (e.g. `git clone https://github.com/opencontainers/runtime-tools`
# then `git checkout 260e151`, the last commit whose go.mod accepts Go 1.19, Debian 12's golang-go).
# Dependencies are vendored, so no module download happens. Nothing of runtime-tools is kept here.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 RUNTIME_TOOLS_CHECKOUT" >&2; exit 2; }
cd "$1"
command -v go >/dev/null || { echo "$0: go not found (apt-get install golang-go)" >&2; exit 1; }
export GOFLAGS="${GOFLAGS:--mod=vendor}" GOPROXY=off
make runtimetest validation-executables COMMIT="$(git describe --always 2>/dev/null || echo unknown)"
echo "built: $(pwd)/runtimetest and $(ls validation/*/*.t | wc -l) validation programs"
