/**
 * host-local ADD / DEL / CHECK, and the handler table (GC and STATUS live in
 * maintenance.ts). Each mutating command takes one lock for its whole run. Handlers
 * never print or exit: the bridge calls them in-process.
 */
import { readFileSync } from "node:fs";
import { CniCode, CniError, ConfigError, asCniError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import type { IpConfig, Result } from "../../pkg/types/result.js";
import type { IpAddr } from "../../pkg/ip.js";
import { compareIp, formatIp } from "../../pkg/ip.js";
import type { Handlers } from "../../pkg/skel.js";
import { LATEST_VERSION, toCurrent } from "../../pkg/version.js";
import { allocate } from "./allocator.js";
import type { Allocation } from "./allocator.js";
import { loadConfig } from "./config.js";
import { defaultDeps, exists, keyOf, locked, lookup, rawSetCount, scanned, storeOf } from "./context.js";
import { ReservationIndex } from "./index.js";
import type { Deps, Known } from "./context.js";
import { gc, status } from "./maintenance.js";
import { parseAddressLoose, rangeFor } from "./range-set.js";
import { parseResolvConf } from "./resolv-conf.js";
import { DiskStore, heldBy } from "./store.js";
import type { AttachmentKey, Reservation } from "./store.js";

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

/** Results of ADDs that reserved nothing new: every address was the attachment's already. */
const reusedResults = new WeakSet<Result>();

/**
 * Whether `result` came from an in-process ADD that found all of its addresses already
 * reserved for the attachment (a repeated ADD): a rollback must then not release them.
 */
export function reservedBefore(result: Result): boolean {
  return reusedResults.has(result);
}

async function add(inv: Invocation, deps: Deps): Promise<Result> {
  const conf = loadConfig(inv.config, inv.args);
  const dns = conf.resolvConf ? readDns(conf.resolvConf) : undefined;
  const store = new DiskStore(conf.dataDir, conf.network);
  const key = keyOf(inv);
  const allocations = await locked(store, deps, (index) => {
    const known = lookup(index, deps, key, conf.rangeSets.length, { keepFds: true });
    try {
      store.beforeWrite = () => index.invalidate();
      // With a full scan, the allocator skips taken addresses without trying them;
      // otherwise the O_EXCL create decides (as in the reference).
      const reservations = known.all ?? known.ofId;
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
        if (undo.length) {
          // Not rolled back cleanly: leave the index untrusted so the next command scans.
          const e = asCniError(err);
          throw new CniError(e.code, e.message, [e.details, ...undo].filter(Boolean).join("; "), { cause: err });
        }
        // Rolled back cleanly: the directory holds what it held, so a trusted index is
        // trusted again (a failed ADD leaves the index as it found it).
        if (!known.all) {
          try {
            index.certify(known.obs);
          } catch {
            /* the index stays untrusted: the next command scans */
          }
        }
        throw err;
      }
      const fresh: Reservation[] = done.filter((a) => a.fresh).map((a) => ({ ip: a.ip, id: key.id.trim(), ifname: key.ifname }));
      if (known.all || fresh.length) updateIndex(index, deps, key.id, known, fresh, []);
      return done;
    } finally {
      ReservationIndex.close(known.obs);
    }
  });
  const result: Result = { cniVersion: LATEST_VERSION, ips: allocations.map(ipConfig) };
  if (conf.routes.length) result.routes = conf.routes;
  if (dns) result.dns = dns;
  if (allocations.length > 0 && allocations.every((a) => !a.fresh)) reusedResults.add(result);
  return result;
}

/**
 * Brings the index up to date after a command added `fresh` and released `gone`, then
 * certifies it. Index trouble never fails the command: the next one scans.
 */
export function updateIndex(index: ReservationIndex, deps: Deps, id: string, known: Known, fresh: readonly Reservation[], gone: readonly Reservation[]): void {
  const keep = (r: Reservation): boolean => !gone.includes(r);
  try {
    index.invalidate();
    if (known.all) index.rebuild([...known.all.filter(keep), ...fresh]);
    else index.write(id.trim(), [...known.ofId.filter(keep), ...fresh]);
    index.certify(known.obs);
  } catch (err) {
    deps.log(`index not updated: ${(err as Error).message}`);
  }
}

/** The reservations DEL releases: exact (id, ifname) matches, else legacy id-only files. */
function releasable(reservations: readonly Reservation[], key: AttachmentKey): Reservation[] {
  const exact = reservations.filter((r) => r.ifname !== undefined && heldBy(r, key));
  return exact.length ? exact : reservations.filter((r) => r.ifname === undefined && heldBy(r, key));
}

async function del(inv: Invocation, deps: Deps): Promise<void> {
  // DEL needs only where the reservations are: a config whose ranges changed or no
  // longer validate must still release what an earlier ADD reserved.
  const store = storeOf(inv);
  if (!exists(store.dir)) return; // nothing was ever reserved here
  const key = keyOf(inv);
  await locked(store, deps, (index) => {
    const known = lookup(index, deps, key, rawSetCount(inv), { keepFds: true });
    try {
      const target = releasable(known.all ?? known.ofId, key);
      if (target.length === 0 && !known.all) return; // nothing held, index trusted
      store.beforeWrite = () => index.invalidate();
      const errors: string[] = [];
      const gone: Reservation[] = [];
      for (const r of target) {
        try {
          store.release(r.ip);
          gone.push(r);
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
      if (errors.length) throw new CniError(CniCode.IoFailure, `releasing addresses of ${key.id}/${key.ifname} failed`, errors.join("; "));
      if (known.all || gone.length) updateIndex(index, deps, key.id, known, [], gone);
    } finally {
      ReservationIndex.close(known.obs);
    }
  });
}

async function check(inv: Invocation, deps: Deps): Promise<void> {
  const conf = loadConfig(inv.config, "", { requested: false });
  const store = new DiskStore(conf.dataDir, conf.network);
  const key = keyOf(inv);
  const prev = inv.config.prevResult ? toCurrent(inv.config.prevResult) : undefined;
  const ours = (ip: IpConfig): IpAddr | undefined => {
    const a = parseAddressLoose(ip.address);
    return a && conf.rangeSets.some((s) => rangeFor(s, a)) ? a : undefined;
  };
  // The index answers when it holds everything CHECK needs (verified on disk); anything
  // missing is confirmed by a full scan before it becomes an error.
  let mine: Reservation[] = [];
  if (exists(store.dir)) {
    const index = new ReservationIndex(store, conf.dataDir, conf.network);
    const known = lookup(index, deps, key, conf.rangeSets.length, { keepFds: false });
    mine = known.ofId.filter((r) => heldBy(r, key));
    const complete = mine.length > 0 && (prev?.ips ?? []).every((ip) => {
      const a = ours(ip);
      return !a || mine.some((r) => compareIp(r.ip, a) === 0);
    });
    if (!complete && !known.all) mine = scanned(store, deps).reservations.filter((r) => heldBy(r, key));
  }
  if (mine.length === 0) {
    throw new CniError(CniCode.UnknownContainer, `host-local: no address is reserved for ${key.id}/${key.ifname} in ${store.dir}`);
  }
  // Every prevResult address inside our ranges must be one we reserved for this attachment.
  for (const ip of prev?.ips ?? []) {
    const a = ours(ip);
    if (!a) continue;
    if (!mine.some((r) => compareIp(r.ip, a) === 0)) {
      throw new CniError(CniCode.UnknownContainer, `host-local: ${formatIp(a)} from prevResult is not reserved for ${key.id}/${key.ifname}`);
    }
  }
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
