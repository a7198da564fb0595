import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DiskStore, decodeReservation, encodeReservation, heldBy } from "../../ipam/host-local/store.js";
import { formatIp, parseIp } from "../../pkg/ip.js";

const ip = (s: string) => parseIp(s)!;
let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "tscni-hl-store-"));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe("DiskStore", () => {
  it("writes the reference format byte for byte", () => {
    const s = new DiskStore(dataDir, "net1");
    s.ensure();
    expect(s.reserve(ip("10.10.0.2"), { id: "c1", ifname: "eth0" }, 0)).toBe(true);
    expect(s.reserve(ip("fd00:0:0:1::2"), { id: " c1 ", ifname: "eth0" }, 1)).toBe(true);
    const dir = join(dataDir, "net1");
    expect(readdirSync(dir).sort()).toEqual(["10.10.0.2", "fd00:0:0:1::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
    expect(readFileSync(join(dir, "10.10.0.2"))).toEqual(Buffer.from("c1\r\neth0"));
    expect(readFileSync(join(dir, "fd00:0:0:1::2"), "utf8")).toBe("c1\r\neth0");
    expect(readFileSync(join(dir, "last_reserved_ip.0"), "utf8")).toBe("10.10.0.2");
    expect(readFileSync(join(dir, "last_reserved_ip.1"), "utf8")).toBe("fd00:0:0:1::2");
    const mode = (f: string) => (statSync(join(dir, f)).mode & 0o777).toString(8);
    const umask = process.umask();
    expect(mode("10.10.0.2")).toBe((0o644 & ~umask).toString(8));
    expect(mode("lock")).toBe((0o750 & ~umask).toString(8));
    expect((statSync(dir).mode & 0o777).toString(8)).toBe((0o755 & ~umask).toString(8));
  });

  it("names IPv6 files as Go's net.IP.String() does", () => {
    const s = new DiskStore(dataDir, "n");
    s.ensure();
    for (const a of ["2001:DB8:0:0:1:0:0:1", "fd00::0:0:1", "2001:db8:0:1:1:1:1:1"]) s.reserve(ip(a), { id: "x", ifname: "e" }, 0);
    expect(readdirSync(join(dataDir, "n")).filter((f) => f.includes(":")).sort()).toEqual(["2001:db8:0:1:1:1:1:1", "2001:db8::1:0:0:1", "fd00::1"]);
  });

  it("refuses a taken address and scans what is there, legacy files included", () => {
    const s = new DiskStore(dataDir, "n");
    s.ensure();
    expect(s.reserve(ip("10.0.0.2"), { id: "a", ifname: "eth0" }, 0)).toBe(true);
    expect(s.reserve(ip("10.0.0.2"), { id: "b", ifname: "eth0" }, 0)).toBe(false);
    writeFileSync(join(dataDir, "n", "10.0.0.3"), "legacy-id\n");
    const scan = s.scan();
    expect(scan.problems).toEqual([]);
    expect(scan.reservations.map((r) => [formatIp(r.ip), r.id, r.ifname]).sort()).toEqual([
      ["10.0.0.2", "a", "eth0"],
      ["10.0.0.3", "legacy-id", undefined],
    ]);
    s.release(ip("10.0.0.2"));
    s.release(ip("10.0.0.2"));
    expect(s.scan().reservations).toHaveLength(1);
  });

  it("reports unreadable entries", () => {
    const s = new DiskStore(dataDir, "n");
    s.ensure();
    mkdirSync(join(dataDir, "n", "10.0.0.7"));
    expect(s.scan().problems[0]).toMatch(/10\.0\.0\.7: EISDIR/);
  });

  it("rolls back the IP file when last_reserved_ip cannot be written", () => {
    const s = new DiskStore(dataDir, "n");
    s.ensure();
    mkdirSync(join(dataDir, "n", "last_reserved_ip.0"));
    writeFileSync(join(dataDir, "n", "last_reserved_ip.0", "x"), "");
    expect(() => s.reserve(ip("10.0.0.2"), { id: "a", ifname: "eth0" }, 0)).toThrow(/cannot write .*last_reserved_ip\.0/);
    expect(readdirSync(join(dataDir, "n")).sort()).toEqual(["last_reserved_ip.0", "lock"]);
  });

  it("I/O errors are code 5", () => {
    if (process.getuid?.() === 0) return; // root writes anywhere
    const s = new DiskStore(dataDir, "n");
    s.ensure();
    chmodSync(join(dataDir, "n"), 0o500);
    try {
      expect(() => s.reserve(ip("10.0.0.2"), { id: "a", ifname: "eth0" }, 0)).toThrow(expect.objectContaining({ code: 5 }));
    } finally {
      chmodSync(join(dataDir, "n"), 0o755);
    }
  });
});

describe("reservation encoding", () => {
  it("round trips and matches", () => {
    expect(encodeReservation({ id: " abc ", ifname: "eth0" })).toBe("abc\r\neth0");
    const r = decodeReservation(ip("10.0.0.1"), "abc\r\neth0");
    expect(heldBy(r, { id: "abc", ifname: "eth0" })).toBe(true);
    expect(heldBy(r, { id: "abc", ifname: "eth1" })).toBe(false);
    expect(heldBy(decodeReservation(ip("10.0.0.1"), "abc"), { id: "abc", ifname: "eth1" })).toBe(true);
  });
});
