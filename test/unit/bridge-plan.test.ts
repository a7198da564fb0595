import { describe, expect, it } from "vitest";
import { parseCidr } from "../../pkg/ip.js";
import { parseBridgeConfig } from "../../plugins/bridge/config.js";
import { computeAddressing } from "../../plugins/bridge/gateways.js";
import { planGateway, planLinks, planVlan, vlanRanges } from "../../plugins/bridge/plan-host.js";
import { planPod, podScript } from "../../plugins/bridge/plan-pod.js";
import { spoofSetupPlan, spoofTeardownPlan } from "../../plugins/bridge/spoofcheck.js";
import { interfaceRoles } from "../../plugins/bridge/prev-result.js";
import { checkLinks } from "../../plugins/bridge/check.js";
import type { NetConf } from "../../pkg/types/netconf.js";

const config = (extra: Record<string, unknown> = {}) =>
  parseBridgeConfig({ config: { cniVersion: "1.0.0", name: "net", type: "bridge", ...extra } as NetConf, args: "" });

const base = {
  ifname: "eth0",
  netnsPath: "/run/netns/pod",
  hostVeth: "veth01234567",
  hostMac: "02:00:00:00:00:01",
  podMac: "02:00:00:00:00:02",
  alias: "tscni:net:eth0:c1",
  bridgeMac: "02:00:00:00:00:03",
};

describe("computeAddressing", () => {
  it("fills the gateway, adds a default route once per family, collects bridge gateways", () => {
    const a = computeAddressing(
      { cniVersion: "1.1.0", ips: [{ address: "10.85.0.5/16" }, { address: "fd00::5/64" }], routes: [] },
      { isGateway: true, isDefaultGateway: true },
    );
    expect(a.ips).toEqual([
      { address: "10.85.0.5/16", gateway: "10.85.0.1", interface: 2 },
      { address: "fd00::5/64", gateway: "fd00::1", interface: 2 },
    ]);
    expect(a.routes).toEqual([
      { dst: "0.0.0.0/0", gw: "10.85.0.1" },
      { dst: "::/0", gw: "fd00::1" },
    ]);
    expect(a.gateways.map((g) => `${g.ip.value}/${g.prefix}`)).toHaveLength(2);
  });
  it("keeps the IPAM default route and gateway; no bridge gateway without isGateway", () => {
    const a = computeAddressing(
      { cniVersion: "1.1.0", ips: [{ address: "10.85.0.5/16", gateway: "10.85.0.254" }], routes: [{ dst: "0.0.0.0/0" }] },
      { isGateway: false, isDefaultGateway: false },
    );
    expect(a.ips[0]).toEqual({ address: "10.85.0.5/16", gateway: "10.85.0.254", interface: 2 });
    expect(a.gateways).toEqual([]);
    expect(a.routes).toEqual([{ dst: "0.0.0.0/0" }]);
  });
  it("an IPAM result with an address or gateway that does not parse is a decode failure (code 6)", () => {
    const conf = { isGateway: true, isDefaultGateway: false };
    expect(() => computeAddressing({ cniVersion: "1.1.0", ips: [{ address: "10.85.0.500/16" }] }, conf)).toThrow(expect.objectContaining({ code: 6 }));
    expect(() => computeAddressing({ cniVersion: "1.1.0", ips: [{ address: "10.85.0.5/16", gateway: "fd00::1" }] }, conf)).toThrow(expect.objectContaining({ code: 6, message: expect.stringContaining("invalid gateway") }));
  });
});

describe("planLinks / planGateway (golden)", () => {
  it("new bridge: veth first, then the bridge, the port, a show of the bridge", () => {
    const p = planLinks({ ...base, conf: config({ isGateway: true }), bridgeExists: false });
    expect(p.lines).toEqual([
      "link add veth01234567 address 02:00:00:00:00:01 numtxqueues 1 numrxqueues 1 type veth peer name eth0 address 02:00:00:00:00:02 numtxqueues 1 numrxqueues 1 netns /run/netns/pod",
      "link add cni0 address 02:00:00:00:00:03 type bridge",
      "link set dev cni0 up",
      "link set dev veth01234567 alias tscni:net:eth0:c1 master cni0 up",
      "addr show dev cni0",
    ]);
    expect(p.shows).toEqual(["bridge"]);
    expect(p.vethLine).toBe(1);
    expect(p.bridgeAddLine).toBe(2);
    const g = planGateway({ conf: config({ isGateway: true }), gateways: [parseCidr("10.85.0.1/16")!] });
    expect(g.lines).toEqual(["addr show dev cni0", "addr replace 10.85.0.1/16 brd + dev cni0"]);
    expect(g.shows).toEqual(["gateway-addrs-before"]);
  });
  it("existing bridge, mtu, hairpin, isolation; IPv6 gateway without DAD", () => {
    const p = planLinks({ ...base, conf: config({ mtu: 1400, hairpinMode: true, portIsolation: true, isGateway: true }), bridgeExists: true, pinBridgeMac: "02:aa:00:00:00:01" });
    expect(p.lines).toEqual([
      "link add veth01234567 address 02:00:00:00:00:01 mtu 1400 numtxqueues 1 numrxqueues 1 type veth peer name eth0 address 02:00:00:00:00:02 mtu 1400 numtxqueues 1 numrxqueues 1 netns /run/netns/pod",
      "link set dev cni0 address 02:aa:00:00:00:01",
      "link set dev cni0 up",
      "link set dev veth01234567 alias tscni:net:eth0:c1 master cni0 up",
      "link set dev veth01234567 type bridge_slave hairpin on isolated on",
      "addr show dev cni0",
    ]);
    expect(p.bridgeAddLine).toBeUndefined();
    expect(planGateway({ conf: config(), gateways: [parseCidr("fd00::1/64")!] }).lines).toEqual(["addr show dev cni0", "addr replace fd00::1/64 dev cni0 nodad"]);
  });
  it("retry after a lost race skips the veth", () => {
    const p = planLinks({ ...base, conf: config({ promiscMode: true }), bridgeExists: true, vethCreated: true });
    expect(p.lines).toEqual(["link set dev cni0 promisc on up", "link set dev veth01234567 alias tscni:net:eth0:c1 master cni0 up", "addr show dev cni0"]);
    expect(p.vethLine).toBeUndefined();
  });
  it("no gateway, no gateway batch", () => {
    expect(planGateway({ conf: config(), gateways: [] }).lines).toEqual([]);
  });
  it("VLAN gateway interface", () => {
    expect(planLinks({ ...base, conf: config({ vlan: 10, isGateway: true }), bridgeExists: false }).lines).toContain("link add cni0 address 02:00:00:00:00:03 type bridge vlan_filtering 1");
    const g = planGateway({
      conf: config({ vlan: 10, isGateway: true }),
      gateways: [parseCidr("10.85.0.1/16")!],
      vlanGateway: { name: "cni0.10", exists: false, peer: "veth89abcdef", mac: "02:00:00:00:00:04", peerMac: "02:00:00:00:00:05" },
    });
    expect(g.lines).toEqual([
      "link add cni0.10 address 02:00:00:00:00:04 type veth peer name veth89abcdef address 02:00:00:00:00:05",
      "link set dev veth89abcdef master cni0 up",
      "link set dev cni0.10 up",
      "addr show dev cni0.10",
      "addr replace 10.85.0.1/16 brd + dev cni0.10",
      "addr show dev cni0.10",
    ]);
    expect(g.shows).toEqual(["gateway-addrs-before", "vlan-gateway"]);
  });
});

describe("planVlan", () => {
  it("access port, dropping the default VLAN", () => {
    expect(planVlan({ vlan: 10, vlanTrunk: [], preserveDefaultVlan: false }, ["vethA"], 1)).toEqual([
      "vlan del dev vethA vid 1 master",
      "vlan add dev vethA vid 10 pvid untagged master",
    ]);
  });
  it("trunk ranges", () => {
    expect(vlanRanges([1, 2, 3, 7, 9, 10])).toEqual(["1-3", "7", "9-10"]);
    expect(planVlan({ vlan: 0, vlanTrunk: [5, 6], preserveDefaultVlan: true }, ["vethA"], 1)).toEqual(["vlan add dev vethA vid 5-6 master"]);
  });
  it("nothing without VLANs", () => {
    expect(planVlan({ vlan: 0, vlanTrunk: [], preserveDefaultVlan: true }, ["vethA"], 1)).toEqual([]);
  });
});

describe("planPod (golden)", () => {
  it("dual stack: sysctls first, addresses before link up, routes via the family gateway", () => {
    const a = computeAddressing(
      { cniVersion: "1.1.0", ips: [{ address: "10.85.0.5/16" }, { address: "fd00::5/64" }], routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }, { dst: "192.168.0.0/24", gw: "10.85.0.9" }] },
      { isGateway: true, isDefaultGateway: false },
    );
    const p = planPod({ ifname: "eth0", addresses: a.addresses, ips: a.ips, routes: a.routes, enabledad: false, linkDown: false });
    expect(p.lines).toEqual([
      "addr add 10.85.0.5/16 brd + dev eth0",
      "addr add fd00::5/64 dev eth0 nodad",
      "link set dev eth0 up",
      "route add 0.0.0.0/0 via 10.85.0.1 dev eth0",
      "route add ::/0 via fd00::1 dev eth0",
      "route add 192.168.0.0/24 via 10.85.0.9 dev eth0",
    ]);
    expect(p.sysctls.map((s) => `${s.key.join("/")}=${s.value}`)).toEqual([
      "net/ipv6/conf/lo/disable_ipv6=0",
      "net/ipv6/conf/eth0/disable_ipv6=0",
      "net/ipv6/conf/eth0/accept_ra=0",
      "net/ipv6/conf/eth0/accept_dad=0",
      "net/ipv4/conf/eth0/arp_notify=1",
    ]);
    const script = podScript(p.sysctls, ["/usr/sbin/ip", "-batch", "-"]);
    expect(script.split("\n")[0]).toBe("cd /proc/sys || exit 1");
    expect(script.endsWith("exec /usr/sbin/ip -batch -")).toBe(true);
  });
  it("route options of 1.1 and enabledad", () => {
    const p = planPod({
      ifname: "net1",
      addresses: [parseCidr("fd00::5/64")!],
      ips: [{ address: "fd00::5/64", gateway: "fd00::1" }],
      routes: [{ dst: "fd01::/64", priority: 100, mtu: 1400, table: 7 }],
      enabledad: true,
      linkDown: true,
    });
    expect(p.lines).toEqual(["addr add fd00::5/64 dev net1", "route add fd01::/64 via fd00::1 dev net1 metric 100 table 7 mtu 1400"]);
    expect(p.sysctls.map((s) => s.key.at(-1))).toContain("enhanced_dad");
  });
});

describe("spoof check", () => {
  it("setup is one transaction in the reference layout", () => {
    const t = spoofSetupPlan("c1-eth0", "veth01234567", "02:00:00:00:00:02");
    expect(t).toContain('add rule bridge nat PREROUTING iifname "veth01234567" jump cni-br-iface-c1-eth0 comment "macspoofchk-c1-eth0"');
    expect(t).toContain('add rule bridge nat cni-br-iface-c1-eth0-mac ether saddr 02:00:00:00:00:02 return comment "macspoofchk-c1-eth0"');
  });
  it("teardown deletes by handle and both chains", () => {
    const listing = `table bridge nat {
\tchain PREROUTING { # handle 1
\t\ttype filter hook prerouting priority -300; policy accept;
\t\tiifname "veth01234567" jump cni-br-iface-c1-eth0 comment "macspoofchk-c1-eth0" # handle 5
\t\tiifname "vethffffffff" jump cni-br-iface-c2-eth0 comment "macspoofchk-c2-eth0" # handle 9
\t}
\tchain cni-br-iface-c1-eth0 { # handle 2
\t}
\tchain cni-br-iface-c1-eth0-mac { # handle 3
\t}
}`;
    expect(spoofTeardownPlan(listing, "c1-eth0")).toBe(
      'delete rule bridge nat PREROUTING handle 5\ndelete chain bridge nat cni-br-iface-c1-eth0\ndelete chain bridge nat cni-br-iface-c1-eth0-mac\n',
    );
    expect(spoofTeardownPlan(listing, "c3-eth0")).toBeUndefined();
  });
});

describe("prevResult roles", () => {
  it("finds bridge, host veth and pod interface", () => {
    const r = interfaceRoles(
      { cniVersion: "1.0.0", interfaces: [{ name: "cni0" }, { name: "veth01234567" }, { name: "eth0", sandbox: "/run/netns/p" }] },
      "cni0",
      "eth0",
      "/run/netns/p",
    );
    expect([r.bridge?.name, r.hostVeth?.name, r.pod?.name]).toEqual(["cni0", "veth01234567", "eth0"]);
  });
});

describe("performance-driven plan details", () => {
  it("planGateway names the line creating the VLAN gateway (a lost creation race is retried as existing)", () => {
    const conf = parseBridgeConfig({ command: "ADD", containerId: "c", netns: "/n", ifname: "eth0", args: "", path: [], stdin: "", config: { cniVersion: "1.0.0", name: "n", type: "bridge", vlan: 10, isGateway: true } } as never);
    const vg = { name: "cni0.10", exists: false, peer: "veth01234567", mac: "02:00:00:00:00:01", peerMac: "02:00:00:00:00:02" };
    const g = planGateway({ conf, gateways: [parseCidr("10.85.0.1/16")!], vlanGateway: vg });
    expect(g.lines[g.vlanAddLine! - 1]).toMatch(/^link add cni0\.10 /);
    const again = planGateway({ conf, gateways: [parseCidr("10.85.0.1/16")!], vlanGateway: { ...vg, exists: true } });
    expect(again.vlanAddLine).toBeUndefined();
    expect(again.lines.some((l) => l.startsWith("link add"))).toBe(false);
  });
  it("enabledad with IPv6 on an interface going up: the pod script waits for DAD, bounded, failing on dadfailed", () => {
    const p = planPod({ ifname: "eth0", addresses: [parseCidr("fd00::5/64")!], ips: [{ address: "fd00::5/64" }], routes: [], enabledad: true, linkDown: false });
    expect(p.settleDad).toBe("eth0");
    const script = podScript(p.sysctls, ["/usr/sbin/ip", "-batch", "-"], { ifname: "eth0", ip: "/usr/sbin/ip", sleep: "/usr/bin/sleep" });
    expect(script).toContain("/usr/sbin/ip -batch - || exit $?");
    expect(script).toContain("addr show dev eth0 dadfailed");
    expect(script).toContain("addr show dev eth0 tentative");
    expect(script).not.toContain("exec ");
    expect(planPod({ ifname: "eth0", addresses: [parseCidr("fd00::5/64")!], ips: [], routes: [], enabledad: true, linkDown: true }).settleDad).toBeUndefined();
    expect(planPod({ ifname: "eth0", addresses: [parseCidr("fd00::5/64")!], ips: [], routes: [], enabledad: false, linkDown: false }).settleDad).toBeUndefined();
  });
});

describe("CHECK links", () => {
  it("names the pod interface it could not find", () => {
    const problems: string[] = [];
    checkLinks(config(), "eth1", {}, undefined, undefined, undefined, problems);
    expect(problems).toContain("no interface eth1 with the sandbox of CNI_NETNS in prevResult");
    expect(problems).toContain("interface eth1 not found in the pod");
  });
});
