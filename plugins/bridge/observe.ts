/**
 * What the host looks like, read in-process (no spawn): /proc/net/dev always belongs
 * to this process's network namespace; /sys/class/net only when sysfs was mounted
 * for it (`ip netns exec` does that, plain `nsenter --net` does not), which we check
 * by comparing the two listings before trusting sysfs.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { linkNames } from "../../pkg/iproute2.js";

export interface HostView {
  links: Set<string>;
  /** /sys/class/net shows this namespace. */
  sysfs: boolean;
}

function sameSet(a: Set<string>, b: readonly string[]): boolean {
  return a.size === b.length && b.every((n) => a.has(n));
}

export function observeHost(): HostView {
  for (let attempt = 0; attempt < 2; attempt++) {
    const links = linkNames(readFileSync("/proc/net/dev", "utf8"));
    let sys: string[] = [];
    try {
      sys = readdirSync("/sys/class/net");
    } catch {
      return { links, sysfs: false };
    }
    if (sameSet(links, sys)) return { links, sysfs: true };
  }
  return { links: linkNames(readFileSync("/proc/net/dev", "utf8")), sysfs: false };
}

/**
 * Whether a link exists in this process's network namespace, O(1) whatever the number of
 * links: its /proc/sys/net/ipv{4,6}/conf/<name> directory (sysctl net tables always belong
 * to the reader's namespace, unlike /sys/class/net). A device without IPv4 and IPv6 (MTU
 * below 68 with IPv6 off) reads as absent: callers must tolerate "exists" from the kernel.
 */
export function linkExists(name: string): boolean {
  if (name === "" || name.includes("/") || name === "." || name === "..") return false;
  return existsSync(`/proc/sys/net/ipv4/conf/${name}`) || existsSync(`/proc/sys/net/ipv6/conf/${name}`);
}

/** The ifindex of a link of this namespace from /proc/self/net/dev_snmp6 (O(1); needs IPv6 on it). */
export function ifindexHere(name: string): number | undefined {
  if (name === "" || name.includes("/") || name === "." || name === "..") return undefined;
  try {
    const m = /^ifIndex\s+(\d+)/.exec(readFileSync(`/proc/self/net/dev_snmp6/${name}`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether /sys/class/net shows this namespace, judged in O(1) on one link: sysfs has it
 * under the same ifindex as this namespace does (`known`, e.g. from `ip -json`, or
 * /proc/self/net/dev_snmp6). `ip netns exec` mounts a sysfs of the namespace; plain
 * `nsenter --net` keeps the host's, where the same name with the same index is unlikely.
 */
export function sysfsShows(name: string, known: number | undefined = ifindexHere(name)): boolean {
  if (known === undefined) return false;
  return sysRead(name, "ifindex") === String(known);
}

function sysRead(name: string, attr: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/${attr}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

export interface LinkFacts {
  exists: boolean;
  /** Undefined when it cannot be told without a spawn (sysfs not ours). */
  isBridge?: boolean;
  mac?: string;
  /** addr_assign_type 3: the MAC was set, so joining ports will not change it. */
  macPinned?: boolean;
}

/** Facts about a host link, O(1): existence from /proc/sys, the rest from sysfs when it shows this namespace. */
export function linkFactsHere(name: string): LinkFacts {
  if (!linkExists(name)) return { exists: false };
  return linkFacts({ links: new Set([name]), sysfs: sysfsShows(name) }, name);
}

export function linkFacts(view: HostView, name: string): LinkFacts {
  if (!view.links.has(name)) return { exists: false };
  if (!view.sysfs) return { exists: true };
  const mac = sysRead(name, "address");
  return {
    exists: true,
    isBridge: existsSync(`/sys/class/net/${name}/bridge`),
    ...(mac ? { mac } : {}),
    macPinned: sysRead(name, "addr_assign_type") === "3",
  };
}

/** Operstate of a link via sysfs; undefined when sysfs is not ours. */
export function operstate(view: HostView, name: string): string | undefined {
  return view.sysfs ? sysRead(name, "operstate") : undefined;
}

/** Alias of a link via sysfs; undefined when unknown. */
export function ifalias(view: HostView, name: string): string | undefined {
  return view.sysfs ? sysRead(name, "ifalias") : undefined;
}

/**
 * Random bytes from the Web Crypto global (Node ≥ 19, bun): importing node:crypto for
 * randomBytes costs ~2.5 ms of the compiled binary's start-up.
 */
function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** A random locally administered unicast MAC, as the kernel makes them. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** "veth" + 8 hex characters, not already taken (by default: not a link of this namespace, O(1)). */
export function randomVethName(taken: Set<string> | ((name: string) => boolean) = linkExists): string {
  const isTaken = typeof taken === "function" ? taken : (n: string) => taken.has(n);
  for (;;) {
    const n = `veth${hex(randomBytes(4))}`;
    if (!isTaken(n)) return n;
  }
}

/** IPv4 addresses of this namespace: the "/32 host LOCAL" leaves of /proc/net/fib_trie. */
export function localIpv4(fibTrie: string): Set<string> {
  const out = new Set<string>();
  const lines = fibTrie.split("\n");
  let leaf = "";
  for (const l of lines) {
    const m = /^\s*\|-- (\S+)$/.exec(l);
    if (m) leaf = m[1]!;
    else if (/^\s*\/32 host LOCAL/.test(l) && leaf) out.add(leaf);
  }
  return out;
}

function hexToV4(h: string): string {
  const n = parseInt(h, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
}

/** On-link (gateway-less) IPv4 routes of `dev` from /proc/net/route, as "dst/prefix". */
export function onLinkRoutes(route: string, dev: string): Set<string> {
  const out = new Set<string>();
  for (const l of route.split("\n").slice(1)) {
    const f = l.trim().split(/\s+/);
    if (f.length < 8 || f[0] !== dev || f[2] !== "00000000") continue;
    const mask = parseInt(f[7]!, 16) >>> 0;
    let bits = 0;
    for (let m = mask; m; m >>>= 1) bits += m & 1;
    out.add(`${hexToV4(f[1]!)}/${bits}`);
  }
  return out;
}

/** Global IPv6 addresses of `dev` from /proc/net/if_inet6, as "addr/prefix" (addr fully expanded, lower case). */
export function ipv6Of(ifInet6: string, dev: string): Set<string> {
  const out = new Set<string>();
  for (const l of ifInet6.split("\n")) {
    const f = l.trim().split(/\s+/);
    if (f.length < 6 || f[5] !== dev || f[3] === "20") continue;
    const a = f[0]!.match(/.{4}/g)!.join(":");
    out.add(`${a}/${parseInt(f[2]!, 16)}`);
  }
  return out;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * The steady state, seen without a spawn: every gateway is already on the bridge and
 * nothing else is (no other IPv4 prefix route on it, no other address in a gateway's
 * subnet, no other global IPv6 address). Anything else — first pod, forceAddress
 * cases, VLAN gateways — goes through the gateway batch.
 */
export function gatewaysInPlace(dev: string, gateways: readonly { v4?: string; v4Subnet?: string; v4Prefix?: number; v6?: string }[]): boolean {
  const v4 = gateways.filter((g) => g.v4);
  const v6 = gateways.filter((g) => g.v6);
  if (v4.length) {
    const locals = localIpv4(readOr("/proc/net/fib_trie"));
    const routes = onLinkRoutes(readOr("/proc/net/route"), dev);
    const want = new Set(v4.map((g) => g.v4Subnet!));
    if (routes.size !== want.size || ![...want].every((s) => routes.has(s))) return false;
    if (!v4.every((g) => locals.has(g.v4!))) return false;
    // Another address inside a gateway subnet (10.85.0.254/16 next to 10.85.0.1/16) is a conflict to look at.
    const ours = new Set(v4.map((g) => g.v4!));
    for (const a of locals) {
      if (ours.has(a)) continue;
      for (const g of v4) if (inSubnet(a, g.v4Subnet!)) return false;
    }
  }
  if (v6.length) {
    const have = ipv6Of(readOr("/proc/net/if_inet6"), dev);
    const want = new Set(v6.map((g) => g.v6!));
    if (have.size !== want.size || ![...want].every((s) => have.has(s))) return false;
  }
  return true;
}

function inSubnet(ip: string, subnet: string): boolean {
  const [net, p] = subnet.split("/");
  const toN = (s: string): number => s.split(".").reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);
  const bits = Number(p);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((toN(ip) & mask) >>> 0) === ((toN(net!) & mask) >>> 0);
}

/** A host link as CHECK needs it, read from sysfs (only when `view.sysfs`). */
export interface SysLink {
  ifname: string;
  ifindex: number;
  /** The peer's ifindex for a veth (iflink). */
  iflink: number;
  address: string;
  isBridge: boolean;
  isBridgePort: boolean;
  master: string | undefined;
  /** dev->flags: PROMISC here also counts tcpdump's promiscuity. */
  flags: number;
}

export function sysLink(name: string): SysLink | undefined {
  const base = `/sys/class/net/${name}`;
  const ifindex = sysRead(name, "ifindex");
  if (ifindex === undefined) return undefined;
  let master: string | undefined;
  try {
    const target = readlinkSync(`${base}/master`);
    master = target.slice(target.lastIndexOf("/") + 1);
  } catch {
    master = undefined;
  }
  return {
    ifname: name,
    ifindex: Number(ifindex),
    iflink: Number(sysRead(name, "iflink") ?? 0),
    address: sysRead(name, "address") ?? "",
    isBridge: existsSync(`${base}/bridge`),
    isBridgePort: existsSync(`${base}/brport`),
    master,
    flags: parseInt(sysRead(name, "flags") ?? "0", 16),
  };
}

/** Whether each gateway ("a.b.c.d/p" or an IPv6 CIDR) is on `dev`, from /proc (no spawn). */
export function gatewaysOnDev(dev: string, gateways: readonly string[]): string[] {
  const missing: string[] = [];
  let locals: Set<string> | undefined;
  let routes: Set<string> | undefined;
  let v6: Set<string> | undefined;
  for (const g of gateways) {
    const [ip, p] = g.split("/");
    if (!ip || !p) continue;
    if (!ip.includes(":")) {
      locals ??= localIpv4(readOr("/proc/net/fib_trie"));
      routes ??= onLinkRoutes(readOr("/proc/net/route"), dev);
      const subnetOk = [...routes].some((r) => r.endsWith(`/${p}`) && inSubnet(ip, r));
      if (!locals.has(ip) || !subnetOk) missing.push(g);
    } else {
      v6 ??= ipv6Of(readOr("/proc/net/if_inet6"), dev);
      const full = expandV6(ip);
      if (!full || !v6.has(`${full}/${Number(p)}`)) missing.push(g);
    }
  }
  return missing;
}

function expandV6(s: string): string | undefined {
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<string>(fill).fill("0"), ...tail];
  if (groups.length !== 8) return undefined;
  return groups.map((g) => g.toLowerCase().padStart(4, "0")).join(":");
}
