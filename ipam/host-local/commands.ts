/**
 * host-local ADD / DEL / CHECK / GC / STATUS. Each mutating command takes one lock for
 * its whole run. Handlers never print or exit: the bridge calls them in-process.
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { CniCode, CniError, ConfigError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import type { IpConfig, Result } from "../../pkg/types/result.js";
import { formatIp, compareIp } from "../../pkg/ip.js";
import { acquireLock } from "../../pkg/lock.js";
import type { LockOptions } from "../../pkg/lock.js";
import type { Handlers } from "../../pkg/skel.js";
import { LATEST_VERSION, toCurrent } from "../../pkg/version.js";
import { allocate } from "./allocator.js";
import type { Allocation } from "./allocator.js";
import { DEFAULT_DATA_DIR, loadConfig } from "./config.js";
import { capacity, parseAddressLoose, rangeFor } from "./range-set.js";
import { parseResolvConf } from "./resolv-conf.js";
import { DiskStore, TSCNI_LOCK_FILE, heldBy } from "./store.js";
import type { AttachmentKey, Reservation, Scan } from "./store.js";

export interface Deps {
  /** Diagnostics (stderr in the executable). */
  log(line: string): void;
  lock: Partial<LockOptions>;
}

const defaultDeps: Deps = { log: (line) => process.stderr.write(`host-local: ${line}\n`), lock: {} };

async function locked<T>(store: DiskStore, deps: Deps, fn: () => T): Promise<T> {
  store.ensure();
  const held = await acquireLock(`${store.dir}/${TSCNI_LOCK_FILE}`, deps.lock);
  try {
    return fn();
  } finally {
    held.release();
  }
}

function scanned(store: DiskStore, deps: Deps): Scan {
  const s = store.scan();
  for (const p of s.problems) deps.log(`unreadable reservation ${p}`);
  return s;
}

function readDns(path: string): Result["dns"] {
  try {
    return parseResolvConf(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError(`cannot read resolvConf ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function ipConfig(a: Allocation): IpConfig {
  return { address: `${formatIp(a.ip)}/${a.range.subnet.prefix}`, gateway: formatIp(a.range.gateway) };
}

function keyOf(inv: Invocation): AttachmentKey {
  return { id: inv.containerId, ifname: inv.ifname };
}

async function add(inv: Invocation, deps: Deps): Promise<Result> {
  const conf = loadConfig(inv.config, inv.args);
  const dns = conf.resolvConf ? readDns(conf.resolvConf) : undefined;
  const store = new DiskStore(conf.dataDir, conf.network);
  const key = keyOf(inv);
  const allocations = await locked(store, deps, () => {
    const { reservations } = scanned(store, deps);
    const done: Allocation[] = [];
    try {
      conf.rangeSets.forEach((set, index) => {
        const req = { set, index, key, reservations, ...(conf.requested[index] ? { requested: conf.requested[index] } : {}) };
        done.push(allocate(store, req));
      });
    } catch (err) {
      const undo: string[] = [];
      for (const a of done) {
        if (!a.fresh) continue;
        try {
          store.release(a.ip);
        } catch (e) {
          undo.push(`releasing ${formatIp(a.ip)}: ${(e as Error).message}`);
        }
      }
      if (undo.length && err instanceof CniError) throw new CniError(err.code, err.message, [err.details, ...undo].filter(Boolean).join("; "));
      throw err;
    }
    return done;
  });
  const result: Result = { cniVersion: LATEST_VERSION, ips: allocations.map(ipConfig) };
  if (conf.routes.length) result.routes = conf.routes;
  if (dns) result.dns = dns;
  return result;
}

/** The reservations DEL releases: exact (id, ifname) matches, else legacy id-only files. */
function releasable(reservations: readonly Reservation[], key: AttachmentKey): Reservation[] {
  const exact = reservations.filter((r) => r.ifname !== undefined && heldBy(r, key));
  return exact.length ? exact : reservations.filter((r) => r.ifname === undefined && heldBy(r, key));
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function del(inv: Invocation, deps: Deps): Promise<void> {
  // DEL needs only where the reservations are: a config whose ranges changed or no
  // longer validate must still release what an earlier ADD reserved.
  const store = storeOf(inv);
  if (!exists(store.dir)) return; // nothing was ever reserved here
  const key = keyOf(inv);
  await locked(store, deps, () => {
    const errors: string[] = [];
    for (const r of releasable(scanned(store, deps).reservations, key)) {
      try {
        store.release(r.ip);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length) throw new CniError(CniCode.IoFailure, `releasing addresses of ${key.id}/${key.ifname} failed`, errors.join("; "));
  });
}

async function check(inv: Invocation, deps: Deps): Promise<void> {
  const conf = loadConfig(inv.config, "", { requested: false });
  const store = new DiskStore(conf.dataDir, conf.network);
  const key = keyOf(inv);
  const mine = scanned(store, deps).reservations.filter((r) => heldBy(r, key));
  if (mine.length === 0) {
    throw new CniError(CniCode.UnknownContainer, `host-local: no address is reserved for ${key.id}/${key.ifname} in ${store.dir}`);
  }
  // Every prevResult address inside our ranges must be one we reserved for this attachment.
  const prev = inv.config.prevResult ? toCurrent(inv.config.prevResult) : undefined;
  for (const ip of prev?.ips ?? []) {
    const a = parseAddressLoose(ip.address);
    if (!a || !conf.rangeSets.some((s) => rangeFor(s, a))) continue;
    if (!mine.some((r) => compareIp(r.ip, a) === 0)) {
      throw new CniError(CniCode.UnknownContainer, `host-local: ${formatIp(a)} from prevResult is not reserved for ${key.id}/${key.ifname}`);
    }
  }
}

/** GC keeps the attachments listed in `cni.dev/valid-attachments` (or `cni.dev/attachments`). */
export function validAttachments(config: Record<string, unknown>): AttachmentKey[] | undefined {
  const list = config["cni.dev/valid-attachments"] ?? config["cni.dev/attachments"];
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw new ConfigError('"cni.dev/valid-attachments" must be an array');
  return list.map((a, i) => {
    const o = a as Record<string, unknown>;
    if (typeof a !== "object" || a === null || typeof o.containerID !== "string" || typeof o.ifname !== "string") {
      throw new ConfigError(`"cni.dev/valid-attachments"[${i}] must be {"containerID": string, "ifname": string}`);
    }
    return { id: o.containerID, ifname: o.ifname };
  });
}

async function gc(inv: Invocation, deps: Deps): Promise<void> {
  const valid = validAttachments(inv.config);
  const store = storeOf(inv);
  if (valid === undefined) {
    // Releasing everything because a runtime forgot the list would drop every live pod.
    deps.log(`GC without "cni.dev/valid-attachments": nothing released in ${store.dir}`);
    return;
  }
  if (!exists(store.dir)) return;
  await locked(store, deps, () => {
    const errors: string[] = [];
    for (const r of scanned(store, deps).reservations) {
      if (valid.some((k) => heldBy(r, k))) continue;
      try {
        store.release(r.ip);
        deps.log(`GC released ${formatIp(r.ip)} (${r.id}${r.ifname === undefined ? "" : `/${r.ifname}`})`);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length) throw new CniError(CniCode.IoFailure, `GC could not release every stale address in ${store.dir}`, errors.join("; "));
  });
}

/** The nearest existing ancestor of `dir` (itself included). */
function nearestExisting(dir: string): string {
  let d = dir;
  while (!exists(d) && d.includes("/") && d !== "/") d = d.slice(0, d.lastIndexOf("/")) || "/";
  return d;
}

/**
 * STATUS: 50 (not available: ADD cannot succeed) when the data directory cannot be
 * written or a range set has no free address; success otherwise. Nothing is created.
 */
async function status(inv: Invocation, deps: Deps): Promise<void> {
  const conf = loadConfig(inv.config, "", { requested: false });
  const store = new DiskStore(conf.dataDir, conf.network);
  const probe = nearestExisting(store.dir);
  try {
    accessSync(probe, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new CniError(CniCode.PluginNotAvailable, `host-local cannot reserve addresses: ${probe} is not writable (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const { reservations } = scanned(store, deps);
  conf.rangeSets.forEach((set, i) => {
    const used = BigInt(reservations.filter((r) => rangeFor(set, r.ip)).length);
    const cap = capacity(set);
    if (used >= cap) {
      throw new CniError(CniCode.PluginNotAvailable, `host-local cannot reserve addresses: range set ${i} has no free address (${used} of ${cap} reserved)`);
    }
  });
}

/** DEL and GC need only the store's location, never valid ranges. */
function storeOf(inv: Invocation): DiskStore {
  const ipam = inv.config.ipam as Record<string, unknown> | undefined;
  if (!ipam || typeof ipam !== "object") throw new ConfigError('IPAM config missing "ipam" key');
  const dataDir = ipam.dataDir ?? DEFAULT_DATA_DIR;
  if (typeof dataDir !== "string" || dataDir === "") throw new ConfigError('ipam: "dataDir" must be a non-empty path');
  return new DiskStore(dataDir, inv.config.name);
}

export function createHandlers(deps: Partial<Deps> = {}): Handlers {
  const d: Deps = { ...defaultDeps, ...deps };
  return {
    add: (inv) => add(inv, d),
    del: (inv) => del(inv, d),
    check: (inv) => check(inv, d),
    status: (inv) => status(inv, d),
    gc: (inv) => gc(inv, d),
  };
}
