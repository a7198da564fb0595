import { VersionError } from "./types/errors.js";
import type { AnyResult, CniInterface, Dns, IpConfig, Result, Route } from "./types/result.js";
import { parseCidr } from "./ip.js";

/** Every spec version we speak, oldest first. */
export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = "1.1.0";

export function isSupported(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares two "x.y.z" versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/** The three result shapes the spec has had. */
type Shape = "020" | "040" | "100";

function shapeOf(v: string): Shape {
  if (compareVersions(v, "0.3.0") < 0) return "020";
  if (compareVersions(v, "1.0.0") < 0) return "040";
  return "100";
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const arr = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);

function routesFrom(x: unknown): Route[] {
  return arr(x).filter(isObj).map((r) => ({ ...(r as unknown as Route) }));
}

/** 0.1.0/0.2.0 `ip4`/`ip6` form -> the 1.x model. */
function from020(r: AnyResult): Result {
  const out: Result = { cniVersion: LATEST_VERSION, ips: [], routes: [] };
  for (const key of ["ip4", "ip6"]) {
    const block = r[key];
    if (!isObj(block)) continue;
    const ip: IpConfig = { address: String(block.ip) };
    if (typeof block.gateway === "string") ip.gateway = block.gateway;
    out.ips!.push(ip);
    out.routes!.push(...routesFrom(block.routes));
  }
  if (isObj(r.dns)) out.dns = r.dns as Dns;
  return out;
}

/** 0.3.x/0.4.0 and 1.x share a shape; 0.x adds ips[].version. */
function fromList(r: AnyResult): Result {
  const out: Result = { cniVersion: LATEST_VERSION };
  if (Array.isArray(r.interfaces)) out.interfaces = r.interfaces.filter(isObj).map((i) => ({ ...(i as unknown as CniInterface) }));
  if (Array.isArray(r.ips)) {
    out.ips = r.ips.filter(isObj).map((i) => {
      const { version: _version, ...rest } = i;
      return rest as unknown as IpConfig;
    });
  }
  if (Array.isArray(r.routes)) out.routes = routesFrom(r.routes);
  if (isObj(r.dns)) out.dns = r.dns as Dns;
  return out;
}

/** Reads a result of any version into the 1.x model (e.g. a prevResult). */
export function toCurrent(r: AnyResult, version?: string): Result {
  const v = version ?? (typeof r.cniVersion === "string" ? r.cniVersion : "0.1.0");
  if (!isSupported(v)) throw new VersionError(`cannot read a result of cniVersion "${v}"`, `supported versions: ${SUPPORTED_VERSIONS.join(", ")}`);
  return shapeOf(v) === "020" ? from020(r) : fromList(r);
}

const ROUTE_11_FIELDS = ["mtu", "advmss", "priority", "table", "scope"] as const;
const IFACE_11_FIELDS = ["mtu", "socketPath", "pciID"] as const;

function familyOf(addr: string): 4 | 6 {
  return addr.includes(":") ? 6 : 4;
}

function to020(r: Result, version: string): AnyResult {
  const out: AnyResult = { cniVersion: version };
  for (const ip of r.ips ?? []) {
    const key = familyOf(ip.address) === 4 ? "ip4" : "ip6";
    if (out[key]) continue;
    const block: Record<string, unknown> = { ip: ip.address };
    if (ip.gateway) block.gateway = ip.gateway;
    out[key] = block;
  }
  if (!out.ip4 && !out.ip6) {
    throw new VersionError(`cannot convert a result without IP addresses to cniVersion ${version}`);
  }
  for (const route of r.routes ?? []) {
    const c = parseCidr(route.dst);
    const key = c && c.ip.family === 6 ? "ip6" : "ip4";
    const block = out[key] as Record<string, unknown> | undefined;
    if (!block) continue;
    const plain: Record<string, unknown> = { dst: route.dst };
    if (route.gw) plain.gw = route.gw;
    ((block.routes ??= []) as unknown[]).push(plain);
  }
  if (r.dns) out.dns = r.dns;
  return out;
}

function toList(r: Result, version: string, shape: Shape): AnyResult {
  const keep11 = compareVersions(version, "1.1.0") >= 0;
  const out: AnyResult = { cniVersion: version };
  if (r.interfaces) {
    out.interfaces = r.interfaces.map((i) => {
      const c: Record<string, unknown> = { ...i };
      if (!keep11) for (const f of IFACE_11_FIELDS) delete c[f];
      return c;
    });
  }
  if (r.ips) {
    out.ips = r.ips.map((ip) => (shape === "040" ? { version: String(familyOf(ip.address)), ...ip } : { ...ip }));
  }
  if (r.routes) {
    out.routes = r.routes.map((rt) => {
      const c: Record<string, unknown> = { ...rt };
      if (!keep11) for (const f of ROUTE_11_FIELDS) delete c[f];
      return c;
    });
  }
  if (r.dns) out.dns = r.dns;
  return out;
}

/** Writes a 1.x-model result in the requested version. */
export function fromCurrent(r: Result, version: string): AnyResult {
  if (!isSupported(version)) {
    throw new VersionError(`cannot convert a result to cniVersion "${version}"`, `supported versions: ${SUPPORTED_VERSIONS.join(", ")}`);
  }
  const shape = shapeOf(version);
  return shape === "020" ? to020(r, version) : toList(r, version, shape);
}

/** Converts a result of any version to any other. */
export function convertResult(r: AnyResult, to: string): AnyResult {
  return fromCurrent(toCurrent(r), to);
}
