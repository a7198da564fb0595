/**
 * Round-robin allocation over a Store: resume after the range set's last reserved
 * address, skip the gateway, network and broadcast, give up when the walk comes back
 * to where it started. Candidates are generated lazily, so a /64 is never enumerated.
 */
import { CniCode, CniError } from "../../pkg/types/errors.js";
import { compareIp, formatIp, nextIp } from "../../pkg/ip.js";
import type { IpAddr } from "../../pkg/ip.js";
import { formatRangeSet, isAllocatable, rangeContains, rangeFor } from "./range-set.js";
import type { Range, RangeSet } from "./range-set.js";
import type { AttachmentKey, Reservation, Store } from "./store.js";
import { heldBy } from "./store.js";

export interface Candidate {
  ip: IpAddr;
  range: Range;
}

/** Every allocatable address of the set once, starting after `last` (or at the first rangeStart). */
export function* roundRobin(set: RangeSet, last?: IpAddr): Generator<Candidate> {
  const step = (ri: number, a: IpAddr): [number, IpAddr] => {
    const r = set[ri]!;
    if (compareIp(a, r.end) === 0) {
      const n = (ri + 1) % set.length;
      return [n, set[n]!.start];
    }
    return [ri, nextIp(a)];
  };
  const li = last ? set.findIndex((r) => rangeContains(r, last)) : -1;
  let [ri, a]: [number, IpAddr] = li >= 0 ? step(li, last!) : [0, set[0]!.start];
  const [r0, a0] = [ri, a];
  do {
    const r = set[ri]!;
    if (isAllocatable(r, a)) yield { ip: a, range: r };
    [ri, a] = step(ri, a);
  } while (ri !== r0 || a.value !== a0.value);
}

export interface Allocation extends Candidate {
  /** False when the attachment already held this address (a repeated ADD). */
  fresh: boolean;
}

export interface AllocateRequest {
  set: RangeSet;
  /** The range set's index: names `last_reserved_ip.<index>` and messages. */
  index: number;
  key: AttachmentKey;
  requested?: IpAddr;
  /**
   * What the store held when the lock was taken: everything (a full scan), or at least
   * every reservation of `key.id` (from the index; O_EXCL then decides what is free).
   */
  reservations: readonly Reservation[];
}

/** One address for `key` from one range set. */
export function allocate(store: Store, req: AllocateRequest): Allocation {
  const { set, index, key, requested } = req;
  const inSet = req.reservations.filter((r) => rangeFor(set, r.ip) !== undefined);
  const mine = inSet.find((r) => heldBy(r, key));
  if (mine) {
    // A repeated ADD for the same attachment returns what it already holds.
    if (requested && compareIp(requested, mine.ip) !== 0) {
      throw new CniError(CniCode.InvalidConfig, `range set ${index}: ${key.id}/${key.ifname} already holds ${formatIp(mine.ip)}, not the requested ${formatIp(requested)}`);
    }
    return { ip: mine.ip, range: rangeFor(set, mine.ip)!, fresh: false };
  }
  if (requested) {
    const range = rangeFor(set, requested);
    if (!range || !isAllocatable(range, requested)) {
      throw new CniError(CniCode.InvalidConfig, `range set ${index}: requested IP ${formatIp(requested)} cannot be allocated from ${formatRangeSet(set)}`);
    }
    if (!store.reserve(requested, key, index)) {
      const holder = inSet.find((r) => compareIp(r.ip, requested) === 0) ?? store.holderOf?.(requested);
      throw new CniError(
        CniCode.TryAgainLater,
        `range set ${index}: requested IP ${formatIp(requested)} is already reserved${holder ? ` by ${holder.id}${holder.ifname ? `/${holder.ifname}` : ""}` : ""}`,
      );
    }
    return { ip: requested, range, fresh: true };
  }
  const taken = new Set(inSet.map((r) => r.ip.value));
  for (const c of roundRobin(set, store.lastReserved(index))) {
    if (taken.has(c.ip.value)) continue;
    if (store.reserve(c.ip, key, index)) return { ...c, fresh: true };
  }
  throw new CniError(CniCode.TryAgainLater, `range set ${index}: no IP addresses available in ${formatRangeSet(set)}`);
}
