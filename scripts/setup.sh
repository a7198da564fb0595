#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian machine (root):
# Debian packages (iproute2, iptables, nftables, the reference Go plugins, Go + libcni source
# for the test driver) and the npm dependencies. Skips what is already there unless --force.
set -euo pipefail
cd "$(dirname "$0")/.."
force=${1:-}

APT_PACKAGES="iproute2 iptables nftables iputils-ping containernetworking-plugins golang-go golang-github-appc-cni-dev conntrack procps time"

missing_apt() {
  local p
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

need=$(missing_apt | tr '\n' ' ')
if [ -n "$need" ] || [ "$force" = --force ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: installing Debian packages needs root: $need" >&2; exit 1; }
  # Only what is missing: naming an installed package would upgrade it. --force names them all.
  pkgs=$need
  if [ "$force" = --force ]; then pkgs=$APT_PACKAGES; fi
  echo "setup: apt-get install $pkgs" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >&2
fi

if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/vitest ] || [ "$force" = --force ]; then
  echo "setup: npm dependencies" >&2
  # This workplace's npm registry serves no metadata for rollup's optional platform packages
  # other than linux-x64-gnu, so `npm ci` can reject the lock as out of sync; `npm install`
  # then installs exactly the lock's versions.
  npm ci --no-audit --no-fund >&2 || npm install --no-audit --no-fund >&2
fi
