/** What every host-local command shares: deps, the store location, the whole-command lock. */
import { statSync } from "node:fs";
import { ConfigError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import { acquireLock } from "../../pkg/lock.js";
import type { LockOptions } from "../../pkg/lock.js";
import { DEFAULT_DATA_DIR } from "./config.js";
import { indexable, ReservationIndex } from "./index.js";
import type { Observation } from "./index.js";
import { DiskStore } from "./store.js";
import type { AttachmentKey, Reservation, Scan } from "./store.js";

export interface Deps {
  /** Diagnostics (stderr in the executable). */
  log(line: string): void;
  lock: Partial<LockOptions>;
  /** Observability for tests: "scan" when a command reads every reservation. */
  trace?(event: "scan"): void;
}

export const defaultDeps: Deps = { log: (line) => process.stderr.write(`host-local: ${line}\n`), lock: {} };

/**
 * Runs `fn` under the network's lock (one lock for the whole command). The lock lives
 * next to the index, outside the network directory (index.ts).
 */
export async function locked<T>(store: DiskStore, deps: Deps, fn: (index: ReservationIndex) => T): Promise<T> {
  store.ensure();
  const index = new ReservationIndex(store, store.dataDir, store.network);
  let held;
  try {
    held = await acquireLock(index.lockPath, deps.lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    index.ensure();
    held = await acquireLock(index.lockPath, deps.lock);
  }
  try {
    return fn(index);
  } finally {
    held.release();
  }
}

/** What a command knows about the reservations of one container ID. */
export interface Known {
  obs: Observation;
  /** Every reservation of the container ID (any ifname), verified against the directory. */
  ofId: Reservation[];
  /** The full scan, when the index could not be trusted; the index is rebuilt from it. */
  all?: Reservation[];
}

/**
 * The reservations of `key.id`: from the index when its state matches the directory
 * and every entry it names is verified on disk, else from a full scan. `sets` is the
 * number of range sets whose `last_reserved_ip.N` guards the index.
 */
export function lookup(index: ReservationIndex, deps: Deps, key: AttachmentKey, sets: number, opts: { keepFds: boolean; scan?: boolean }): Known {
  const store = index.store;
  const state = index.loadState();
  const obs = index.observe(sets, state, opts.keepFds);
  if (opts.keepFds) store.observed = obs.lr;
  const id = key.id.trim();
  if (!opts.scan && indexable(id) && ReservationIndex.matches(state, obs)) {
    try {
      const ofId = index.read(id);
      if (ofId.every((r) => index.verify(r))) return { obs, ofId };
      deps.log(`index entry for ${id} does not match ${store.dir}; scanning`);
    } catch (err) {
      deps.log(`index unreadable (${(err as Error).message}); scanning`);
    }
  }
  deps.trace?.("scan");
  const all = scanned(store, deps).reservations;
  return { obs, all, ofId: all.filter((r) => r.id === id) };
}

/** Number of range sets in a raw (unvalidated) config: DEL guards the index with them too. */
export function rawSetCount(inv: Invocation): number {
  const ipam = (inv.config.ipam ?? {}) as Record<string, unknown>;
  const rc = (inv.config.runtimeConfig ?? {}) as Record<string, unknown>;
  const len = (v: unknown): number => (Array.isArray(v) ? v.length : 0);
  return Math.max(1, len(ipam.ranges) + (ipam.subnet ? 1 : 0), len(rc.ipRanges));
}

export function scanned(store: DiskStore, deps: Deps): Scan {
  const s = store.scan();
  for (const p of s.problems) deps.log(`unreadable reservation ${p}`);
  return s;
}

export function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** DEL and GC need only the store's location, never valid ranges. */
export function storeOf(inv: Invocation): DiskStore {
  const ipam = inv.config.ipam as Record<string, unknown> | undefined;
  if (!ipam || typeof ipam !== "object") throw new ConfigError('IPAM config missing "ipam" key');
  const dataDir = ipam.dataDir ?? DEFAULT_DATA_DIR;
  if (typeof dataDir !== "string" || dataDir === "") throw new ConfigError('ipam: "dataDir" must be a non-empty path');
  return new DiskStore(dataDir, inv.config.name);
}

export function keyOf(inv: Invocation): AttachmentKey {
  return { id: inv.containerId, ifname: inv.ifname };
}
