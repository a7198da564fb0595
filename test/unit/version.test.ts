import { describe, expect, it } from "vitest";
import { compareVersions, convertResult, fromCurrent, isSupported, SUPPORTED_VERSIONS, toCurrent, versionAtLeast } from "../../pkg/version.js";
import type { Result } from "../../pkg/types/result.js";

const full: Result = {
  cniVersion: "1.1.0",
  interfaces: [
    { name: "cni0", mac: "aa:bb:cc:dd:ee:01", mtu: 1500 },
    { name: "eth0", mac: "aa:bb:cc:dd:ee:02", sandbox: "/var/run/netns/p", mtu: 1500, socketPath: "/s", pciID: "0000:00:01.0" },
  ],
  ips: [
    { address: "10.85.0.5/16", gateway: "10.85.0.1", interface: 1 },
    { address: "fd00::5/64", gateway: "fd00::1", interface: 1 },
  ],
  routes: [
    { dst: "0.0.0.0/0", gw: "10.85.0.1", mtu: 1400, priority: 10 },
    { dst: "::/0", gw: "fd00::1", table: 100 },
    { dst: "192.0.2.0/24" },
  ],
  dns: { nameservers: ["10.85.0.53"], domain: "d", search: ["s"], options: ["o"] },
};

describe("version helpers", () => {
  it("compares numerically", () => {
    expect(compareVersions("0.10.0", "0.9.0")).toBeGreaterThan(0);
    expect(compareVersions("1.0.0", "1.0.0")).toBe(0);
    expect(compareVersions("0.3.1", "0.4.0")).toBeLessThan(0);
    expect(versionAtLeast("1.1.0", "1.1.0")).toBe(true);
    expect(isSupported("0.3.1")).toBe(true);
    expect(isSupported("0.5.0")).toBe(false);
  });
});

describe("fromCurrent", () => {
  it.each(["0.1.0", "0.2.0"])("%s: ip4/ip6 blocks, routes split by family, dns", (v) => {
    expect(fromCurrent(full, v)).toEqual({
      cniVersion: v,
      ip4: { ip: "10.85.0.5/16", gateway: "10.85.0.1", routes: [{ dst: "0.0.0.0/0", gw: "10.85.0.1" }, { dst: "192.0.2.0/24" }] },
      ip6: { ip: "fd00::5/64", gateway: "fd00::1", routes: [{ dst: "::/0", gw: "fd00::1" }] },
      dns: full.dns,
    });
  });

  it.each(["0.3.0", "0.3.1", "0.4.0"])("%s: ips carry version, 1.1 fields dropped", (v) => {
    const out = fromCurrent(full, v);
    expect(out.cniVersion).toBe(v);
    expect(out.ips).toEqual([
      { version: "4", address: "10.85.0.5/16", gateway: "10.85.0.1", interface: 1 },
      { version: "6", address: "fd00::5/64", gateway: "fd00::1", interface: 1 },
    ]);
    expect(out.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.85.0.1" }, { dst: "::/0", gw: "fd00::1" }, { dst: "192.0.2.0/24" }]);
    expect(out.interfaces).toEqual([
      { name: "cni0", mac: "aa:bb:cc:dd:ee:01" },
      { name: "eth0", mac: "aa:bb:cc:dd:ee:02", sandbox: "/var/run/netns/p" },
    ]);
  });

  it("1.0.0 drops ips[].version and the 1.1 fields; 1.1.0 keeps them", () => {
    const v100 = fromCurrent(full, "1.0.0");
    expect((v100.ips as object[])[0]).toEqual({ address: "10.85.0.5/16", gateway: "10.85.0.1", interface: 1 });
    expect((v100.routes as object[])[0]).toEqual({ dst: "0.0.0.0/0", gw: "10.85.0.1" });
    expect(fromCurrent(full, "1.1.0")).toEqual(full);
  });

  it("refuses unknown versions and 0.2.0 without addresses (code 1)", () => {
    expect(() => fromCurrent(full, "0.5.0")).toThrow(expect.objectContaining({ code: 1 }));
    expect(() => fromCurrent({ cniVersion: "1.1.0", interfaces: [{ name: "x" }] }, "0.2.0")).toThrow(expect.objectContaining({ code: 1 }));
  });
});

describe("every direction", () => {
  const ipamOnly: Result = { cniVersion: "1.1.0", ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }], routes: [{ dst: "0.0.0.0/0" }], dns: { nameservers: ["1.1.1.1"] } };
  for (const from of SUPPORTED_VERSIONS) {
    for (const to of SUPPORTED_VERSIONS) {
      it(`${from} -> ${to} keeps addresses, gateways, routes, dns`, () => {
        const src = fromCurrent(ipamOnly, from);
        const out = convertResult(src, to);
        expect(out.cniVersion).toBe(to);
        expect(toCurrent(out)).toEqual(ipamOnly);
        if (from === to) expect(out).toEqual(src);
      });
    }
  }

  it("reads an old prevResult", () => {
    expect(toCurrent({ cniVersion: "0.2.0", ip4: { ip: "10.0.0.2/24", gateway: "10.0.0.1", routes: [{ dst: "0.0.0.0/0" }] } })).toEqual({
      cniVersion: "1.1.0",
      ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }],
      routes: [{ dst: "0.0.0.0/0" }],
    });
    expect(() => toCurrent({ cniVersion: "7.0.0" })).toThrow(expect.objectContaining({ code: 1 }));
  });
});
