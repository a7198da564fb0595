/**
 * The pod side of an ADD: one process in the pod's network namespace. Sysctls under
 * /proc/sys/net belong to the namespace of the process that writes them, and `ip`
 * cannot write them, so the plan is a small /bin/sh script: the per-interface sysctls
 * first (arp_notify before the link goes up, IPv6 enabled before an IPv6 address),
 * then `exec ip -batch -` reading the address, link and route lines from stdin.
 */
import { formatCidr, parseCidr, subnetOf, type Cidr } from "../../pkg/ip.js";
import { line } from "../../pkg/iproute2.js";
import { ifKey, keyPath, type SysctlKey } from "../../pkg/sysctl.js";
import type { IpConfig, Route } from "../../pkg/types/result.js";
import { routeGateway } from "./gateways.js";

export interface PodPlanInput {
  ifname: string;
  addresses: readonly Cidr[];
  ips: readonly IpConfig[];
  routes: readonly Route[];
  enabledad: boolean;
  /** disableContainerInterface: leave the link down. */
  linkDown: boolean;
}

export interface SysctlWrite {
  key: SysctlKey;
  value: string;
}

export interface PodPlan {
  sysctls: SysctlWrite[];
  lines: string[];
  /**
   * enabledad with IPv6 addresses on an interface that goes up: the interface whose
   * addresses must leave "tentative" (DAD done) before the ADD returns, as the reference
   * waits (ip.SettleAddresses, 10 s).
   */
  settleDad?: string;
}

export function planPod(p: PodPlanInput): PodPlan {
  const sysctls: SysctlWrite[] = [];
  const hasV6 = p.addresses.some((a) => a.ip.family === 6);
  if (hasV6) {
    sysctls.push({ key: ifKey(6, "lo", "disable_ipv6"), value: "0" });
    sysctls.push({ key: ifKey(6, p.ifname, "disable_ipv6"), value: "0" });
    // Issue 4: the pod side gets accept_ra=0 with IPv6 addresses (the reference leaves it
    // alone; a router advertisement must not add addresses or routes IPAM did not give).
    sysctls.push({ key: ifKey(6, p.ifname, "accept_ra"), value: "0" });
    if (p.enabledad) {
      sysctls.push({ key: ifKey(6, p.ifname, "enhanced_dad"), value: "1" });
      sysctls.push({ key: ifKey(6, p.ifname, "accept_dad"), value: "1" });
    } else {
      sysctls.push({ key: ifKey(6, p.ifname, "accept_dad"), value: "0" });
    }
  }
  if (p.addresses.length > 0) sysctls.push({ key: ifKey(4, p.ifname, "arp_notify"), value: "1" });

  const lines: string[] = [];
  // Addresses before the link goes up: with arp_notify the kernel announces them at NETDEV_UP.
  for (const a of p.addresses) {
    lines.push(line("addr", "add", formatCidr(a), ...broadcast(a), "dev", p.ifname, ...(a.ip.family === 6 && !p.enabledad ? ["nodad"] : [])));
  }
  if (!p.linkDown) lines.push(line("link", "set", "dev", p.ifname, "up"));
  for (const r of p.routes) lines.push(routeLine(r, p.ifname, p.ips));
  return { sysctls, lines, ...(hasV6 && p.enabledad && !p.linkDown ? { settleDad: p.ifname } : {}) };
}

/** How long the pod side waits for DAD (the reference's SettleAddresses timeout). */
export const DAD_SETTLE_SECONDS = 10;

/** IPv4 below /31 gets the subnet's broadcast address, as the reference's netlink library sets it. */
export function broadcast(a: Cidr): string[] {
  return a.ip.family === 4 && a.prefix < 31 ? ["brd", "+"] : [];
}

export function routeLine(r: Route, ifname: string, ips: readonly IpConfig[]): string {
  const dst = parseCidr(r.dst);
  const args: (string | number)[] = ["route", "add", dst ? formatCidr(subnetOf(dst)) : r.dst];
  const gw = routeGateway(r, ips);
  if (gw) args.push("via", gw);
  args.push("dev", ifname);
  if (r.priority !== undefined) args.push("metric", r.priority);
  if (r.table !== undefined) args.push("table", r.table);
  if (r.scope !== undefined) args.push("scope", r.scope);
  if (r.mtu !== undefined) args.push("mtu", r.mtu);
  if (r.advmss !== undefined) args.push("advmss", r.advmss);
  return line(...args);
}

/** Single-quotes for /bin/sh. */
export function shQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

/**
 * The script run as `sh -c SCRIPT`: each write is attempted; a key that cannot be
 * written is reported on stderr (kept in the log) without failing the ADD, as the
 * kernel refuses IPv6 keys on a node booted without IPv6 and `ip` then names the real
 * problem. Ends by exec'ing `ip` on the batch.
 */
export function podScript(sysctls: readonly SysctlWrite[], ipArgv: readonly string[], settle?: { ifname: string; ip: string; sleep: string }): string {
  const parts = ["cd /proc/sys || exit 1"];
  for (const s of sysctls) {
    const path = shQuote(keyPath(s.key));
    parts.push(`printf ${shQuote(s.value)} 2>/dev/null >${path} || echo "tscni: cannot set sysctl ${keyPath(s.key).replace(/["$`\\]/g, "")}" >&2`);
  }
  if (!settle) {
    parts.push(`exec ${ipArgv.map(shQuote).join(" ")}`);
    return parts.join("\n");
  }
  // enabledad: wait (bounded) until no IPv6 address of the interface is tentative; a
  // duplicate (dadfailed) fails the ADD at once.
  const show = (flag: string): string => `"$(${[settle.ip, "-6", "-o", "addr", "show", "dev", settle.ifname, flag].map(shQuote).join(" ")})"`;
  const name = settle.ifname.replace(/["$`\\]/g, "");
  const tries = DAD_SETTLE_SECONDS * 20;
  parts.push(`${ipArgv.map(shQuote).join(" ")} || exit $?`);
  parts.push(`i=0`);
  parts.push(`while :; do`);
  parts.push(`  if [ -n ${show("dadfailed")} ]; then echo "tscni: duplicate IPv6 address on ${name}: DAD failed" >&2; exit 1; fi`);
  parts.push(`  [ -z ${show("tentative")} ] && exit 0`);
  parts.push(`  if [ $i -ge ${tries} ]; then echo "tscni: IPv6 DAD on ${name} did not finish within ${DAD_SETTLE_SECONDS} s" >&2; exit 1; fi`);
  parts.push(`  ${shQuote(settle.sleep)} 0.05; i=$((i+1))`);
  parts.push(`done`);
  return parts.join("\n");
}
