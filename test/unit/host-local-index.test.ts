// The by-attachment index (ipam/host-local/index.ts): used only when it provably matches
// the network directory; anything written behind its back (the Go plugin, a crash) sends
// the next command to a full scan that rebuilds it.
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHandlers } from "../../ipam/host-local/commands.js";
import { bucketOf, ReservationIndex } from "../../ipam/host-local/index.js";
import { DiskStore } from "../../ipam/host-local/store.js";
import type { Command, Invocation, NetConf } from "../../pkg/types/netconf.js";

let dataDir: string;
let logs: string[];
let h: ReturnType<typeof createHandlers>;
let scanCount = 0;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "tscni-hl-idx-"));
  logs = [];
  scanCount = 0;
  h = createHandlers({ log: (l) => logs.push(l), trace: () => scanCount++ });
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const NET = "net1";
const netDir = () => join(dataDir, NET);
const idxDir = () => join(dataDir, ".tscni", NET);

function conf(extra: Record<string, unknown> = {}): NetConf {
  return { cniVersion: "1.1.0", name: NET, type: "bridge", ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.10.0.0/24" }]] }, ...extra } as NetConf;
}
function inv(command: Command, config: NetConf, containerId: string, ifname = "eth0"): Invocation {
  return { command, containerId, netns: "/var/run/netns/x", ifname, args: "", path: [], stdin: JSON.stringify(config), config };
}
const add = async (id: string, ifname = "eth0") => (await h.add(inv("ADD", conf(), id, ifname))).ips!.map((i) => i.address);
const del = (id: string, ifname = "eth0") => h.del(inv("DEL", conf(), id, ifname));
const addresses = () => readdirSync(netDir()).filter((f) => /^\d/.test(f)).sort();
/** Full scans since the last reset. */
const scans = () => scanCount;
const resetScans = () => {
  scanCount = 0;
};
const certified = () => existsSync(join(idxDir(), "state")) && readFileSync(join(idxDir(), "state"), "utf8") !== "";
/** What the Go plugin does on ADD: O_EXCL create, then rewrite last_reserved_ip.N in place. */
function goReserve(ip: string, id: string, ifname = "eth0") {
  writeFileSync(join(netDir(), ip), `${id}\r\n${ifname}`, { flag: "wx" });
  writeFileSync(join(netDir(), "last_reserved_ip.0"), ip);
}
const index = () => new ReservationIndex(new DiskStore(dataDir, NET), dataDir, NET);
/** The index's entry for `id`, as `<ip> <ifname>` lines. */
function indexOf(id: string): string | undefined {
  const rs = index().read(id);
  return rs.length ? rs.map((r) => (r.ifname === undefined ? `${formatIp(r.ip)}\n` : `${formatIp(r.ip)} ${r.ifname}\n`)).sort().join("") : undefined;
}
/** Writes the index's entry for `id` directly (simulating damage or a crash). */
function setIndex(id: string, entries: [string, string | undefined][]) {
  index().write(id, entries.map(([a, ifname]) => (ifname === undefined ? { ip: ipOf(a), id } : { ip: ipOf(a), id, ifname })));
}

describe("index", () => {
  it("lives outside the network directory, which keeps the reference layout only", async () => {
    await add("c1");
    expect(readdirSync(netDir()).sort()).toEqual(["10.10.0.2", "last_reserved_ip.0", "lock"]);
    expect(readdirSync(idxDir()).sort()).toEqual(["buckets", "state"]);
    expect(readdirSync(join(idxDir(), "buckets"))).toEqual([bucketOf("c1")]);
    expect(indexOf("c1")).toBe("10.10.0.2 eth0\n");
  });

  it("re-ADD and DEL are answered by the index, without a scan", async () => {
    await add("c1");
    await add("c2");
    resetScans();
    expect(await add("c1")).toEqual(["10.10.0.2/24"]);
    await del("c2");
    expect(scans()).toBe(0);
    expect(addresses()).toEqual(["10.10.0.2"]);
    expect(indexOf("c2")).toBeUndefined();
    expect(certified()).toBe(true);
    await del("c2"); // idempotent, still no scan
    expect(scans()).toBe(0);
  });

  it("a second interface of the same container shares its entry", async () => {
    await add("c1", "eth0");
    await add("c1", "net1");
    expect(indexOf("c1")).toBe("10.10.0.2 eth0\n10.10.0.3 net1\n");
    await del("c1", "eth0");
    expect(indexOf("c1")).toBe("10.10.0.3 net1\n");
    expect(await add("c1", "net1")).toEqual(["10.10.0.3/24"]);
  });

  it("a Go ADD behind its back is found: re-ADD returns it, DEL releases it", async () => {
    await add("c1");
    goReserve("10.10.0.9", "go1");
    expect(ReservationIndex.matches(new ReservationIndex(new DiskStore(dataDir, NET), dataDir, NET).loadState(), observeNow())).toBe(false);
    expect(await add("go1")).toEqual(["10.10.0.9/24"]);
    expect(addresses()).toEqual(["10.10.0.2", "10.10.0.9"]);
    expect(indexOf("go1")).toBe("10.10.0.9 eth0\n");
    goReserve("10.10.0.20", "go2");
    await del("go2");
    expect(addresses()).toEqual(["10.10.0.2", "10.10.0.9"]);
  });

  it("a Go reserve folded into the recorded mtime is still caught by last_reserved_ip", async () => {
    await add("c1");
    const state = JSON.parse(readFileSync(join(idxDir(), "state"), "utf8"));
    goReserve("10.10.0.30", "go3");
    // Pretend the directory's mtime did not move (same clock tick on a coarse-timestamp kernel).
    const { statSync } = await import("node:fs");
    state.dirMtimeNs = String(statSync(netDir(), { bigint: true }).mtimeNs);
    writeFileSync(join(idxDir(), "state"), JSON.stringify(state));
    resetScans();
    expect(await add("go3")).toEqual(["10.10.0.30/24"]);
    expect(scans()).toBe(1);
  });

  it("a Go DEL behind its back: the stale hit is verified, not believed", async () => {
    await add("c1");
    unlinkSync(join(netDir(), "10.10.0.2"));
    // Even with a state that claims nothing changed, the entry is checked against the file.
    const store = new DiskStore(dataDir, NET);
    const idx = new ReservationIndex(store, dataDir, NET);
    const obs = idx.observe(1, idx.loadState(), false);
    writeFileSync(join(idxDir(), "state"), JSON.stringify({ ...idx.loadState(), dirMtimeNs: obs.dirMtimeNs }));
    expect(await add("c1")).toEqual(["10.10.0.3/24"]);
    expect(addresses()).toEqual(["10.10.0.3"]);
    expect(indexOf("c1")).toBe("10.10.0.3 eth0\n");
  });

  it("an index entry naming another holder's address is never believed", async () => {
    await add("c1");
    await add("c2");
    // Damage the index: c2's entry claims c1's address.
    setIndex("c2", [["10.10.0.2", "eth0"]]);
    await del("c2");
    expect(addresses()).toEqual(["10.10.0.2"]);
    expect(indexOf("c1")).toBe("10.10.0.2 eth0\n");
    expect(indexOf("c2")).toBeUndefined();
  });

  it("IDs sharing a bucket keep their own entries", async () => {
    const ids = Array.from({ length: 2000 }, (_, i) => `pod${i}`);
    const b = bucketOf(ids[0]!);
    const [x, y] = ids.filter((i) => bucketOf(i) === b);
    await add(x!);
    await add(y!);
    expect(indexOf(x!)).toBe("10.10.0.2 eth0\n");
    expect(indexOf(y!)).toBe("10.10.0.3 eth0\n");
    resetScans();
    await del(x!);
    expect(indexOf(y!)).toBe("10.10.0.3 eth0\n");
    expect(readdirSync(join(idxDir(), "buckets"))).toEqual([b]);
    expect(await add(y!)).toEqual(["10.10.0.3/24"]);
    expect(scans()).toBe(0);
  });

  it("a failed, rolled-back ADD leaves the index trusted and unchanged", async () => {
    const small = { ...conf(), ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.10.0.0/30" }]] } } as NetConf;
    await h.add(inv("ADD", small, "only"));
    resetScans();
    await expect(h.add(inv("ADD", small, "second"))).rejects.toMatchObject({ code: 11 });
    expect(certified()).toBe(true);
    expect(indexOf("second")).toBeUndefined();
    await h.del(inv("DEL", small, "only"));
    expect(scans()).toBe(0);
    expect(addresses()).toEqual([]);
    expect(readdirSync(join(idxDir(), "buckets"))).toEqual([]); // empty buckets are removed
  });

  it("a crash between reserve and index update: the next command scans and rebuilds", async () => {
    await add("c1");
    // The crashed ADD: state emptied first (as every writer does), then the address file.
    writeFileSync(join(idxDir(), "state"), "");
    writeFileSync(join(netDir(), "10.10.0.3"), "crashed\r\neth0", { flag: "wx" });
    resetScans();
    await del("crashed"); // the runtime cleans up the failed ADD
    expect(scans()).toBe(1);
    expect(addresses()).toEqual(["10.10.0.2"]);
    expect(certified()).toBe(true);
    expect(indexOf("crashed")).toBeUndefined();
    expect(indexOf("c1")).toBe("10.10.0.2 eth0\n");
  });

  it("a crash after the index entry but before the state: rebuilt from the directory", async () => {
    await add("c1");
    writeFileSync(join(idxDir(), "state"), ""); // invalidated, as every writer does first
    setIndex("ghost", [["10.10.0.7", "eth0"]]);
    expect(await add("ghost")).toEqual(["10.10.0.3/24"]);
    expect(indexOf("ghost")).toBe("10.10.0.3 eth0\n");
  });

  it("an ifname with a space (written by another plugin) round-trips through the index", async () => {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(netDir());
    writeFileSync(join(netDir(), "10.10.0.9"), "odd\r\nmy if");
    await add("c1"); // builds the index from the directory
    expect(indexOf("odd")).toBe("10.10.0.9 my if\n");
    resetScans();
    await del("odd", "my if");
    expect(scans()).toBe(0);
    expect(addresses()).toEqual(["10.10.0.2"]);
  });

  it("a garbage state or entry falls back to a scan", async () => {
    await add("c1");
    writeFileSync(join(idxDir(), "state"), "{not json");
    expect(await add("c1")).toEqual(["10.10.0.2/24"]);
    writeFileSync(join(idxDir(), "buckets", bucketOf("c1")), "nonsense\n");
    expect(await add("c1")).toEqual(["10.10.0.2/24"]);
    expect(indexOf("c1")).toBe("10.10.0.2 eth0\n");
  });

  it("a node switched from Go: the first command builds the index from the directory", async () => {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(netDir());
    writeFileSync(join(netDir(), "10.10.0.5"), "old1\r\neth0");
    writeFileSync(join(netDir(), "10.10.0.6"), "legacy"); // id-only, older plugins
    writeFileSync(join(netDir(), "last_reserved_ip.0"), "10.10.0.6");
    expect(await add("old1")).toEqual(["10.10.0.5/24"]);
    expect(indexOf("legacy")).toBe("10.10.0.6\n");
    expect(await add("new1")).toEqual(["10.10.0.7/24"]);
    resetScans();
    await del("legacy", "eth3");
    expect(scans()).toBe(0);
    expect(addresses()).toEqual(["10.10.0.5", "10.10.0.7"]);
  });

  it("GC keeps the index equal to what stays", async () => {
    await add("c1");
    await add("c2");
    await add("c3");
    goReserve("10.10.0.40", "go4");
    await h.gc({ ...inv("GC", conf({ "cni.dev/valid-attachments": [{ containerID: "c2", ifname: "eth0" }, { containerID: "go4", ifname: "eth0" }] }), "") });
    expect(addresses()).toEqual(["10.10.0.3", "10.10.0.40"]);
    expect(["c1", "c2", "c3", "go4"].map(indexOf)).toEqual([undefined, "10.10.0.3 eth0\n", undefined, "10.10.0.40 eth0\n"]);
    expect(certified()).toBe(true);
    resetScans();
    await del("go4");
    expect(addresses()).toEqual(["10.10.0.3"]);
    expect(scans()).toBe(0);
  });

  it("CHECK uses the index and confirms a miss with a scan", async () => {
    await add("c1");
    await h.check(inv("CHECK", conf(), "c1"));
    goReserve("10.10.0.50", "go5");
    await h.check(inv("CHECK", conf(), "go5"));
    await expect(h.check(inv("CHECK", conf(), "nobody"))).rejects.toMatchObject({ code: 3 });
  });

  it("a foreign rewrite of last_reserved_ip while a command runs prevents certification", async () => {
    await add("c1");
    const store = new DiskStore(dataDir, NET);
    const idx = new ReservationIndex(store, dataDir, NET);
    const obs = idx.observe(1, idx.loadState(), true);
    store.observed = obs.lr;
    // Go rewrites the file in place after we observed it, before our rename replaces it.
    writeFileSync(join(netDir(), "last_reserved_ip.0"), "10.10.0.60");
    expect(store.reserve(ipOf("10.10.0.61"), { id: "x", ifname: "eth0" }, 0)).toBe(true);
    expect(store.foreign).toBe(true);
    expect(idx.certify(obs)).toBe(false);
    ReservationIndex.close(obs);
  });

  it("our own writes certify; a later foreign write to last_reserved_ip invalidates", async () => {
    await add("c1");
    const idx = new ReservationIndex(new DiskStore(dataDir, NET), dataDir, NET);
    expect(ReservationIndex.matches(idx.loadState(), idx.observe(1, idx.loadState(), false))).toBe(true);
    // Same content, new inode: still a change.
    writeFileSync(join(netDir(), "tmp"), "10.10.0.2");
    renameSync(join(netDir(), "tmp"), join(netDir(), "last_reserved_ip.0"));
    expect(ReservationIndex.matches(idx.loadState(), idx.observe(1, idx.loadState(), false))).toBe(false);
  });
});

import { formatIp, parseIp } from "../../pkg/ip.js";
const ipOf = (s: string) => parseIp(s)!;
function observeNow() {
  const idx = new ReservationIndex(new DiskStore(dataDir, NET), dataDir, NET);
  return idx.observe(1, idx.loadState(), false);
}
