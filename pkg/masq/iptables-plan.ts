/**
 * Pure iptables plans: the exact rules the reference bridge plugin makes for ipMasq, as
 * `iptables-restore --noflush` text. Rule arguments are written in the order
 * `iptables-save` prints them, so a plan line and a saved line are byte-identical and
 * `-D` lines built from either side delete the other's rules.
 *
 * Per attachment and family (chain = chainName(network, containerId)):
 *   -A POSTROUTING -s <pod ip>/32 -m comment --comment "<c>" -j <chain>   (one per pod ip)
 *   -A <chain> -d <pod subnet> -m comment --comment "<c>" -j ACCEPT       (one per subnet)
 *   -A <chain> -d <nonMasqueradeCidr> -m comment --comment "<c>" -j ACCEPT (tscni extension)
 *   -A <chain> ! -d 224.0.0.0/4 -m comment --comment "<c>" -j MASQUERADE  (ff00::/8 for v6)
 *
 * Deviation: with several addresses of one family, the reference appends the second
 * subnet's ACCEPT after the MASQUERADE (where it never matches); we put every ACCEPT first.
 */
import { bitsOf, formatCidr, formatIp, subnetOf, type Cidr, type Family, type IpAddr } from "../ip.js";
import { chainName, ownerComment } from "./names.js";
import type { MasqTarget } from "./types.js";

export const MULTICAST: Record<Family, string> = { 4: "224.0.0.0/4", 6: "ff00::/8" };

/** One rule: the chain it lives in and its match/target arguments. */
export interface IptRule {
  chain: string;
  args: string[];
}

/** Quotes one argument the way iptables-save does (and iptables-restore reads back). */
export function restoreArg(a: string): string {
  if (a !== "" && !/[\s"\\']/.test(a)) return a;
  return `"${a.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** "-A CHAIN args…" (or -D/-C), as one restore line. */
export function ruleLine(op: "-A" | "-D" | "-C", r: IptRule): string {
  return [op, r.chain, ...r.args.map(restoreArg)].join(" ");
}

function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}

export function familiesOf(addrs: readonly Cidr[]): Family[] {
  return ([4, 6] as const).filter((f) => addrs.some((a) => a.ip.family === f));
}

/** The POSTROUTING jump for one pod address. */
export function jumpRule(network: string, containerId: string, ip: IpAddr): IptRule {
  const c = ownerComment(network, containerId);
  return {
    chain: "POSTROUTING",
    args: ["-s", `${formatIp(ip)}/${bitsOf(ip.family)}`, "-m", "comment", "--comment", c, "-j", chainName(network, containerId)],
  };
}

/** The rules inside the per-attachment chain for one family, in order. */
export function chainRules(t: MasqTarget, family: Family): IptRule[] {
  const chain = chainName(t.network, t.containerId);
  const c = ownerComment(t.network, t.containerId);
  const mine = t.addresses.filter((a) => a.ip.family === family);
  const accept = uniq([
    ...mine.map((a) => formatCidr(subnetOf(a))),
    ...t.nonMasqueradeCidrs.filter((n) => n.ip.family === family).map((n) => formatCidr(subnetOf(n))),
  ]);
  return [
    ...accept.map((d) => ({ chain, args: ["-d", d, "-m", "comment", "--comment", c, "-j", "ACCEPT"] })),
    { chain, args: ["!", "-d", MULTICAST[family], "-m", "comment", "--comment", c, "-j", "MASQUERADE"] },
  ];
}

export function jumpRules(t: MasqTarget, family: Family): IptRule[] {
  return t.addresses.filter((a) => a.ip.family === family).map((a) => jumpRule(t.network, t.containerId, a.ip));
}

export interface IptSetupOptions {
  /**
   * "create" (the common ADD): `-N` the chain, so the whole restore fails atomically when it
   * already exists. "replace": declare it with `:CHAIN - [0:0]`, which flushes it.
   */
  mode: "create" | "replace";
  /** In "replace" mode, the jumps that already exist and must not be added again. */
  existingJumps?: readonly string[];
}

/** iptables-restore --noflush text that sets up one family of a target. */
export function iptablesSetupPlan(t: MasqTarget, family: Family, opts: IptSetupOptions = { mode: "create" }): string {
  const chain = chainName(t.network, t.containerId);
  const skip = new Set(opts.existingJumps ?? []);
  const jumps = jumpRules(t, family).map((r) => ruleLine("-A", r)).filter((l) => !skip.has(l));
  return [
    "*nat",
    opts.mode === "create" ? `-N ${chain}` : `:${chain} - [0:0]`,
    ...chainRules(t, family).map((r) => ruleLine("-A", r)),
    ...jumps,
    "COMMIT",
    "",
  ].join("\n");
}

/**
 * iptables-restore --noflush text that removes rules (given as saved "-A …" lines, e.g. the
 * POSTROUTING jumps) and then flushes and deletes the named chains.
 */
export function iptablesTeardownPlan(ruleLines: readonly string[], chains: readonly string[]): string {
  return [
    "*nat",
    ...ruleLines.map((l) => l.replace(/^-A /, "-D ")),
    ...chains.map((c) => `-F ${c}`),
    ...chains.map((c) => `-X ${c}`),
    "COMMIT",
    "",
  ].join("\n");
}

/** Teardown of a target whose addresses are known: its jumps (both -s forms are tried later). */
export function iptablesFastTeardownPlan(t: Pick<MasqTarget, "network" | "containerId" | "addresses">, family: Family): string {
  const lines = t.addresses.filter((a) => a.ip.family === family).map((a) => ruleLine("-A", jumpRule(t.network, t.containerId, a.ip)));
  return iptablesTeardownPlan(lines, [chainName(t.network, t.containerId)]);
}

/**
 * CHECK in one restore: `-C` of every rule ADD writes, the chain's and the jumps. It fails
 * at the first missing one; the caller then looks closer. Extra rules are not seen here.
 */
export function iptablesCheckPlan(t: MasqTarget, family: Family): string {
  return ["*nat", ...[...chainRules(t, family), ...jumpRules(t, family)].map((r) => ruleLine("-C", r)), "COMMIT", ""].join("\n");
}

/** Does this saved rule line jump to `chain`? */
export function jumpsTo(line: string, chain: string): boolean {
  return line.endsWith(` -j ${chain}`) || line.includes(` -j ${chain} `);
}

/** The comment of a saved rule line, unescaped; undefined when it has none. */
export function commentOf(line: string): string | undefined {
  const m = /--comment ("(?:[^"\\]|\\.)*"|\S+)/.exec(line);
  if (!m) return undefined;
  const raw = m[1]!;
  if (!raw.startsWith('"')) return raw;
  return raw.slice(1, -1).replace(/\\(.)/g, "$1");
}
