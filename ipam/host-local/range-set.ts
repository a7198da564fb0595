/**
 * Ranges and range sets: parse, canonicalize, validate (all pure). A range set is
 * the addresses one attachment gets one address from; each range within it is a
 * subnet with an allocatable window [start, end] and a gateway.
 */
import { ConfigError } from "../../pkg/types/errors.js";
import { bitsOf, compareIp, contains, formatCidr, formatIp, hasHostBits, lastOf, networkOf, nextIp, parseCidr, parseIp, prevIp, subnetOf } from "../../pkg/ip.js";
import type { Cidr, IpAddr } from "../../pkg/ip.js";

/** A range as written in the config: every field optional but `subnet`. */
export interface RawRange {
  subnet?: unknown;
  rangeStart?: unknown;
  rangeEnd?: unknown;
  gateway?: unknown;
}

export interface Range {
  /** Host bits clear. */
  readonly subnet: Cidr;
  readonly start: IpAddr;
  readonly end: IpAddr;
  readonly gateway: IpAddr;
}

export type RangeSet = readonly Range[];

/** IPv4-mapped IPv6 addresses are IPv4, as Go's net.IP treats them. */
export function canonicalIp(a: IpAddr): IpAddr {
  if (a.family === 6 && a.value >> 32n === 0xffffn) return { family: 4, value: a.value & 0xffffffffn };
  return a;
}

/** Parses an address written either plain or in CIDR form ("10.0.0.5" or "10.0.0.5/24"). */
export function parseAddressLoose(s: unknown): IpAddr | undefined {
  if (typeof s !== "string") return undefined;
  const text = s.trim();
  const a = text.includes("/") ? parseCidr(text)?.ip : parseIp(text);
  return a && canonicalIp(a);
}

function ipField(raw: RawRange, key: "rangeStart" | "rangeEnd" | "gateway", where: string): IpAddr | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === "") return undefined;
  const ip = typeof v === "string" ? parseIp(v.trim()) : undefined;
  if (!ip) throw new ConfigError(`${where}: ${key} ${JSON.stringify(v)} is not an IP address`);
  return canonicalIp(ip);
}

export function formatRange(r: Range): string {
  return `${formatIp(r.start)}-${formatIp(r.end)}`;
}

export function formatRangeSet(s: RangeSet): string {
  return s.map(formatRange).join(",");
}

/** Is `a` allocatable-or-not inside the window of `r` (subnet and [start, end])? */
export function rangeContains(r: Range, a: IpAddr): boolean {
  return contains(r.subnet, a) && compareIp(a, r.start) >= 0 && compareIp(a, r.end) <= 0;
}

export function rangeFor(s: RangeSet, a: IpAddr): Range | undefined {
  return s.find((r) => rangeContains(r, a));
}

/** The subnet's network address and (IPv4) broadcast are never handed out, nor the gateway. */
export function isAllocatable(r: Range, a: IpAddr): boolean {
  if (compareIp(a, r.gateway) === 0) return false;
  if (compareIp(a, r.subnet.ip) === 0) return false;
  if (a.family === 4 && compareIp(a, lastOf(r.subnet)) === 0) return false;
  return true;
}

/** Fills in gateway/start/end and validates one range; `where` prefixes messages. */
export function canonicalizeRange(raw: RawRange, where: string): Range {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(`${where}: a range must be an object with a "subnet"`);
  if (typeof raw.subnet !== "string" || raw.subnet === "") throw new ConfigError(`${where}: "subnet" is missing`);
  const parsed = parseCidr(raw.subnet.trim());
  if (!parsed) throw new ConfigError(`${where}: subnet ${JSON.stringify(raw.subnet)} is not a CIDR`);
  const ip = canonicalIp(parsed.ip);
  const prefix = ip.family === parsed.ip.family ? parsed.prefix : parsed.prefix - 96;
  if (prefix < 0) throw new ConfigError(`${where}: subnet ${raw.subnet} is not a valid IPv4 subnet`);
  const cidr: Cidr = { ip, prefix };
  if (hasHostBits(cidr)) {
    throw new ConfigError(`${where}: subnet ${raw.subnet} has host bits set; for a /${prefix} the network address is ${formatCidr(subnetOf(cidr))}`);
  }
  // Like the reference: a /31 or /32 (/127, /128) has no address to hand out.
  if (prefix > bitsOf(ip.family) - 2) throw new ConfigError(`${where}: subnet ${raw.subnet} is too small to allocate from`);
  const subnet = subnetOf(cidr);
  const net = formatCidr(subnet);
  const inSubnet = (a: IpAddr, what: string): IpAddr => {
    if (a.family !== ip.family) throw new ConfigError(`${where}: ${what} ${formatIp(a)} is not the same address family as subnet ${net}`);
    if (!contains(subnet, a)) throw new ConfigError(`${where}: ${what} ${formatIp(a)} is not in subnet ${net}`);
    return a;
  };
  const gw = ipField(raw, "gateway", where);
  const gateway = gw ? inSubnet(gw, "gateway") : nextIp(subnet.ip);
  if (compareIp(gateway, subnet.ip) === 0 || (ip.family === 4 && compareIp(gateway, lastOf(subnet)) === 0)) {
    throw new ConfigError(`${where}: gateway ${formatIp(gateway)} is the ${compareIp(gateway, subnet.ip) === 0 ? "network" : "broadcast"} address of ${net}`);
  }
  const s = ipField(raw, "rangeStart", where);
  const start = s ? inSubnet(s, "rangeStart") : nextIp(subnet.ip);
  const e = ipField(raw, "rangeEnd", where);
  const last = lastOf(subnet);
  const end = e ? inSubnet(e, "rangeEnd") : ip.family === 4 ? prevIp(last) : last;
  if (compareIp(start, end) > 0) throw new ConfigError(`${where}: rangeStart ${formatIp(start)} is after rangeEnd ${formatIp(end)}`);
  return { subnet, start, end, gateway };
}

/** Do the allocation windows of two ranges share an address? */
export function rangesOverlap(a: Range, b: Range): boolean {
  if (a.start.family !== b.start.family) return false;
  return compareIp(a.start, b.end) <= 0 && compareIp(b.start, a.end) <= 0;
}

export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((r) => b.some((q) => rangesOverlap(r, q)));
}

/** Canonicalizes range set number `index`: non-empty, one family, no overlaps. */
export function canonicalizeRangeSet(raw: unknown, index: number): RangeSet {
  const where = `range set ${index}`;
  if (!Array.isArray(raw)) throw new ConfigError(`${where}: must be an array of ranges`);
  if (raw.length === 0) throw new ConfigError(`${where}: empty range set`);
  const set = raw.map((r, i) => canonicalizeRange(r as RawRange, raw.length > 1 ? `${where}, range ${i}` : where));
  const family = set[0]!.subnet.ip.family;
  if (set.some((r) => r.subnet.ip.family !== family)) throw new ConfigError(`${where}: mixed address families in one range set`);
  for (let i = 0; i < set.length; i++) {
    for (let j = i + 1; j < set.length; j++) {
      if (rangesOverlap(set[i]!, set[j]!)) {
        throw new ConfigError(`${where}: ranges ${formatRange(set[i]!)} and ${formatRange(set[j]!)} overlap`);
      }
    }
  }
  return set;
}

/** How many addresses the set can hand out (gateway, network and broadcast excluded). */
export function capacity(s: RangeSet): bigint {
  let n = 0n;
  for (const r of s) {
    n += r.end.value - r.start.value + 1n;
    const excluded = new Set<bigint>();
    for (const a of [r.gateway, networkOf(r.subnet), lastOf(r.subnet)]) {
      if (!isAllocatable(r, a) && rangeContains(r, a)) excluded.add(a.value);
    }
    n -= BigInt(excluded.size);
  }
  return n;
}
