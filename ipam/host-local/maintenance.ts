/** host-local GC and STATUS (CNI 1.1). */
import { accessSync, constants } from "node:fs";
import { validAttachments } from "../../pkg/attachments.js";
import { CniCode, CniError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import { formatIp } from "../../pkg/ip.js";
import { loadConfig } from "./config.js";
import { exists, locked, rawSetCount, scanned, storeOf } from "./context.js";
import { ReservationIndex } from "./index.js";
import type { Deps } from "./context.js";
import { capacity, rangeFor } from "./range-set.js";
import { DiskStore, heldBy } from "./store.js";
import type { AttachmentKey, Reservation } from "./store.js";

/** GC keeps the attachments listed in `cni.dev/valid-attachments` (or `cni.dev/attachments`). */
export async function gc(inv: Invocation, deps: Deps): Promise<void> {
  const valid = validAttachments(inv.config)?.map((a): AttachmentKey => ({ id: a.containerId, ifname: a.ifname }));
  const store = storeOf(inv);
  if (valid === undefined) {
    // Releasing everything because a runtime forgot the list would drop every live pod.
    deps.log(`GC without "cni.dev/valid-attachments": nothing released in ${store.dir}`);
    return;
  }
  if (!exists(store.dir)) return;
  await locked(store, deps, (index) => {
    // GC reads everything anyway: a full scan, then the index is rebuilt from what stays.
    const obs = index.observe(rawSetCount(inv), index.loadState(), true);
    store.observed = obs.lr;
    try {
      index.invalidate();
      const errors: string[] = [];
      const kept: Reservation[] = [];
      for (const r of scanned(store, deps).reservations) {
        if (valid.some((k) => heldBy(r, k))) {
          kept.push(r);
          continue;
        }
        try {
          store.release(r.ip);
          deps.log(`GC released ${formatIp(r.ip)} (${r.id}${r.ifname === undefined ? "" : `/${r.ifname}`})`);
        } catch (err) {
          kept.push(r);
          errors.push((err as Error).message);
        }
      }
      if (errors.length) throw new CniError(CniCode.IoFailure, `GC could not release every stale address in ${store.dir}`, errors.join("; "));
      try {
        index.rebuild(kept);
        index.certify(obs);
      } catch (err) {
        deps.log(`index not updated: ${(err as Error).message}`);
      }
    } finally {
      ReservationIndex.close(obs);
    }
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
export async function status(inv: Invocation, deps: Deps): Promise<void> {
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

