// Every configuration key of the bridge plugin, asserted on the kernel's state.
// Keys the Go reference 1.1.1 also has run against it too; later keys (vlanTrunk,
// preserveDefaultVlan:false, disableContainerInterface, portIsolation) only against tscni.
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import type { CniNode } from "../helpers/cni.js";
import { tool } from "../helpers/exec.js";
import { addrs, routes } from "../helpers/ipjson.js";
import { createPodNetns, mustExecIn } from "../helpers/netns.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  addPod,
  bridgePortDetails,
  bridgeVlans,
  callBridge,
  cniNatLines,
  describeOurs,
  expectCniError,
  globalCidrs,
  IS_REFERENCE,
  hostVethOf,
  itOurs,
  kernelHasVlanFiltering,
  nodeSnapshot,
  linkIn,
  netConf,
  nftText,
  pingEventually,
  pingOk,
  podIp,
  procSys,
  reservations,
  vethsIn,
} from "../helpers/bridge-fixtures.js";
import type { Pod } from "../helpers/bridge-fixtures.js";

autoCleanup();

function portOf(node: CniNode, pod: Pod): Record<string, unknown> {
  const name = hostVethOf(node, pod).ifname;
  const p = bridgePortDetails(node.netns.name).find((l) => l["ifname"] === name);
  if (p === undefined) throw new Error(`no bridge port ${name}`);
  return p;
}

function portVlans(node: CniNode, pod: Pod): { vlan: number; vlanEnd?: number; flags?: string[] }[] {
  const name = hostVethOf(node, pod).ifname;
  return bridgeVlans(node.netns.name).find((v) => v.ifname === name)?.vlans ?? [];
}

function vlanIds(vlans: { vlan: number; vlanEnd?: number }[]): number[] {
  return vlans.flatMap((v) => {
    const ids: number[] = [];
    for (let i = v.vlan; i <= (v.vlanEnd ?? v.vlan); i++) ids.push(i);
    return ids;
  });
}

describe("gateway options", () => {
  it("isGateway false: no address on the bridge, ip_forward untouched", () => {
    const node = createCniNode();
    const before = procSys(node.netns.name, "net.ipv4.ip_forward");
    addPod(node, netConf(node, { isGateway: false, ipMasq: false }));
    expect(linkIn(node.netns.name, "cni0")?.linkinfo?.info_kind).toBe("bridge");
    expect(globalCidrs(node.netns.name, "cni0")).toEqual([]);
    expect(procSys(node.netns.name, "net.ipv4.ip_forward")).toBe(before);
  });

  it("isGateway true: gateway address on the bridge and ip_forward=1", () => {
    const node = createCniNode();
    addPod(node, netConf(node, { isGateway: true, ipMasq: false }));
    expect(globalCidrs(node.netns.name, "cni0")).toEqual(["10.85.0.1/16"]);
    expect(procSys(node.netns.name, "net.ipv4.ip_forward")).toBe("1");
  });

  it("isDefaultGateway: default route via the gateway even without IPAM routes", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { isGateway: false, ipMasq: false, routes: [], extra: { isDefaultGateway: true } }));
    expect(globalCidrs(node.netns.name, "cni0")).toEqual(["10.85.0.1/16"]);
    const def = routes(pod.netns.name, { family: 4 }).find((r) => r.dst === "default");
    expect(def?.gateway).toBe("10.85.0.1");
    expect(pod.result.routes).toContainEqual({ dst: "0.0.0.0/0", gw: "10.85.0.1" });
    expect(procSys(node.netns.name, "net.ipv4.ip_forward")).toBe("1");
  });

  it("without isDefaultGateway and without IPAM routes the pod has no default route", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: false, routes: [] }));
    expect(routes(pod.netns.name, { family: 4 }).find((r) => r.dst === "default")).toBeUndefined();
  });

  describe("forceAddress", () => {
    function preAddBridge(node: CniNode, cidr: string): void {
      const ip = tool("ip");
      mustExecIn(node.netns.name, [ip, "link", "add", "cni0", "type", "bridge"]);
      mustExecIn(node.netns.name, [ip, "addr", "add", cidr, "dev", "cni0"]);
      mustExecIn(node.netns.name, [ip, "link", "set", "cni0", "up"]);
    }

    it("false: a bridge holding another address fails the ADD and keeps its address", () => {
      const node = createCniNode();
      preAddBridge(node, "10.85.0.254/16");
      const r = callBridge(node, "ADD", netConf(node, { ipMasq: false }), { containerId: "force-a", netns: createPodNetns().path });
      expectCniError(r, undefined);
      expect(globalCidrs(node.netns.name, "cni0")).toEqual(["10.85.0.254/16"]);
      expect(reservations(node.dataDir)).toEqual([]);
    });

    itOurs("false: the failed ADD leaves no veth behind", () => {
      const node = createCniNode();
      preAddBridge(node, "10.85.0.254/16");
      const r = callBridge(node, "ADD", netConf(node, { ipMasq: false }), { containerId: "force-b", netns: createPodNetns().path });
      expectCniError(r, undefined);
      expect(vethsIn(node.netns.name)).toEqual([]);
    });

    it("true: the bridge's address is replaced by the gateway", () => {
      const node = createCniNode();
      preAddBridge(node, "10.85.0.254/16");
      const pod = addPod(node, netConf(node, { ipMasq: false, extra: { forceAddress: true } }));
      expect(globalCidrs(node.netns.name, "cni0")).toEqual(["10.85.0.1/16"]);
      expect(pingEventually(pod.netns.name, "10.85.0.1")).toBe(true);
    });
  });
});

describe("link options", () => {
  it("mtu: bridge, host veth and pod interface get the MTU", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: false, extra: { mtu: 1400 } }));
    expect(linkIn(node.netns.name, "cni0")?.mtu).toBe(1400);
    expect(hostVethOf(node, pod).mtu).toBe(1400);
    expect(linkIn(pod.netns.name, "eth0")?.mtu).toBe(1400);
  });

  itOurs("veth: one tx and one rx queue on both ends", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: false }));
    for (const l of [hostVethOf(node, pod), linkIn(pod.netns.name, "eth0")]) {
      expect(l?.["num_tx_queues"]).toBe(1);
      expect(l?.["num_rx_queues"]).toBe(1);
    }
  });

  it("default mtu is 1500 everywhere", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: false }));
    expect(hostVethOf(node, pod).mtu).toBe(1500);
    expect(linkIn(pod.netns.name, "eth0")?.mtu).toBe(1500);
  });

  it("hairpinMode: the port has hairpin on (off by default)", () => {
    const node = createCniNode();
    const on = addPod(node, netConf(node, { ipMasq: false, extra: { hairpinMode: true } }));
    expect(portOf(node, on)["hairpin"]).toBe(true);
    const node2 = createCniNode();
    const off = addPod(node2, netConf(node2, { ipMasq: false }));
    expect(portOf(node2, off)["hairpin"]).toBe(false);
  });

  it("promiscMode: the bridge is promiscuous (not by default)", () => {
    const node = createCniNode();
    addPod(node, netConf(node, { ipMasq: false, extra: { promiscMode: true } }));
    const br = linkIn(node.netns.name, "cni0");
    expect(br?.flags).toContain("PROMISC");
    const node2 = createCniNode();
    addPod(node2, netConf(node2, { ipMasq: false }));
    expect(linkIn(node2.netns.name, "cni0")?.flags).not.toContain("PROMISC");
  });

  it("bridge name: a custom bridge is created, cni0 is not", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { bridge: "cnio0", ipMasq: false }));
    expect(linkIn(node.netns.name, "cnio0")?.linkinfo?.info_kind).toBe("bridge");
    expect(linkIn(node.netns.name, "cni0")).toBeUndefined();
    expect(hostVethOf(node, pod).master).toBe("cnio0");
  });

  it("the bridge does not accept router advertisements (accept_ra=0)", () => {
    const node = createCniNode();
    addPod(node, netConf(node, { ipMasq: false }));
    expect(procSys(node.netns.name, "net.ipv6.conf.cni0.accept_ra")).toBe("0");
  });

  it("L2 mode (ipam {}): no addresses anywhere, pod interface up", () => {
    const node = createCniNode();
    const pod = addPod(node, { cniVersion: "1.0.0", name: "tscni-bridge", type: "bridge", bridge: "cni0", ipam: {} });
    expect(globalCidrs(pod.netns.name, "eth0")).toEqual([]);
    expect(globalCidrs(node.netns.name, "cni0")).toEqual([]);
    expect(linkIn(pod.netns.name, "eth0")?.flags).toContain("UP");
    expect(hostVethOf(node, pod).master).toBe("cni0");
    expect(pod.result.ips ?? []).toEqual([]);
  });
});

// Some kernels (e.g. minimal VM kernels) are built without CONFIG_BRIDGE_VLAN_FILTERING.
const hasVlan = kernelHasVlanFiltering();

describe("vlan on a kernel without vlan filtering", () => {
  it.skipIf(hasVlan)("vlan 100 fails with a CNI error and changes nothing on the node", () => {
    const node = createCniNode();
    const before = nodeSnapshot(node, { data: "reservations" });
    const r = callBridge(node, "ADD", netConf(node, { ipMasq: false, extra: { vlan: 100 } }), {
      containerId: "novlan",
      netns: createPodNetns().path,
    });
    expectCniError(r, undefined);
    expect(nodeSnapshot(node, { data: "reservations" })).toEqual(before);
  });

  it.skipIf(hasVlan || IS_REFERENCE)("vlanTrunk fails with a CNI error and changes nothing on the node", () => {
    const node = createCniNode();
    const before = nodeSnapshot(node, { data: "reservations" });
    const r = callBridge(node, "ADD", netConf(node, { ipMasq: false, extra: { vlanTrunk: [{ id: 200 }] } }), {
      containerId: "novlan",
      netns: createPodNetns().path,
    });
    expectCniError(r, undefined);
    expect(nodeSnapshot(node, { data: "reservations" })).toEqual(before);
  });
});

describe.skipIf(!hasVlan)("vlan", () => {
  it("vlan 100: vlan filtering on, port is an access port (PVID, untagged) and pods reach the gateway", () => {
    const node = createCniNode();
    const conf = netConf(node, { ipMasq: false, extra: { vlan: 100 } });
    const a = addPod(node, conf);
    const b = addPod(node, conf);
    const br = linkIn(node.netns.name, "cni0");
    expect(br?.linkinfo?.info_data?.["vlan_filtering"]).toBe(1);
    const v100 = portVlans(node, a).find((v) => v.vlan === 100);
    expect(v100?.flags).toEqual(expect.arrayContaining(["PVID", "Egress Untagged"]));
    // preserveDefaultVlan defaults to true: vlan 1 stays on the port.
    expect(vlanIds(portVlans(node, a))).toContain(1);
    // The gateway is reachable inside vlan 100 (the reference puts it on cni0.100).
    const holders = addrs(node.netns.name).filter((l) => l.addr_info.some((x) => x.local === "10.85.0.1"));
    expect(holders).toHaveLength(1);
    expect(pingEventually(a.netns.name, "10.85.0.1")).toBe(true);
    expect(pingEventually(a.netns.name, podIp(b))).toBe(true);
  });

  it("pods in different vlans on one bridge cannot reach each other", () => {
    const node = createCniNode();
    const a = addPod(node, netConf(node, { ipMasq: false, isGateway: false, extra: { vlan: 100 } }));
    const b = addPod(node, netConf(node, { ipMasq: false, isGateway: false, extra: { vlan: 200 } }));
    expect(pingOk(a.netns.name, podIp(b))).toBe(false);
  });

  it.skipIf(IS_REFERENCE)("preserveDefaultVlan false: the port holds only its vlan", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: false, isGateway: false, extra: { vlan: 100, preserveDefaultVlan: false } }));
    expect(vlanIds(portVlans(node, pod))).toEqual([100]);
  });

  it.skipIf(IS_REFERENCE)("vlanTrunk: the port carries the trunk's vlans tagged", () => {
    const node = createCniNode();
    const pod = addPod(
      node,
      netConf(node, {
        ipMasq: false,
        isGateway: false,
        extra: { vlanTrunk: [{ minID: 101, maxID: 103 }, { id: 200 }], preserveDefaultVlan: false },
      }),
    );
    expect(linkIn(node.netns.name, "cni0")?.linkinfo?.info_data?.["vlan_filtering"]).toBe(1);
    const vlans = portVlans(node, pod);
    expect(vlanIds(vlans)).toEqual([101, 102, 103, 200]);
    for (const v of vlans) expect(v.flags ?? []).not.toContain("PVID");
    for (const v of vlans) expect(v.flags ?? []).not.toContain("Egress Untagged");
  });

  it.skipIf(IS_REFERENCE)("vlanTrunk with preserveDefaultVlan (default): vlan 1 stays besides the trunk", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: false, isGateway: false, extra: { vlanTrunk: [{ id: 300 }] } }));
    expect(vlanIds(portVlans(node, pod))).toEqual([1, 300]);
  });
});

describe("macspoofchk", () => {
  it("drops frames from the pod with another source MAC; DEL removes the rules", () => {
    const node = createCniNode();
    const conf = netConf(node, { ipMasq: false, extra: { macspoofchk: true } });
    // No `bridge nat` table yet: DEL finds nothing to remove, and succeeds.
    const none = callBridge(node, "DEL", conf, { containerId: "never-added" });
    expect(none.code, none.stdout).toBe(0);
    const pod = addPod(node, conf);
    const mac = linkIn(pod.netns.name, "eth0")?.address ?? "";
    expect(nftText(node.netns.name)).toContain(mac);
    expect(pingEventually(pod.netns.name, "10.85.0.1")).toBe(true);
    mustExecIn(pod.netns.name, [tool("ip"), "link", "set", "eth0", "address", "02:00:00:00:be:ef"]);
    mustExecIn(pod.netns.name, [tool("ip"), "neigh", "flush", "all"]);
    expect(pingOk(pod.netns.name, "10.85.0.1")).toBe(false);
    const r = callBridge(node, "DEL", conf, { containerId: pod.containerId, netns: pod.netns.path });
    expect(r.code, r.stdout).toBe(0);
    expect(nftText(node.netns.name)).not.toContain(mac);
  });

  it("without macspoofchk a changed MAC still reaches the gateway", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: false }));
    mustExecIn(pod.netns.name, [tool("ip"), "link", "set", "eth0", "address", "02:00:00:00:be:ef"]);
    expect(pingEventually(pod.netns.name, "10.85.0.1")).toBe(true);
  });
});

describe("enabledad", () => {
  const dual = ["10.85.0.0/16", "fd85::/64"];

  function v6Addr(ns: string): Record<string, unknown> | undefined {
    return addrs(ns, "eth0")[0]?.addr_info.find((a) => a.family === "inet6" && a.scope === "global");
  }

  it("default: the pod's IPv6 address skips DAD and is usable at once", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { subnets: dual, ipMasq: false }));
    const a = v6Addr(pod.netns.name);
    expect(a).toBeDefined();
    expect(a?.["tentative"]).toBeUndefined();
    const noDad = a?.["nodad"] === true || procSys(pod.netns.name, "net.ipv6.conf.eth0.accept_dad") === "0";
    expect(noDad).toBe(true);
  });

  it("enabledad: DAD stays on for the pod interface", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { subnets: dual, ipMasq: false, extra: { enabledad: true } }));
    const a = v6Addr(pod.netns.name);
    expect(a).toBeDefined();
    expect(a?.["nodad"]).toBeUndefined();
    expect(procSys(pod.netns.name, "net.ipv6.conf.eth0.accept_dad")).not.toBe("0");
    // As the reference (SettleAddresses): the ADD returns once DAD is done.
    expect(a?.["tentative"]).toBeUndefined();
  });

  it("the pod interface does not accept router advertisements with IPv6 addresses (accept_ra=0, issue 4)", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { subnets: dual, ipMasq: false }));
    expect(procSys(pod.netns.name, "net.ipv6.conf.eth0.accept_ra")).toBe("0");
  });
});

describe("MAC address of the pod interface", () => {
  it("from CNI_ARGS MAC=", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: false }), { args: "IgnoreUnknown=1;MAC=0a:58:0a:55:00:10" });
    expect(linkIn(pod.netns.name, "eth0")?.address).toBe("0a:58:0a:55:00:10");
    expect(pod.result.interfaces?.[2]?.mac).toBe("0a:58:0a:55:00:10");
  });

  it("args.cni.mac wins over CNI_ARGS", () => {
    const node = createCniNode();
    const conf = { ...netConf(node, { ipMasq: false }), args: { cni: { mac: "0a:58:0a:55:00:11" } } };
    const pod = addPod(node, conf, { args: "IgnoreUnknown=1;MAC=0a:58:0a:55:00:10" });
    expect(linkIn(pod.netns.name, "eth0")?.address).toBe("0a:58:0a:55:00:11");
  });

  it("runtimeConfig.mac wins over args.cni.mac", () => {
    const node = createCniNode();
    const conf = {
      ...netConf(node, { ipMasq: false }),
      args: { cni: { mac: "0a:58:0a:55:00:11" } },
      runtimeConfig: { mac: "0a:58:0a:55:00:12" },
    };
    const pod = addPod(node, conf);
    expect(linkIn(pod.netns.name, "eth0")?.address).toBe("0a:58:0a:55:00:12");
    expect(pod.result.interfaces?.[2]?.mac).toBe("0a:58:0a:55:00:12");
  });
});

describe("dns", () => {
  it("the config's dns is returned in the result", () => {
    const node = createCniNode();
    const dns = { nameservers: ["10.96.0.10"], search: ["default.svc.cluster.local"], options: ["ndots:5"] };
    const pod = addPod(node, netConf(node, { ipMasq: false, extra: { dns } }));
    expect(pod.result.dns).toEqual(dns);
  });
});

describe("ipMasq false", () => {
  it("no CNI- masquerade state at all", () => {
    const node = createCniNode();
    addPod(node, netConf(node, { ipMasq: false }));
    expect(cniNatLines(node.netns.name)).toEqual([]);
  });
});

describeOurs("options beyond the reference 1.1.1", () => {
  it("portIsolation: ports are isolated; pods reach the gateway but not each other", () => {
    const node = createCniNode();
    const conf = netConf(node, { ipMasq: false, extra: { portIsolation: true } });
    const a = addPod(node, conf);
    const b = addPod(node, conf);
    expect(portOf(node, a)["isolated"]).toBe(true);
    expect(portOf(node, b)["isolated"]).toBe(true);
    expect(pingEventually(a.netns.name, "10.85.0.1")).toBe(true);
    expect(pingOk(a.netns.name, podIp(b))).toBe(false);
  });

  it("portIsolation off by default: pods reach each other", () => {
    const node = createCniNode();
    const conf = netConf(node, { ipMasq: false });
    const a = addPod(node, conf);
    const b = addPod(node, conf);
    expect(portOf(node, a)["isolated"]).toBe(false);
    expect(pingEventually(a.netns.name, podIp(b))).toBe(true);
  });

  it("disableContainerInterface (L2): the pod interface exists but stays down", () => {
    const node = createCniNode();
    const pod = addPod(node, {
      cniVersion: "1.0.0",
      name: "tscni-bridge",
      type: "bridge",
      bridge: "cni0",
      disableContainerInterface: true,
      ipam: {},
    });
    const eth0 = linkIn(pod.netns.name, "eth0");
    expect(eth0).toBeDefined();
    expect(eth0?.flags).not.toContain("UP");
    expect(hostVethOf(node, pod).master).toBe("cni0");
  });

  it("disableContainerInterface with IPAM is a config error (7)", () => {
    const node = createCniNode();
    const r = callBridge(node, "ADD", netConf(node, { extra: { disableContainerInterface: true } }), {
      containerId: "dci",
      netns: createPodNetns().path,
    });
    expectCniError(r, [7]);
    expect(reservations(node.dataDir)).toEqual([]);
  });
});
