// Fixtures for the black-box bridge integration tests (test/integration/bridge-*.test.ts).
//
// The plugin directory is a parameter: env TSCNI_BIN (default <repo>/dist/bin). Run the suite
// with TSCNI_BIN=/usr/lib/cni to validate the tests against the Go reference (Debian 1.1.1);
// tests of behaviour only tscni has are declared with `itOurs` / `describeOurs` and skipped then.
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { runPlugin, runPluginAsync } from "./cni.js";
import type { CniCommand, CniNode, CniRun } from "./cni.js";
import { tool } from "./exec.js";
import { addrs, links, routes } from "./ipjson.js";
import type { IpLink } from "./ipjson.js";
import { createNetns, createPodNetns, execIn, mustExecIn } from "./netns.js";
import type { Netns } from "./netns.js";
import { GO_CNI_DIR, TSCNI_BIN_DIR } from "./paths.js";

function canonical(p: string): string {
  const abs = resolve(p);
  return existsSync(abs) ? realpathSync(abs) : abs;
}

/** CNI_PATH holding the `bridge` and `host-local` under test. */
export const PLUGIN_DIR: string = resolve(process.env["TSCNI_BIN"] ?? TSCNI_BIN_DIR);
/** True when the suite runs against the Go reference plugins. */
export const IS_REFERENCE: boolean = canonical(PLUGIN_DIR) === canonical(GO_CNI_DIR);
export const BRIDGE_EXE: string = join(PLUGIN_DIR, "bridge");
export const HOST_LOCAL_EXE: string = join(PLUGIN_DIR, "host-local");
/** The Go reference, for differential runs. */
export const GO_BRIDGE_EXE: string = join(GO_CNI_DIR, "bridge");

/** A test of behaviour only tscni has (skipped against the Go reference). */
export const itOurs = it.skipIf(IS_REFERENCE);
export const describeOurs = describe.skipIf(IS_REFERENCE);

export const DEFAULT_NET = "tscni-bridge";

export interface NetOptions {
  readonly name?: string;
  readonly cniVersion?: string;
  readonly bridge?: string;
  /** host-local ranges: one range set per subnet (two = dual stack). Default 10.85.0.0/16. */
  readonly subnets?: readonly string[];
  /** host-local routes; default a default route per family present in `subnets`. */
  readonly routes?: readonly { dst: string; gw?: string }[];
  readonly isGateway?: boolean;
  readonly ipMasq?: boolean;
  /** Any other bridge key (mtu, vlan, hairpinMode, nonMasqueradeCIDRs, …). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** Replace the whole ipam object. */
  readonly ipam?: Readonly<Record<string, unknown>>;
}

/** A single-plugin network config for stdin (the seed scenario: cni0, 10.85.0.0/16, gateway, masquerade). */
export function netConf(node: CniNode, o: NetOptions = {}): Record<string, unknown> {
  const subnets = o.subnets ?? ["10.85.0.0/16"];
  const defRoutes = [
    ...(subnets.some((s) => !s.includes(":")) ? [{ dst: "0.0.0.0/0" }] : []),
    ...(subnets.some((s) => s.includes(":")) ? [{ dst: "::/0" }] : []),
  ];
  return {
    cniVersion: o.cniVersion ?? "1.0.0",
    name: o.name ?? DEFAULT_NET,
    type: "bridge",
    bridge: o.bridge ?? "cni0",
    isGateway: o.isGateway ?? true,
    ipMasq: o.ipMasq ?? true,
    ...o.extra,
    ipam: o.ipam ?? {
      type: "host-local",
      dataDir: node.dataDir,
      ranges: subnets.map((s) => [{ subnet: s }]),
      routes: o.routes ?? defRoutes,
    },
  };
}

export function newContainerId(): string {
  return `tscni-${randomBytes(8).toString("hex")}`;
}

export interface CallOptions {
  readonly exe?: string;
  readonly containerId?: string;
  /** CNI_NETNS; "" sends it empty. */
  readonly netns?: string;
  readonly ifname?: string;
  readonly args?: string;
  readonly path?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

function bridgeInvocation(node: CniNode, command: CniCommand, config: object | string, o: CallOptions): Parameters<typeof runPlugin>[0] {
  return {
    node: node.netns.name,
    exe: o.exe ?? BRIDGE_EXE,
    command,
    config,
    containerId: o.containerId,
    netns: o.netns,
    ifname: o.ifname,
    args: o.args,
    path: o.path ?? PLUGIN_DIR,
    env: o.env,
    timeoutMs: o.timeoutMs,
  };
}

/** Run the bridge plugin in the node netns. */
export function callBridge(node: CniNode, command: CniCommand, config: object | string, o: CallOptions = {}): CniRun {
  return runPlugin(bridgeInvocation(node, command, config, o));
}

export function callBridgeAsync(node: CniNode, command: CniCommand, config: object | string, o: CallOptions = {}): Promise<CniRun> {
  return runPluginAsync(bridgeInvocation(node, command, config, o));
}

// Result JSON (any version ≥ 0.3.0) — only what the tests read.
export interface ResultIp {
  readonly address: string;
  readonly gateway?: string;
  readonly interface?: number;
  readonly version?: string;
}
export interface ResultIface {
  readonly name: string;
  readonly mac?: string;
  readonly sandbox?: string;
  readonly mtu?: number;
}
export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces?: ResultIface[];
  readonly ips?: ResultIp[];
  readonly routes?: { dst: string; gw?: string }[];
  readonly dns?: Record<string, unknown>;
  readonly ip4?: { ip: string; gateway?: string };
  readonly ip6?: { ip: string; gateway?: string };
}

export interface Pod {
  readonly netns: Netns;
  readonly containerId: string;
  readonly ifname: string;
  readonly result: CniResult;
  readonly conf: object;
}

function describeRun(what: string, r: CniRun): string {
  return `${what} failed (exit ${r.code}): stdout=${r.stdout.trim()} stderr=${r.stderr.trim().slice(-1500)}`;
}

export interface AddOptions extends CallOptions {
  readonly pod?: Netns;
}

/** ADD a fresh pod netns (or o.pod); throws with the plugin's output when it fails. */
export function addPod(node: CniNode, conf: object, o: AddOptions = {}): Pod {
  const pod = o.pod ?? createPodNetns();
  const containerId = o.containerId ?? newContainerId();
  const ifname = o.ifname ?? "eth0";
  const r = callBridge(node, "ADD", conf, { ...o, containerId, netns: o.netns ?? pod.path, ifname });
  if (r.code !== 0) throw new Error(describeRun("ADD", r));
  return { netns: pod, containerId, ifname, result: r.json as CniResult, conf };
}

export async function addPodAsync(node: CniNode, conf: object, o: AddOptions = {}): Promise<Pod> {
  const pod = o.pod ?? createPodNetns();
  const containerId = o.containerId ?? newContainerId();
  const ifname = o.ifname ?? "eth0";
  const r = await callBridgeAsync(node, "ADD", conf, { ...o, containerId, netns: o.netns ?? pod.path, ifname });
  if (r.code !== 0) throw new Error(describeRun("ADD", r));
  return { netns: pod, containerId, ifname, result: r.json as CniResult, conf };
}

/** DEL a pod (CNI_NETNS = its path unless o.netns overrides, "" for empty). */
export function delPod(node: CniNode, pod: Pod, o: CallOptions = {}): CniRun {
  return callBridge(node, "DEL", pod.conf, { containerId: pod.containerId, netns: pod.netns.path, ifname: pod.ifname, ...o });
}

export function delPodAsync(node: CniNode, pod: Pod, o: CallOptions = {}): Promise<CniRun> {
  return callBridgeAsync(node, "DEL", pod.conf, { containerId: pod.containerId, netns: pod.netns.path, ifname: pod.ifname, ...o });
}

export function mustSucceed(what: string, r: CniRun): CniRun {
  if (r.code !== 0) throw new Error(describeRun(what, r));
  return r;
}

/** The pod's IP (no prefix) of one family from the result. */
export function podIp(p: Pod | CniResult, family: 4 | 6 = 4): string {
  const res = "result" in p ? p.result : p;
  const ip = (res.ips ?? []).find((i) => i.address.includes(":") === (family === 6));
  if (ip === undefined) throw new Error(`no IPv${family} in result ${JSON.stringify(res)}`);
  return ip.address.split("/")[0] as string;
}

// ---------------------------------------------------------------- kernel state

export function linkIn(ns: string, name: string): IpLink | undefined {
  return links(ns).find((l) => l.ifname === name);
}

/** The node-side veth whose peer is the pod's interface. */
export function hostVethOf(node: CniNode, pod: Pod): IpLink {
  const podLink = linkIn(pod.netns.name, pod.ifname);
  if (podLink === undefined) throw new Error(`no ${pod.ifname} in ${pod.netns.name}`);
  const idx = podLink["link_index"] as number | undefined;
  const host = links(node.netns.name).find((l) => l.ifindex === idx && l.linkinfo?.info_kind === "veth");
  if (host === undefined) throw new Error(`no host veth with ifindex ${String(idx)} in ${node.netns.name}`);
  return host;
}

export function vethsIn(ns: string): IpLink[] {
  return links(ns).filter((l) => l.linkinfo?.info_kind === "veth");
}

export function bridgesIn(ns: string): IpLink[] {
  return links(ns).filter((l) => l.linkinfo?.info_kind === "bridge");
}

/** "addr/len" of a link, by family, excluding link-local IPv6. */
export function globalCidrs(ns: string, dev: string, family: 4 | 6 = 4): string[] {
  const fam = family === 4 ? "inet" : "inet6";
  return addrs(ns, dev).flatMap((l) =>
    l.addr_info.filter((a) => a.family === fam && a.scope !== "link").map((a) => `${a.local}/${a.prefixlen}`),
  );
}

/** A sysctl read inside a netns through /proc/sys. */
export function procSys(ns: string, key: string): string {
  return mustExecIn(ns, [tool("cat"), `/proc/sys/${key.replaceAll(".", "/")}`]).trim();
}

/** Lines of `iptables-save -t nat` (and ip6tables) without comments or counters. */
export function natRules(ns: string, v6 = false): string[] {
  const r = execIn(ns, [tool(v6 ? "ip6tables-save" : "iptables-save"), "-t", "nat"]);
  if (r.code !== 0) return [];
  return r.stdout
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ""));
}

/** Every nat line (both families) that mentions a CNI- chain. */
export function cniNatLines(ns: string): string[] {
  return [...natRules(ns), ...natRules(ns, true)].filter((l) => l.includes("CNI-"));
}

export function nftText(ns: string): string {
  const r = execIn(ns, [tool("nft"), "list", "ruleset"]);
  return r.code === 0 ? r.stdout : "";
}

export function bridgeVlans(ns: string): { ifname: string; vlans: { vlan: number; vlanEnd?: number; flags?: string[] }[] }[] {
  const out = mustExecIn(ns, [tool("bridge"), "-j", "vlan", "show"]).trim();
  return out === "" ? [] : (JSON.parse(out) as { ifname: string; vlans: { vlan: number; vlanEnd?: number; flags?: string[] }[] }[]);
}

export function bridgePortDetails(ns: string): Record<string, unknown>[] {
  const out = mustExecIn(ns, [tool("bridge"), "-d", "-j", "link", "show"]).trim();
  return out === "" ? [] : (JSON.parse(out) as Record<string, unknown>[]);
}

/** IP files host-local keeps for a network (reservations), excluding lock/last_reserved_ip.*. */
export function reservations(dataDir: string, network = DEFAULT_NET): string[] {
  const dir = join(dataDir, network);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f !== "lock" && !f.startsWith("last_reserved_ip") && !f.startsWith("."));
}

export function reservationOwner(dataDir: string, ip: string, network = DEFAULT_NET): string[] {
  return readFileSync(join(dataDir, network, ip), "utf8").split(/\r?\n/);
}

export interface CtEntry {
  readonly proto: string;
  readonly orig: { src: string; dst: string };
  readonly reply: { src: string; dst: string };
  readonly line: string;
}

/** conntrack -L inside a netns, parsed (first src/dst pair = original, second = reply). */
export function conntrack(ns: string, family: 4 | 6 = 4): CtEntry[] {
  const r = execIn(ns, [tool("conntrack"), "-L", "-f", family === 4 ? "ipv4" : "ipv6"]);
  if (r.code !== 0) return [];
  return r.stdout
    .split("\n")
    .filter((l) => l.includes("src="))
    .map((line) => {
      const src = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => m[1] as string);
      const dst = [...line.matchAll(/\bdst=(\S+)/g)].map((m) => m[1] as string);
      return {
        proto: line.split(/\s+/)[0] ?? "",
        orig: { src: src[0] ?? "", dst: dst[0] ?? "" },
        reply: { src: src[1] ?? "", dst: dst[1] ?? "" },
        line,
      };
    });
}

export function pingOk(fromNs: string, addr: string): boolean {
  const v6 = addr.includes(":");
  return execIn(fromNs, [tool("ping"), ...(v6 ? ["-6"] : []), "-c1", "-W1", addr]).code === 0;
}

/** Ping with a few retries (first packet may wait for ARP/ND/DAD). */
export function pingEventually(fromNs: string, addr: string, tries = 3): boolean {
  for (let i = 0; i < tries; i++) if (pingOk(fromNs, addr)) return true;
  return false;
}

export interface SnapshotOptions {
  /**
   * "tree": every file under the data dir (a failed validation must not even touch IPAM);
   * "reservations": only the IP files (a failure after IPAM ran may leave host-local's lock,
   * last_reserved_ip cursor and tscni's index behind, as the reference does, but no reservation).
   */
  readonly data?: "tree" | "reservations";
}

/** Everything of the node netns a failed ADD must leave unchanged (link-local IPv6 aside: it appears asynchronously). */
export function nodeSnapshot(node: CniNode, o: SnapshotOptions = {}): Record<string, unknown> {
  const ns = node.netns.name;
  const linkState = links(ns).map((l) => ({
    ifname: l.ifname,
    kind: l.linkinfo?.info_kind,
    master: l.master,
    mtu: l.mtu,
    flags: l.flags,
    address: l.address,
  }));
  const addrState = addrs(ns).map((l) => ({
    ifname: l.ifname,
    addrs: l.addr_info.filter((a) => !a.local.startsWith("fe80:")).map((a) => `${a.local}/${a.prefixlen}`),
  }));
  const notLinkLocal = (r: { dst: string }): boolean => !r.dst.startsWith("fe80:");
  return {
    links: linkState,
    addrs: addrState,
    routes4: routes(ns, { family: 4, table: "all" }),
    routes6: routes(ns, { family: 6, table: "all" }).filter(notLinkLocal),
    nat4: natRules(ns),
    nat6: natRules(ns, true),
    nft: nftText(ns),
    ipForward: procSys(ns, "net.ipv4.ip_forward"),
    data: o.data === "reservations" ? allReservations(node.dataDir).sort() : existsSync(node.dataDir) ? listTree(node.dataDir) : [],
  };
}

function listTree(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? [`${prefix}${e.name}/`, ...listTree(join(dir, e.name), `${prefix}${e.name}/`)] : [`${prefix}${e.name}`],
  );
}

/** Reservation files under the data dir (excluding lock/last_reserved), any network. */
export function allReservations(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  // Not reservations: host-local's lock, its cursor, and tscni's by-attachment index under .tscni/
  // (ADD runs IPAM in parallel with the link batch, so a failed batch may leave the index behind).
  return listTree(dataDir).filter((f) => !f.endsWith("/") && !/(^|\/)(lock|last_reserved_ip\.\d+)$/.test(f) && !/^\.tscni\//.test(f));
}

// ---------------------------------------------------------------- topology

export interface ExternalHost {
  readonly netns: Netns;
  /** The external host's address (no prefix). */
  readonly addr: string;
  /** The node's address on the link to it (what masquerade should show). */
  readonly nodeAddr: string;
  readonly addr6?: string;
  readonly nodeAddr6?: string;
}

/**
 * An "external host" netns reached through a veth from the node netns: node 198.51.100.1/24,
 * host 198.51.100.2/24 (and fd51:100::1/2 with v6). It has no route back to pod subnets, so it
 * only answers pods whose traffic is masqueraded.
 */
export function addExternalHost(node: CniNode, o: { v6?: boolean; extraAddrs?: readonly string[] } = {}): ExternalHost {
  const ext = createNetns("ext");
  const ip = tool("ip");
  const nodeNs = node.netns.name;
  mustExecIn(nodeNs, [ip, "link", "add", "to-ext", "type", "veth", "peer", "name", "eth0", "netns", ext.name]);
  mustExecIn(nodeNs, [ip, "addr", "add", "198.51.100.1/24", "dev", "to-ext"]);
  mustExecIn(ext.name, [ip, "addr", "add", "198.51.100.2/24", "dev", "eth0"]);
  for (const a of o.extraAddrs ?? []) mustExecIn(ext.name, [ip, "addr", "add", a, "dev", "eth0", ...(a.includes(":") ? ["nodad"] : [])]);
  if (o.v6 === true) {
    mustExecIn(nodeNs, [ip, "addr", "add", "fd51:100::1/64", "dev", "to-ext", "nodad"]);
    mustExecIn(ext.name, [ip, "addr", "add", "fd51:100::2/64", "dev", "eth0", "nodad"]);
  }
  mustExecIn(nodeNs, [ip, "link", "set", "to-ext", "up"]);
  mustExecIn(ext.name, [ip, "link", "set", "eth0", "up"]);
  return {
    netns: ext,
    addr: "198.51.100.2",
    nodeAddr: "198.51.100.1",
    ...(o.v6 === true ? { addr6: "fd51:100::2", nodeAddr6: "fd51:100::1" } : {}),
  };
}

/** Count packets arriving at a netns from `src` (an nft counter in that netns, which the test owns). */
export function countArrivals(ns: string, src: string): () => number {
  const fam = src.includes(":") ? "ip6" : "ip";
  const table = `tscni_probe_${randomBytes(3).toString("hex")}`;
  const script = [
    `table ${fam} ${table} {`,
    `  chain input { type filter hook input priority 0; policy accept;`,
    `    ${fam} saddr ${src} counter`,
    `  }`,
    `}`,
  ].join("\n");
  mustExecIn(ns, [tool("nft"), "-f", "-"], { input: script });
  return () => {
    const out = mustExecIn(ns, [tool("nft"), "-j", "list", "table", fam, table]);
    const items = (JSON.parse(out) as { nftables: Record<string, unknown>[] }).nftables;
    for (const it of items) {
      const rule = it["rule"] as { expr?: Record<string, unknown>[] } | undefined;
      const counter = rule?.expr?.find((e) => "counter" in e)?.["counter"] as { packets: number } | undefined;
      if (counter !== undefined) return counter.packets;
    }
    return 0;
  };
}

/** Join two node netns with a veth (link `to-<peerTag>` on each side), addresses given with prefix. */
export function linkNodes(a: CniNode, aAddr: string, b: CniNode, bAddr: string): void {
  const ip = tool("ip");
  mustExecIn(a.netns.name, [ip, "link", "add", "to-peer", "type", "veth", "peer", "name", "to-peer", "netns", b.netns.name]);
  mustExecIn(a.netns.name, [ip, "addr", "add", aAddr, "dev", "to-peer"]);
  mustExecIn(b.netns.name, [ip, "addr", "add", bAddr, "dev", "to-peer"]);
  mustExecIn(a.netns.name, [ip, "link", "set", "to-peer", "up"]);
  mustExecIn(b.netns.name, [ip, "link", "set", "to-peer", "up"]);
}

export function addRoute(ns: string, dst: string, via: string): void {
  mustExecIn(ns, [tool("ip"), "route", "add", dst, "via", via]);
}

/** Expect a CNI error object on stdout with one of the codes. */
export function expectCniError(r: CniRun, codes: readonly number[] | undefined): void {
  expect(r.code, `plugin should fail; stdout=${r.stdout} stderr=${r.stderr}`).not.toBe(0);
  const err = JSON.parse(r.stdout) as { code: number; msg: string };
  expect(typeof err.code).toBe("number");
  expect(typeof err.msg).toBe("string");
  if (codes !== undefined) expect(codes, `error ${r.stdout}`).toContain(err.code);
}

let vlanFilteringCache: boolean | undefined;

/** Whether this kernel can do bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); probed in a throwaway netns. */
export function kernelHasVlanFiltering(): boolean {
  if (vlanFilteringCache !== undefined) return vlanFilteringCache;
  const ns = createNetns("probe");
  const r = execIn(ns.name, [tool("ip"), "link", "add", "probe0", "type", "bridge", "vlan_filtering", "1"]);
  vlanFilteringCache = r.code === 0;
  return vlanFilteringCache;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Poll `read` until `done(value)` or the timeout; returns the last value (for asserting). */
export function eventually<T>(read: () => T, done: (v: T) => boolean, timeoutMs = 5000): T {
  const end = Date.now() + timeoutMs;
  let v = read();
  while (!done(v) && Date.now() < end) {
    sleepMs(50);
    v = read();
  }
  return v;
}

