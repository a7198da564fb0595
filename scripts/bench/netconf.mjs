// The one network config every benchmark contender gets (scripts/bench.mjs and
// scripts/bench/profile.mjs): only the masquerade backend, the data dir and the optional
// logFile differ. The Go reference ignores ipMasqBackend (it has iptables only).
export function benchNetConf({ backend, subnet, dataDir, logFile }) {
  return {
    cniVersion: "1.0.0",
    name: "tscni-bench",
    type: "bridge",
    bridge: "cni0",
    isGateway: true,
    ipMasq: true,
    ipMasqBackend: backend,
    hairpinMode: false,
    ipam: { type: "host-local", ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }], dataDir },
    ...(logFile ? { logFile } : {}),
  };
}
