import { describe, expect, it } from "vitest";
import { collectVlanTrunk, macFromCniArgs, parseBridgeConfig } from "../../plugins/bridge/config.js";
import { ConfigError } from "../../pkg/types/errors.js";
import type { NetConf } from "../../pkg/types/netconf.js";

function conf(extra: Record<string, unknown> = {}, args = ""): ReturnType<typeof parseBridgeConfig> {
  const config = { cniVersion: "1.0.0", name: "net", type: "bridge", ...extra } as NetConf;
  return parseBridgeConfig({ config, args });
}

describe("bridge config defaults", () => {
  it("matches the reference defaults", () => {
    const c = conf();
    expect(c.bridge).toBe("cni0");
    expect(c.preserveDefaultVlan).toBe(true);
    expect([c.isGateway, c.isDefaultGateway, c.forceAddress, c.ipMasq, c.hairpinMode, c.promiscMode, c.macspoofchk, c.enabledad, c.disableContainerInterface, c.portIsolation]).toEqual(Array(10).fill(false));
    expect([c.mtu, c.vlan, c.vlanTrunk, c.ipam, c.mac, c.ipMasqBackend]).toEqual([0, 0, [], undefined, undefined, undefined]);
  });
  it("isDefaultGateway implies isGateway", () => {
    expect(conf({ isDefaultGateway: true }).isGateway).toBe(true);
  });
  it("an ipam without type is L2", () => {
    expect(conf({ ipam: {} }).ipam).toBeUndefined();
    expect(conf({ ipam: { type: "host-local" } }).ipam?.type).toBe("host-local");
  });
});

describe("bridge config errors are code 7", () => {
  const bad: [string, Record<string, unknown>][] = [
    ["hairpin + promisc", { hairpinMode: true, promiscMode: true }],
    ["vlan too big", { vlan: 4095 }],
    ["negative vlan", { vlan: -1 }],
    ["vlan and trunk", { vlan: 10, vlanTrunk: [{ id: 20 }] }],
    ["trunk id 0", { vlanTrunk: [{ id: 0 }] }],
    ["trunk min > max", { vlanTrunk: [{ minID: 20, maxID: 10 }] }],
    ["trunk min only", { vlanTrunk: [{ minID: 20 }] }],
    ["bad backend", { ipMasqBackend: "pf" }],
    ["non-boolean", { ipMasq: "yes" }],
    ["bridge name too long", { bridge: "a-very-long-bridge-name" }],
    ["mtu too small", { mtu: 20 }],
    ["bad mac", { runtimeConfig: { mac: "zz:00:00:00:00:00" } }],
    ["multicast mac", { args: { cni: { mac: "01:00:5e:00:00:01" } } }],
    ["ipam with disabled interface", { disableContainerInterface: true, ipam: { type: "host-local" } }],
    ["bad nonMasqueradeCIDRs", { nonMasqueradeCIDRs: ["10.0.0.0/33"] }],
    ["relative logFile", { logFile: "log.json" }],
  ];
  for (const [name, extra] of bad) {
    it(name, () => {
      expect(() => conf(extra)).toThrow(ConfigError);
      try {
        conf(extra);
      } catch (e) {
        expect((e as ConfigError).code).toBe(7);
      }
    });
  }
});

describe("MAC sources", () => {
  it("runtimeConfig beats args.cni beats CNI_ARGS", () => {
    expect(conf({}, "IgnoreUnknown=1;MAC=02:00:00:00:00:01").mac).toBe("02:00:00:00:00:01");
    expect(conf({ args: { cni: { mac: "02:00:00:00:00:02" } } }, "MAC=02:00:00:00:00:01").mac).toBe("02:00:00:00:00:02");
    expect(conf({ args: { cni: { mac: "02:00:00:00:00:02" } }, runtimeConfig: { mac: "02:00:00:00:00:03" } }, "MAC=02:00:00:00:00:01").mac).toBe("02:00:00:00:00:03");
  });
  it("reads MAC= out of CNI_ARGS", () => {
    expect(macFromCniArgs("K8S_POD_NAME=a;MAC=02:AB:00:00:00:01")).toBe("02:AB:00:00:00:01");
    expect(macFromCniArgs("K8S_POD_NAME=a")).toBeUndefined();
  });
});

describe("vlanTrunk", () => {
  it("unions ids and ranges, sorted", () => {
    expect(collectVlanTrunk([{ id: 5 }, { minID: 10, maxID: 12 }, { id: 11 }])).toEqual([5, 10, 11, 12]);
  });
});

describe("nonMasqueradeCIDRs and logFile", () => {
  it("parses", () => {
    const c = conf({ nonMasqueradeCIDRs: ["10.200.0.0/16"], logFile: "/var/log/x.jsonl" });
    expect(c.nonMasqueradeCidrs).toHaveLength(1);
    expect(c.logFile).toBe("/var/log/x.jsonl");
  });
});
