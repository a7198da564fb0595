// Differential: the Go reference bridge (+ its host-local) and the bridge under test run the
// same config in two fresh node netns, same container id; the kernel state (names of veths and
// MACs aside) and the printed results must match. Against TSCNI_BIN=/usr/lib/cni this compares
// the reference with itself, which proves the normalisation is deterministic.
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import type { CniNode } from "../helpers/cni.js";
import { addrs, links, routes } from "../helpers/ipjson.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  BRIDGE_EXE,
  GO_BRIDGE_EXE,
  PLUGIN_DIR,
  addPod,
  bridgePortDetails,
  natRules,
  netConf,
  procSys,
} from "../helpers/bridge-fixtures.js";
import type { NetOptions, Pod } from "../helpers/bridge-fixtures.js";

autoCleanup();

const GO_DIR = "/usr/lib/cni";
const MAC_RE = /\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b/g;

/** Replace veth names (veth + 8 hex) by their order of appearance, MACs by a token. */
function normaliser(): (v: unknown) => unknown {
  const names = new Map<string, string>();
  const fix = (s: string): string =>
    s
      .replace(/\bveth[0-9a-f]{8}\b/g, (n) => {
        if (!names.has(n)) names.set(n, `veth#${names.size}`);
        return names.get(n) as string;
      })
      .replace(MAC_RE, "<mac>")
      .replace(/\/run\/netns\/tscni-t-[\w-]+/g, "<netns>");
  // An empty "dns": {} and no "dns" at all say the same thing.
  const dropEmptyDns = (_k: string, val: unknown): unknown =>
    val !== null && typeof val === "object" && !Array.isArray(val) && "dns" in val && JSON.stringify((val as { dns: unknown }).dns) === "{}"
      ? Object.fromEntries(Object.entries(val).filter(([k]) => k !== "dns"))
      : val;
  return (v) => JSON.parse(fix(JSON.stringify(v, dropEmptyDns))) as unknown;
}

function linkState(ns: string): unknown[] {
  // Unsorted: veth names are random; runSide sorts after normalising them.
  return links(ns).map((l) => ({
      ifname: l.ifname,
      kind: l.linkinfo?.info_kind,
      master: l.master,
      mtu: l.mtu,
      flags: [...l.flags].sort(),
      promiscuity: l.promiscuity,
      // Queues differ on purpose (tscni: one tx/rx queue per veth, see bridge-options) and
      // txqlen is moot on a veth (IFF_NO_QUEUE): neither is compared.
      vlanFiltering: l.linkinfo?.info_data?.["vlan_filtering"],
      stp: l.linkinfo?.info_data?.["stp_state"],
    }));
}

function addrState(ns: string): unknown[] {
  return addrs(ns)
    .map((l) => ({
      ifname: l.ifname,
      addrs: l.addr_info
        .filter((a) => a.scope !== "link")
        .map((a) => ({ local: a.local, prefixlen: a.prefixlen, family: a.family, scope: a.scope, broadcast: a.broadcast }))
        .sort((a, b) => a.local.localeCompare(b.local)),
    }))
    .filter((l) => l.addrs.length > 0)
    .sort((a, b) => a.ifname.localeCompare(b.ifname)); // host veths hold no global address
}

function routeState(ns: string): unknown[] {
  const strip = (r: Record<string, unknown>): Record<string, unknown> => {
    const { expires: _e, ...rest } = r;
    return rest;
  };
  return [
    ...routes(ns, { family: 4 }).map((r) => strip(r)),
    ...routes(ns, { family: 6 }).filter((r) => !r.dst.startsWith("fe80")).map((r) => strip(r)),
  ];
}

function sysctls(ns: string, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [k, procSys(ns, k)]));
}

function kernelState(node: CniNode, pod: Pod, dual: boolean, bridge: string): unknown {
  const n = node.netns.name;
  const p = pod.netns.name;
  return {
    node: {
      links: linkState(n),
      addrs: addrState(n),
      routes: routeState(n),
      ports: bridgePortDetails(n).map((b) => ({
        ifname: b["ifname"],
        master: b["master"],
        state: b["state"],
        hairpin: b["hairpin"],
        isolated: b["isolated"],
        learning: b["learning"],
        flood: b["flood"],
      })),
      nat4: natRules(n),
      nat6: natRules(n, true),
      sysctl: sysctls(n, [
        "net.ipv4.ip_forward",
        ...(dual ? ["net.ipv6.conf.all.forwarding"] : []),
        `net.ipv6.conf.${bridge}.accept_ra`,
      ]),
    },
    pod: {
      links: linkState(p),
      addrs: addrState(p),
      routes: routeState(p),
      // Not net.ipv6.conf.eth0.accept_ra: tscni sets it to 0 with IPv6 addresses (issue 4),
      // the reference leaves the default — a deliberate difference (bridge-options tests it).
      sysctl: sysctls(p, ["net.ipv4.conf.eth0.arp_notify"]),
    },
  };
}

interface Scenario {
  readonly name: string;
  readonly opts: NetOptions;
  readonly dual?: boolean;
  readonly pods?: number;
}

const SCENARIOS: readonly Scenario[] = [
  { name: "seed scenario (gateway, ipMasq), 2 pods", opts: {}, pods: 2 },
  { name: "cniVersion 0.3.1", opts: { cniVersion: "0.3.1" } },
  { name: "cniVersion 0.4.0", opts: { cniVersion: "0.4.0" } },
  { name: "dual stack with ipMasq", opts: { subnets: ["10.85.0.0/16", "fd85::/64"] }, dual: true },
  { name: "isDefaultGateway without IPAM routes", opts: { routes: [], ipMasq: false, extra: { isDefaultGateway: true } } },
  { name: "L2 only (no gateway), mtu 1400, hairpin", opts: { isGateway: false, ipMasq: false, extra: { mtu: 1400, hairpinMode: true } } },
  { name: "promiscMode, dns", opts: { ipMasq: false, extra: { promiscMode: true, dns: { nameservers: ["10.96.0.10"] } } } },
  { name: "custom bridge cnio0, /24", opts: { bridge: "cnio0", subnets: ["10.200.0.0/24"], extra: {} } },
];

function runSide(exe: string, cniPath: string, s: Scenario): { results: unknown[]; state: unknown } {
  const node = createCniNode();
  const conf = netConf(node, s.opts);
  const pods: Pod[] = [];
  for (let i = 0; i < (s.pods ?? 1); i++) {
    pods.push(addPod(node, conf, { exe, path: cniPath, containerId: `diff-${i}` }));
  }
  const norm = normaliser();
  const last = pods[pods.length - 1] as Pod;
  const out = norm({ results: pods.map((p) => p.result), state: kernelState(node, last, s.dual === true, s.opts.bridge ?? "cni0") }) as {
    results: unknown[];
    state: { node: { links: { ifname: string }[] }; pod: { links: { ifname: string }[] } };
  };
  // Creation order (ifindex) is an implementation detail: compare links by normalised name.
  for (const side of [out.state.node, out.state.pod]) side.links.sort((a, b) => a.ifname.localeCompare(b.ifname));
  return out;
}

describe("differential: Go reference vs the plugin under test", () => {
  for (const s of SCENARIOS) {
    it(s.name, () => {
      const go = runSide(GO_BRIDGE_EXE, GO_DIR, s);
      const ours = runSide(BRIDGE_EXE, PLUGIN_DIR, s);
      expect(ours.results).toEqual(go.results);
      expect(ours.state).toEqual(go.state);
    });
  }
});
