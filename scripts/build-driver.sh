#!/usr/bin/env bash
# Build the libcni test driver (test/libcni-driver/cnidriver) against Debian's libcni source.
set -euo pipefail
cd "$(dirname "$0")/../test/libcni-driver"
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ]; then export GOCACHE=/tmp/tscni-gocache; fi
GO111MODULE=off GOPATH=/usr/share/gocode go build -o cnidriver .
