// The kernel's view of a netns through `ip -j` (iproute2 JSON output).
import { mustRun, tool } from "./exec.js";

export interface IpLinkInfo {
  readonly info_kind?: string;
  readonly info_data?: Record<string, unknown>;
  readonly info_slave_kind?: string;
  readonly info_slave_data?: Record<string, unknown>;
}

export interface IpLink {
  readonly ifindex: number;
  readonly ifname: string;
  readonly flags: readonly string[];
  readonly mtu: number;
  readonly operstate: string;
  readonly address?: string;
  readonly master?: string;
  readonly link?: string | null;
  readonly link_netnsid?: number;
  readonly promiscuity?: number;
  readonly linkinfo?: IpLinkInfo;
  readonly [key: string]: unknown;
}

export interface IpAddrInfo {
  readonly family: "inet" | "inet6";
  readonly local: string;
  readonly prefixlen: number;
  readonly scope: string;
  readonly broadcast?: string;
  readonly [key: string]: unknown;
}

export interface IpAddrLink extends IpLink {
  readonly addr_info: readonly IpAddrInfo[];
}

export interface IpRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  readonly protocol?: string;
  readonly scope?: string;
  readonly prefsrc?: string;
  readonly table?: string;
  readonly type?: string;
  readonly flags: readonly string[];
  readonly [key: string]: unknown;
}

function ipJson<T>(ns: string, args: readonly string[]): T[] {
  const out = mustRun(tool("ip"), ["-n", ns, "-j", ...args]).trim();
  return out === "" ? [] : (JSON.parse(out) as T[]);
}

/** All links of a netns, with details (`ip -d`: linkinfo, bridge/veth data). */
export function links(ns: string): IpLink[] {
  return ipJson<IpLink>(ns, ["-d", "link", "show"]);
}

export function link(ns: string, name: string): IpLink | undefined {
  return links(ns).find((l) => l.ifname === name);
}

/** Addresses per link; `dev` limits to one link. */
export function addrs(ns: string, dev?: string): IpAddrLink[] {
  return ipJson<IpAddrLink>(ns, ["addr", "show", ...(dev === undefined ? [] : ["dev", dev])]);
}

/** "10.85.0.2/16"-style addresses of one link (or all links), by family. */
export function cidrs(ns: string, dev?: string, family: 4 | 6 = 4): string[] {
  const fam = family === 4 ? "inet" : "inet6";
  return addrs(ns, dev).flatMap((l) => l.addr_info.filter((a) => a.family === fam).map((a) => `${a.local}/${a.prefixlen}`));
}

export interface RouteQuery {
  readonly family?: 4 | 6;
  /** "main" by default; "all" for every table. */
  readonly table?: string;
}

export function routes(ns: string, q: RouteQuery = {}): IpRoute[] {
  const fam = q.family === undefined ? [] : [`-${q.family}`];
  return ipJson<IpRoute>(ns, [...fam, "route", "show", "table", q.table ?? "main"]);
}

/** Links of a bridge's ports (links whose master is `bridge`). */
export function bridgePorts(ns: string, bridge: string): IpLink[] {
  return links(ns).filter((l) => l.master === bridge);
}
