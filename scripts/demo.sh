#!/usr/bin/env bash
# The seeds' scenario, end to end, on throwaway network namespaces:
#   a "node" netns with the cni0 bridge (10.85.0.0/16, ipMasq), two pods, and an
#   "external host" (198.51.100.2) that the node reaches through a veth.
# Pods are attached by tscni's bridge + host-local through libcni (the library
# cnitool, containerd and CRI-O use). Everything is removed at the end, pass or fail.
# Needs root. Usage: bash scripts/demo.sh [--no-build]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ "$(id -u)" != 0 ]; then echo "demo: run as root (it creates network namespaces)" >&2; exit 1; fi
if [ "${1:-}" != "--no-build" ]; then
  bash scripts/setup.sh
  npm run -s build
  bash scripts/build-driver.sh
fi

tag="tscni-demo-$$"
node="$tag-node"; pod1="$tag-pod1"; pod2="$tag-pod2"; ext="$tag-ext"
work=$(mktemp -d /tmp/tscni-demo.XXXXXX)
cleanup() {
  for ns in "$pod1" "$pod2" "$ext" "$node"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# A trapped INT/TERM would otherwise run cleanup and then go on with the next step.
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_node() { ip netns exec "$node" "$@"; }

step "throwaway netns: $node (the node), $pod1, $pod2, $ext (an 'external host')"
for ns in "$node" "$pod1" "$pod2" "$ext"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$node" link add uplink type veth peer name eth0 netns "$ext"
ip -n "$node" addr add 198.51.100.1/24 dev uplink && ip -n "$node" link set uplink up
ip -n "$ext" addr add 198.51.100.2/24 dev eth0 && ip -n "$ext" link set eth0 up

mkdir -p "$work/net.d" "$work/ipam" "$work/cache"
cat > "$work/net.d/10-demo.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "demo",
  "plugins": [{
    "type": "bridge",
    "bridge": "cni0",
    "isGateway": true,
    "ipMasq": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{ "subnet": "10.85.0.0/16" }]],
      "routes": [{ "dst": "0.0.0.0/0" }],
      "dataDir": "$work/ipam"
    }
  }]
}
JSON
step "the network config (/etc/cni/net.d style)"
cat "$work/net.d/10-demo.conflist"

cni() { # cni add|check|del POD
  in_node env NETCONFPATH="$work/net.d" CNI_PATH="$repo/dist/bin" CNI_CACHE_DIR="$work/cache" \
    CNI_CONTAINERID="$2" "$repo/test/libcni-driver/cnidriver" "$1" demo "/var/run/netns/$2"
}

for p in "$pod1" "$pod2"; do
  step "ADD $p (libcni → tscni bridge → tscni host-local)"
  cni add "$p"
  echo
done

for p in "$pod1" "$pod2"; do
  step "inside $p: ip addr, ip route"
  ip -n "$p" -brief addr show
  ip -n "$p" route show
done

step "on the node: the bridge and its ports"
ip -n "$node" -brief addr show cni0
ip -n "$node" -brief link show master cni0
step "on the node: the reservations host-local wrote"
for f in "$work/ipam/demo/"*; do printf '%s: %s\n' "$(basename "$f")" "$(tr '\r\n' '  ' < "$f")"; done
step "on the node: who owns which veth, address and chain (tscni show)"
in_node "$repo/dist/bin/tscni" show --data-dir "$work/ipam" --cache-dir "$work/cache" --no-trunc
step "on the node: masquerade rules (nat table)"
in_node iptables-save -t nat | grep -E 'CNI-|^\*nat' || true

ip1=$(ip -n "$pod1" -j addr show eth0 | node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(a[0].addr_info.find(i=>i.family==="inet").local)')
ip2=$(ip -n "$pod2" -j addr show eth0 | node -e 'const a=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(a[0].addr_info.find(i=>i.family==="inet").local)')
step "ping $pod1 ($ip1) -> $pod2 ($ip2)"
ip netns exec "$pod1" ping -c 2 -W 1 "$ip2"
step "ping $pod1 -> the external host 198.51.100.2 (only reachable through masquerade)"
ip netns exec "$pod1" ping -c 2 -W 1 198.51.100.2
step "conntrack on the node: the pod's source address is rewritten to the node's (198.51.100.1)"
in_node conntrack -L -p icmp 2>/dev/null | grep 198.51.100 || true

step "CHECK both pods"
for p in "$pod1" "$pod2"; do cni check "$p" && echo "$p: ok"; done

for p in "$pod1" "$pod2"; do step "DEL $p"; cni del "$p" && echo "$p: deleted"; done
step "after DEL: no veth ports, no reservations, no CNI- rules"
ip -n "$node" -brief link show master cni0
ls -A "$work/ipam/demo/" | grep -Ev '^(lock|last_reserved_ip\..*)$' || echo "(no reservations)"
in_node iptables-save -t nat | grep -c 'CNI-' || true
step "cleaning up the throwaway namespaces"
