/** What every host-local command shares: deps, the store location, the whole-command lock. */
import { statSync } from "node:fs";
import { ConfigError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import { acquireLock } from "../../pkg/lock.js";
import type { LockOptions } from "../../pkg/lock.js";
import { DEFAULT_DATA_DIR } from "./config.js";
import { DiskStore, TSCNI_LOCK_FILE } from "./store.js";
import type { AttachmentKey, Scan } from "./store.js";

export interface Deps {
  /** Diagnostics (stderr in the executable). */
  log(line: string): void;
  lock: Partial<LockOptions>;
}

export const defaultDeps: Deps = { log: (line) => process.stderr.write(`host-local: ${line}\n`), lock: {} };

/** Runs `fn` under the network's lock (one lock for the whole command). */
export async function locked<T>(store: DiskStore, deps: Deps, fn: () => T): Promise<T> {
  store.ensure();
  const held = await acquireLock(`${store.dir}/${TSCNI_LOCK_FILE}`, deps.lock);
  try {
    return fn();
  } finally {
    held.release();
  }
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
