import { describe, expect, it } from "vitest";
import { allocate, roundRobin } from "../../ipam/host-local/allocator.js";
import { canonicalizeRangeSet } from "../../ipam/host-local/range-set.js";
import type { RangeSet } from "../../ipam/host-local/range-set.js";
import { MemoryStore } from "../../ipam/host-local/store.js";
import { formatIp, parseIp } from "../../pkg/ip.js";
import { CniError } from "../../pkg/types/errors.js";

const ip = (s: string) => parseIp(s)!;
const set = (...raw: object[]): RangeSet => canonicalizeRangeSet(raw, 0);

function take(s: RangeSet, n: number, last?: string): string[] {
  const out: string[] = [];
  for (const c of roundRobin(s, last ? ip(last) : undefined)) {
    out.push(formatIp(c.ip));
    if (out.length === n) break;
  }
  return out;
}

function run(s: RangeSet, store: MemoryStore, id: string, requested?: string) {
  const req = { set: s, index: 0, key: { id, ifname: "eth0" }, reservations: store.scan().reservations, ...(requested ? { requested: ip(requested) } : {}) };
  return allocate(store, req);
}

describe("roundRobin", () => {
  it("starts at rangeStart and skips the gateway", () => {
    expect(take(set({ subnet: "10.0.0.0/29" }), 10)).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
  });

  it("continues after the last reserved address and wraps", () => {
    expect(take(set({ subnet: "10.0.0.0/29" }), 10, "10.0.0.4")).toEqual(["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"]);
  });

  it("ignores a last reserved address outside the set", () => {
    expect(take(set({ subnet: "10.0.0.0/29" }), 2, "10.9.0.4")).toEqual(["10.0.0.2", "10.0.0.3"]);
  });

  it("walks ranges of a set in order and wraps to the first", () => {
    const s = set({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.11" }, { subnet: "10.0.1.0/24", rangeStart: "10.0.1.1", rangeEnd: "10.0.1.3" });
    expect(take(s, 10, "10.0.0.11")).toEqual(["10.0.1.2", "10.0.1.3", "10.0.0.10", "10.0.0.11"]);
  });

  it("skips network and broadcast when the window includes them", () => {
    expect(take(set({ subnet: "10.0.0.0/29", rangeStart: "10.0.0.0", rangeEnd: "10.0.0.7", gateway: "10.0.0.6" }), 10)).toEqual([
      "10.0.0.1",
      "10.0.0.2",
      "10.0.0.3",
      "10.0.0.4",
      "10.0.0.5",
    ]);
  });

  it("is lazy on IPv6 /64 and wraps at the top of the range", () => {
    const s = set({ subnet: "fd00::/64" });
    expect(take(s, 3)).toEqual(["fd00::2", "fd00::3", "fd00::4"]);
    expect(take(s, 2, "fd00::ffff:ffff:ffff:fffe")).toEqual(["fd00::ffff:ffff:ffff:ffff", "fd00::2"]);
  });
});

describe("allocate", () => {
  it("hands out addresses round robin, never reusing a just-released one first", () => {
    const s = set({ subnet: "10.0.0.0/29" });
    const store = new MemoryStore();
    expect(["a", "b", "c"].map((id) => formatIp(run(s, store, id).ip))).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    store.release(ip("10.0.0.2"));
    expect(formatIp(run(s, store, "d").ip)).toBe("10.0.0.5");
    expect(formatIp(run(s, store, "e").ip)).toBe("10.0.0.6");
    expect(formatIp(run(s, store, "f").ip)).toBe("10.0.0.2");
  });

  it("exhaustion is code 11 naming the set", () => {
    const s = set({ subnet: "10.0.0.0/30" });
    const store = new MemoryStore();
    expect(formatIp(run(s, store, "a").ip)).toBe("10.0.0.2");
    let err: CniError | undefined;
    try {
      run(s, store, "b");
    } catch (e) {
      err = e as CniError;
    }
    expect(err?.code).toBe(11);
    expect(err?.message).toMatch(/range set 0: no IP addresses available in 10\.0\.0\.1-10\.0\.0\.2/);
  });

  it("a repeated ADD returns the address already held", () => {
    const s = set({ subnet: "10.0.0.0/24" });
    const store = new MemoryStore();
    const first = run(s, store, "a");
    const again = run(s, store, "a");
    expect(formatIp(again.ip)).toBe(formatIp(first.ip));
    expect(again.fresh).toBe(false);
    expect(store.entries.size).toBe(1);
  });

  it("reserves a requested address, refuses a taken one with code 11", () => {
    const s = set({ subnet: "10.0.0.0/24" });
    const store = new MemoryStore();
    expect(formatIp(run(s, store, "a", "10.0.0.50").ip)).toBe("10.0.0.50");
    expect(store.lastReserved(0) && formatIp(store.lastReserved(0)!)).toBe("10.0.0.50");
    expect(() => run(s, store, "b", "10.0.0.50")).toThrow(/already reserved by a\/eth0/);
    expect(store.entries.size).toBe(1);
  });

  it("skips addresses the store refuses (taken by another plugin meanwhile)", () => {
    const s = set({ subnet: "10.0.0.0/29" });
    const store = new MemoryStore();
    const reservations = store.scan().reservations;
    store.reserve(ip("10.0.0.2"), { id: "go", ifname: "eth0" }, 0);
    store.last.clear();
    const a = allocate(store, { set: s, index: 0, key: { id: "x", ifname: "eth0" }, reservations });
    expect(formatIp(a.ip)).toBe("10.0.0.3");
  });

  it("matches legacy id-only reservations on the id", () => {
    const s = set({ subnet: "10.0.0.0/24" });
    const store = new MemoryStore();
    store.entries.set("10.0.0.9", { ip: ip("10.0.0.9"), id: "old" });
    expect(formatIp(run(s, store, "old").ip)).toBe("10.0.0.9");
  });
});
