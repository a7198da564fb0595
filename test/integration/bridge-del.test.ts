// DEL is idempotent and removes what it can find: after `ip netns del`, with an empty
// CNI_NETNS, with the interface already gone, twice in a row, for state the reference made.
// And ADD rolls back everything when a late step fails.
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import { tool } from "../helpers/exec.js";
import { createPodNetns, deleteNetns, mustExecIn } from "../helpers/netns.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  GO_BRIDGE_EXE,
  IS_REFERENCE,
  addPod,
  callBridge,
  cniNatLines,
  delPod,
  eventually,
  expectCniError,
  hostVethOf,
  itOurs,
  linkIn,
  netConf,
  nftText,
  nodeSnapshot,
  podIp,
  reservations,
  vethsIn,
} from "../helpers/bridge-fixtures.js";

autoCleanup();

function expectOk(r: { code: number; stdout: string; stderr: string }): void {
  expect(r.code, `stdout=${r.stdout} stderr=${r.stderr}`).toBe(0);
}

describe("DEL", () => {
  it("twice in a row: both succeed, nothing is left", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    expectOk(delPod(node, pod));
    expectOk(delPod(node, pod));
    expect(vethsIn(node.netns.name)).toEqual([]);
    expect(reservations(node.dataDir)).toEqual([]);
    expect(cniNatLines(node.netns.name)).toEqual([]);
    expect(linkIn(pod.netns.name, "eth0")).toBeUndefined();
  });

  it("of a container that was never added succeeds", () => {
    const node = createCniNode();
    const r = callBridge(node, "DEL", netConf(node), { containerId: "never-added", netns: createPodNetns().path });
    expectOk(r);
  });

  it("after `ip netns del`: succeeds, releases the address, no veth left", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    const veth = hostVethOf(node, pod).ifname;
    deleteNetns(pod.netns.name);
    expectOk(delPod(node, pod));
    expect(reservations(node.dataDir)).toEqual([]);
    expect(eventually(() => linkIn(node.netns.name, veth), (l) => l === undefined)).toBeUndefined();
    expectOk(delPod(node, pod));
  });

  itOurs("after `ip netns del`: the POSTROUTING rule and the CNI- chain are gone too", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    deleteNetns(pod.netns.name);
    expectOk(delPod(node, pod));
    expect(cniNatLines(node.netns.name)).toEqual([]);
  });

  itOurs("after `ip netns del`, nftables backend: the pod address is gone from the ruleset", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { extra: { ipMasqBackend: "nftables" } }));
    const ip = podIp(pod);
    expect(nftText(node.netns.name)).toContain(ip);
    deleteNetns(pod.netns.name);
    expectOk(delPod(node, pod));
    expect(nftText(node.netns.name)).not.toContain(ip);
  });

  it("with an empty CNI_NETNS: succeeds and releases the address", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    expectOk(delPod(node, pod, { netns: "" }));
    expect(reservations(node.dataDir)).toEqual([]);
  });

  itOurs("with an empty CNI_NETNS: the masquerade state is removed", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    expectOk(delPod(node, pod, { netns: "" }));
    expect(cniNatLines(node.netns.name)).toEqual([]);
  });

  it("when the pod interface is already gone: succeeds and releases the address", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    mustExecIn(pod.netns.name, [tool("ip"), "link", "del", "eth0"]);
    expectOk(delPod(node, pod));
    expect(reservations(node.dataDir)).toEqual([]);
    expect(vethsIn(node.netns.name)).toEqual([]);
  });

  itOurs("when the pod interface is already gone: the masquerade state is removed", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    mustExecIn(pod.netns.name, [tool("ip"), "link", "del", "eth0"]);
    expectOk(delPod(node, pod));
    expect(cniNatLines(node.netns.name)).toEqual([]);
  });

  it("leaves the other pods alone", () => {
    const node = createCniNode();
    const conf = netConf(node);
    const keep = addPod(node, conf);
    const gone = addPod(node, conf);
    deleteNetns(gone.netns.name);
    expectOk(delPod(node, gone));
    expect(reservations(node.dataDir)).toEqual([podIp(keep)]);
    const keepVeth = hostVethOf(node, keep).ifname;
    const left = eventually(() => vethsIn(node.netns.name).map((v) => v.ifname), (v) => v.length === 1);
    expect(left).toEqual([keepVeth]);
    expect(cniNatLines(node.netns.name).some((l) => l.includes(`-s ${podIp(keep)}/32`))).toBe(true);
    const r = callBridge(node, "CHECK", { ...conf, prevResult: keep.result }, { containerId: keep.containerId, netns: keep.netns.path });
    expectOk(r);
  });

  itOurs("removes the state the Go reference created for the same container", () => {
    const node = createCniNode();
    const conf = netConf(node);
    // ADD with the reference bridge + host-local, same data dir …
    const pod = addPod(node, conf, { exe: GO_BRIDGE_EXE, path: "/usr/lib/cni" });
    expect(cniNatLines(node.netns.name).length).toBeGreaterThan(0);
    expect(reservations(node.dataDir)).toEqual([podIp(pod)]);
    // … DEL with ours.
    expectOk(delPod(node, pod));
    expect(cniNatLines(node.netns.name)).toEqual([]);
    expect(reservations(node.dataDir)).toEqual([]);
    expect(vethsIn(node.netns.name)).toEqual([]);
  });

  itOurs("removes the reference's state even after `ip netns del` (where the reference itself leaks)", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node), { exe: GO_BRIDGE_EXE, path: "/usr/lib/cni" });
    deleteNetns(pod.netns.name);
    expectOk(delPod(node, pod));
    expect(cniNatLines(node.netns.name)).toEqual([]);
    expect(reservations(node.dataDir)).toEqual([]);
  });
});

describe("ADD again", () => {
  it("ADD, DEL, ADD with the same container id works and leaves one attachment", () => {
    const node = createCniNode();
    const conf = netConf(node);
    const first = addPod(node, conf);
    expectOk(delPod(node, first));
    const again = addPod(node, conf, { pod: first.netns, containerId: first.containerId });
    expect(reservations(node.dataDir)).toEqual([podIp(again)]);
    expect(vethsIn(node.netns.name)).toHaveLength(1);
    expect(cniNatLines(node.netns.name).filter((l) => l.startsWith("-A POSTROUTING"))).toHaveLength(1);
  });

  it("a second ADD of a live attachment fails and leaves the first one intact", () => {
    const node = createCniNode();
    const conf = netConf(node);
    const pod = addPod(node, conf);
    const before = nodeSnapshot(node, { data: "reservations" });
    const r = callBridge(node, "ADD", conf, { containerId: pod.containerId, netns: pod.netns.path });
    expectCniError(r, undefined);
    if (!IS_REFERENCE) expect(nodeSnapshot(node, { data: "reservations" })).toEqual(before);
    expect(reservations(node.dataDir)).toEqual([podIp(pod)]);
    expect(cniNatLines(node.netns.name).some((l) => l.includes(`-s ${podIp(pod)}/32`))).toBe(true);
    expectOk(callBridge(node, "CHECK", { ...conf, prevResult: pod.result }, { containerId: pod.containerId, netns: pod.netns.path }));
  });
});

describe("rollback when a late step fails", () => {
  // An IPAM route whose gateway is not on-link: IPAM, bridge, veth and the pod's address
  // succeed, then adding that route inside the pod fails.
  const badRoutes = [{ dst: "0.0.0.0/0" }, { dst: "192.168.0.0/16", gw: "10.99.0.1" }];

  for (const backend of ["iptables", "nftables"] as const) {
    itOurs(`${backend}: the node is exactly as before, the pod has no interface`, () => {
      const node = createCniNode();
      addPod(node, netConf(node, { extra: { ipMasqBackend: backend } })); // bridge and gateway exist already
      const before = nodeSnapshot(node, { data: "reservations" });
      const pod = createPodNetns();
      const conf = netConf(node, { routes: badRoutes, extra: { ipMasqBackend: backend } });
      const r = callBridge(node, "ADD", conf, { containerId: "late-failure", netns: pod.path });
      expectCniError(r, undefined);
      expect(nodeSnapshot(node, { data: "reservations" })).toEqual(before);
      expect(linkIn(pod.name, "eth0")).toBeUndefined();
    });
  }

  itOurs("on a fresh node: no veth, no reservation, no masquerade state", () => {
    const node = createCniNode();
    const pod = createPodNetns();
    const r = callBridge(node, "ADD", netConf(node, { routes: badRoutes }), { containerId: "late-failure", netns: pod.path });
    expectCniError(r, undefined);
    expect(vethsIn(node.netns.name)).toEqual([]);
    expect(reservations(node.dataDir)).toEqual([]);
    expect(cniNatLines(node.netns.name)).toEqual([]);
    expect(linkIn(pod.name, "eth0")).toBeUndefined();
  });

  it("the address is released (reference too)", () => {
    const node = createCniNode();
    const pod = createPodNetns();
    const r = callBridge(node, "ADD", netConf(node, { routes: badRoutes }), { containerId: "late-failure", netns: pod.path });
    expectCniError(r, undefined);
    expect(reservations(node.dataDir)).toEqual([]);
  });
});
