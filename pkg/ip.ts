/**
 * IP address math on bigints. Hand-written rather than ip-num/ipaddr.js: those cost
 * 6–11 ms of start-up on every CNI call (DESIGN.md), and this is all we need.
 */
export type Family = 4 | 6;

export interface IpAddr {
  readonly family: Family;
  readonly value: bigint;
}

/** An address with a prefix length, as written (host bits may be set). */
export interface Cidr {
  readonly ip: IpAddr;
  readonly prefix: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function bitsOf(family: Family): number {
  return BITS[family];
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let tail4: bigint | undefined;
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    tail4 = parseV4(s.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    text = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const toGroups = (h: string): string[] => (h === "" ? [] : h.split(":"));
  const head = toGroups(halves[0]!);
  const rest = halves.length === 2 ? toGroups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail4 !== undefined) v = (v & ~0xffffffffn) | tail4;
  return v;
}

/** Parses a plain IPv4 or IPv6 address; undefined when it is not one. */
export function parseIp(s: string): IpAddr | undefined {
  if (typeof s !== "string") return undefined;
  if (s.includes(":")) {
    const v = parseV6(s);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { family: 4, value: v };
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as ::). */
export function formatIp(a: IpAddr): string {
  if (a.family === 4) {
    const v = Number(a.value);
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((a.value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Parses "addr/prefix"; undefined when malformed. */
export function parseCidr(s: string): Cidr | undefined {
  if (typeof s !== "string") return undefined;
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > BITS[ip.family]) return undefined;
  return { ip, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.ip)}/${c.prefix}`;
}

function hostMask(c: Cidr): bigint {
  return (1n << BigInt(BITS[c.ip.family] - c.prefix)) - 1n;
}

/** The first address of the subnet. */
export function networkOf(c: Cidr): IpAddr {
  return { family: c.ip.family, value: c.ip.value & ~hostMask(c) };
}

/** The last address of the subnet (the IPv4 broadcast). */
export function lastOf(c: Cidr): IpAddr {
  return { family: c.ip.family, value: c.ip.value | hostMask(c) };
}

/** The subnet itself, host bits cleared. */
export function subnetOf(c: Cidr): Cidr {
  return { ip: networkOf(c), prefix: c.prefix };
}

export function hasHostBits(c: Cidr): boolean {
  return (c.ip.value & hostMask(c)) !== 0n;
}

export function contains(c: Cidr, a: IpAddr): boolean {
  return a.family === c.ip.family && (a.value & ~hostMask(c)) === networkOf(c).value;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b.ip) || contains(b, a.ip);
}

export function compareIp(a: IpAddr, b: IpAddr): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function nextIp(a: IpAddr): IpAddr {
  const max = (1n << BigInt(BITS[a.family])) - 1n;
  return { family: a.family, value: a.value === max ? 0n : a.value + 1n };
}

export function prevIp(a: IpAddr): IpAddr {
  const max = (1n << BigInt(BITS[a.family])) - 1n;
  return { family: a.family, value: a.value === 0n ? max : a.value - 1n };
}

/** "10.0.0.0/8" -> the mask as an address, e.g. 255.0.0.0 (for 0.x results). */
export function maskOf(c: Cidr): IpAddr {
  const bits = BigInt(BITS[c.ip.family]);
  return { family: c.ip.family, value: ((1n << bits) - 1n) & ~hostMask(c) };
}
