/**
 * host-local configuration: merge ranges and requested addresses from every source,
 * canonicalize, validate. Pure: no I/O, throws ConfigError (7) / EnvError (4).
 */
import { ConfigError, EnvError } from "../../pkg/types/errors.js";
import type { NetConf } from "../../pkg/types/netconf.js";
import type { Route } from "../../pkg/types/result.js";
import { compareIp, formatIp, parseCidr, parseIp } from "../../pkg/ip.js";
import type { IpAddr } from "../../pkg/ip.js";
import { compareVersions } from "../../pkg/version.js";
import { canonicalizeRangeSet, isAllocatable, parseAddressLoose, rangeFor, rangeSetsOverlap } from "./range-set.js";
import type { RangeSet } from "./range-set.js";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

export interface HostLocalConfig {
  /** The network name: the directory under dataDir. */
  network: string;
  cniVersion: string;
  dataDir: string;
  resolvConf?: string;
  routes: Route[];
  rangeSets: RangeSet[];
  /** Per range set, the address the runtime asked for, if any. */
  requested: (IpAddr | undefined)[];
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * CNI_ARGS: "K=V;K2=V2". Unknown keys are an error unless IgnoreUnknown is true,
 * as in the reference (types.LoadArgs). Code 4: CNI_ARGS is environment.
 */
export function parseCniArgs(text: string, known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const unknown: string[] = [];
  for (const pair of text.split(";")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new EnvError(`CNI_ARGS: invalid pair ${JSON.stringify(pair)}`, "expected KEY=VALUE pairs separated by ';'");
    const key = pair.slice(0, eq).trim();
    out.set(key, pair.slice(eq + 1).trim());
  }
  const ignore = out.get("IgnoreUnknown");
  let ignoreUnknown = false;
  if (ignore !== undefined) {
    const v = ignore.toLowerCase();
    if (v === "1" || v === "true") ignoreUnknown = true;
    else if (v !== "0" && v !== "false") throw new EnvError(`CNI_ARGS: IgnoreUnknown=${JSON.stringify(ignore)} is not a boolean`);
  }
  for (const key of out.keys()) if (key !== "IgnoreUnknown" && !known.includes(key)) unknown.push(key);
  if (unknown.length && !ignoreUnknown) {
    throw new EnvError(`CNI_ARGS: unknown args ${unknown.map((k) => JSON.stringify(k)).join(", ")}`, "set IgnoreUnknown=1 to pass keys this plugin does not use");
  }
  return out;
}

function parseRoutes(raw: unknown): Route[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ConfigError('ipam: "routes" must be an array');
  return raw.map((r, i) => {
    if (!isObj(r) || typeof r.dst !== "string" || !parseCidr(r.dst)) {
      throw new ConfigError(`ipam: route ${i}: "dst" must be a CIDR, got ${JSON.stringify(isObj(r) ? r.dst : r)}`);
    }
    const route: Route = { ...(r as unknown as Route) };
    if (r.gw !== undefined && r.gw !== "" && (typeof r.gw !== "string" || !parseIp(r.gw))) {
      throw new ConfigError(`ipam: route ${i}: "gw" ${JSON.stringify(r.gw)} is not an IP address`);
    }
    return route;
  });
}

function requestedAddresses(conf: NetConf, cniArgs: string): IpAddr[] {
  const texts: { text: unknown; from: string }[] = [];
  if (cniArgs !== "") {
    const ip = parseCniArgs(cniArgs, ["IP"]).get("IP");
    if (ip) for (const t of ip.split(",")) texts.push({ text: t, from: "CNI_ARGS IP" });
  }
  const argsIps = isObj(conf.args) && isObj(conf.args.cni) ? conf.args.cni.ips : undefined;
  if (argsIps !== undefined) {
    if (!Array.isArray(argsIps)) throw new ConfigError('args.cni.ips must be an array of addresses');
    for (const t of argsIps) texts.push({ text: t, from: "args.cni.ips" });
  }
  const rtIps = isObj(conf.runtimeConfig) ? conf.runtimeConfig.ips : undefined;
  if (rtIps !== undefined && rtIps !== null) {
    if (!Array.isArray(rtIps)) throw new ConfigError("runtimeConfig.ips must be an array of addresses");
    for (const t of rtIps) texts.push({ text: t, from: "runtimeConfig.ips" });
  }
  const out: IpAddr[] = [];
  for (const { text, from } of texts) {
    const a = parseAddressLoose(text);
    if (!a) throw new ConfigError(`${from}: ${JSON.stringify(text)} is not an IP address`);
    if (!out.some((b) => compareIp(a, b) === 0)) out.push(a);
  }
  return out;
}

function rawRangeSets(ipam: Record<string, unknown>, conf: NetConf): unknown[] {
  const rt = isObj(conf.runtimeConfig) ? conf.runtimeConfig.ipRanges : undefined;
  // runtimeConfig.ipRanges (the capability) replaces the configured ranges.
  if (Array.isArray(rt) && rt.length > 0) return rt;
  const sets: unknown[] = [];
  if (ipam.subnet !== undefined && ipam.subnet !== "") {
    sets.push([{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]);
  }
  if (ipam.ranges !== undefined && ipam.ranges !== null) {
    if (!Array.isArray(ipam.ranges)) throw new ConfigError('ipam: "ranges" must be an array of range sets');
    sets.push(...ipam.ranges);
  }
  return sets;
}

/** Assigns each requested address to the first range set holding it. */
function assignRequested(sets: RangeSet[], requested: IpAddr[]): (IpAddr | undefined)[] {
  const out: (IpAddr | undefined)[] = sets.map(() => undefined);
  for (const a of requested) {
    const idx = sets.findIndex((s) => rangeFor(s, a) !== undefined);
    if (idx < 0) throw new ConfigError(`requested IP ${formatIp(a)} is not in any range set`);
    const r = rangeFor(sets[idx]!, a)!;
    if (!isAllocatable(r, a)) {
      const what = compareIp(a, r.gateway) === 0 ? "the gateway" : "the network or broadcast address";
      throw new ConfigError(`requested IP ${formatIp(a)} is ${what} of range set ${idx}`);
    }
    const prev = out[idx];
    if (prev) throw new ConfigError(`requested IPs ${formatIp(prev)} and ${formatIp(a)} are both in range set ${idx}; one address per range set`);
    out[idx] = a;
  }
  return out;
}

/** Reads the host-local view of a network config and CNI_ARGS. */
export function loadConfig(conf: NetConf, cniArgs: string, opts: { requested?: boolean } = {}): HostLocalConfig {
  if (!isObj(conf.ipam)) throw new ConfigError('IPAM config missing "ipam" key');
  const ipam = conf.ipam as Record<string, unknown>;
  const dataDir = ipam.dataDir ?? DEFAULT_DATA_DIR;
  if (typeof dataDir !== "string" || dataDir === "") throw new ConfigError('ipam: "dataDir" must be a non-empty path');
  const resolvConf = ipam.resolvConf;
  if (resolvConf !== undefined && typeof resolvConf !== "string") throw new ConfigError('ipam: "resolvConf" must be a path');
  const requested = opts.requested === false ? [] : requestedAddresses(conf, cniArgs);
  const raw = rawRangeSets(ipam, conf);
  if (raw.length === 0) throw new ConfigError("no IP ranges specified", 'set "ipam.ranges" (or the legacy "ipam.subnet")');
  const rangeSets = raw.map((s, i) => canonicalizeRangeSet(s, i));
  if (compareVersions(conf.cniVersion, "0.3.0") < 0) {
    const v4 = rangeSets.filter((s) => s[0]!.subnet.ip.family === 4).length;
    if (v4 > 1 || rangeSets.length - v4 > 1) throw new ConfigError(`cniVersion ${conf.cniVersion} does not support more than one address per family`);
  }
  for (let i = 0; i < rangeSets.length; i++) {
    for (let j = i + 1; j < rangeSets.length; j++) {
      if (rangeSetsOverlap(rangeSets[i]!, rangeSets[j]!)) throw new ConfigError(`range set ${i} overlaps with range set ${j}`);
    }
  }
  const out: HostLocalConfig = {
    network: conf.name,
    cniVersion: conf.cniVersion,
    dataDir,
    routes: parseRoutes(ipam.routes),
    rangeSets,
    requested: assignRequested(rangeSets, requested),
  };
  if (resolvConf) out.resolvConf = resolvConf;
  return out;
}
