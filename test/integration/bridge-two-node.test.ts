// "Kubernetes the hard way": two node netns joined by a link (198.18.0.1/30 — 198.18.0.2/30),
// POD_CIDR 10.200.0.0/24 on node 0 and 10.200.1.0/24 on node 1, bridge cnio0, a route on each
// node to the other's POD_CIDR. Pod-to-pod across nodes works; with plain ipMasq the far side
// sees the node address (conntrack shows the SNAT); with nonMasqueradeCIDRs ["10.200.0.0/16"]
// it sees the pod address.
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import type { CniNode } from "../helpers/cni.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  addPod,
  addRoute,
  cniNatLines,
  conntrack,
  countArrivals,
  describeOurs,
  linkNodes,
  netConf,
  pingEventually,
  podIp,
} from "../helpers/bridge-fixtures.js";
import type { Pod } from "../helpers/bridge-fixtures.js";

autoCleanup();

const NODE0_ADDR = "198.18.0.1";
const NODE1_ADDR = "198.18.0.2";

interface Cluster {
  readonly nodes: readonly [CniNode, CniNode];
  readonly pods: readonly [Pod, Pod];
}

function hardWay(extra: Record<string, unknown>): Cluster {
  const n0 = createCniNode();
  const n1 = createCniNode();
  linkNodes(n0, `${NODE0_ADDR}/30`, n1, `${NODE1_ADDR}/30`);
  addRoute(n0.netns.name, "10.200.1.0/24", NODE1_ADDR);
  addRoute(n1.netns.name, "10.200.0.0/24", NODE0_ADDR);
  const conf = (n: CniNode, cidr: string): object =>
    netConf(n, { name: "bridge", bridge: "cnio0", subnets: [cidr], ipMasq: true, extra });
  const p0 = addPod(n0, conf(n0, "10.200.0.0/24"));
  const p1 = addPod(n1, conf(n1, "10.200.1.0/24"));
  return { nodes: [n0, n1], pods: [p0, p1] };
}

describe("two nodes, Kubernetes the hard way", () => {
  it("plain ipMasq: pod-to-pod across nodes works; the far pod sees the node address", () => {
    const { nodes, pods } = hardWay({});
    const [n0, n1] = nodes;
    const [p0, p1] = pods;
    expect(podIp(p0)).toMatch(/^10\.200\.0\./);
    expect(podIp(p1)).toMatch(/^10\.200\.1\./);
    const seenFromNode = countArrivals(p1.netns.name, NODE0_ADDR);
    const seenFromPod = countArrivals(p1.netns.name, podIp(p0));
    expect(pingEventually(p0.netns.name, podIp(p1))).toBe(true);
    // Node 0 translated the source to its own address on the node link.
    const ct0 = conntrack(n0.netns.name).find((e) => e.orig.src === podIp(p0) && e.orig.dst === podIp(p1));
    expect(ct0, JSON.stringify(conntrack(n0.netns.name))).toBeDefined();
    expect(ct0?.reply.dst).toBe(NODE0_ADDR);
    // Node 1 saw the connection coming from node 0's address.
    const ct1 = conntrack(n1.netns.name).find((e) => e.orig.dst === podIp(p1));
    expect(ct1?.orig.src).toBe(NODE0_ADDR);
    expect(seenFromNode()).toBeGreaterThan(0);
    expect(seenFromPod()).toBe(0);
    // And the other way round.
    expect(pingEventually(p1.netns.name, podIp(p0))).toBe(true);
  });

  it("each node's nat rules ACCEPT its own POD_CIDR only", () => {
    const { nodes } = hardWay({});
    // The pod's own subnet is exempt; the other node's subnet is not (hence the SNAT above).
    const l0 = cniNatLines(nodes[0].netns.name);
    const l1 = cniNatLines(nodes[1].netns.name);
    expect(l0.some((l) => l.includes("-d 10.200.0.0/24") && l.endsWith("-j ACCEPT"))).toBe(true);
    expect(l0.some((l) => l.includes("10.200.1."))).toBe(false);
    expect(l1.some((l) => l.includes("-d 10.200.1.0/24") && l.endsWith("-j ACCEPT"))).toBe(true);
    expect(l1.some((l) => l.includes("10.200.0."))).toBe(false);
  });
});

describeOurs("two nodes with nonMasqueradeCIDRs (tscni)", () => {
  it('nonMasqueradeCIDRs ["10.200.0.0/16"]: the far pod sees the pod address, no SNAT', () => {
    const { nodes, pods } = hardWay({ nonMasqueradeCIDRs: ["10.200.0.0/16"] });
    const [n0, n1] = nodes;
    const [p0, p1] = pods;
    const seenFromPod = countArrivals(p1.netns.name, podIp(p0));
    const seenFromNode = countArrivals(p1.netns.name, NODE0_ADDR);
    expect(pingEventually(p0.netns.name, podIp(p1))).toBe(true);
    expect(seenFromPod()).toBeGreaterThan(0);
    expect(seenFromNode()).toBe(0);
    const ct0 = conntrack(n0.netns.name).find((e) => e.orig.src === podIp(p0) && e.orig.dst === podIp(p1));
    expect(ct0?.reply.dst).toBe(podIp(p0));
    const ct1 = conntrack(n1.netns.name).find((e) => e.orig.dst === podIp(p1));
    expect(ct1?.orig.src).toBe(podIp(p0));
    expect(pingEventually(p1.netns.name, podIp(p0))).toBe(true);
  });

  it("nftables backend: same result", () => {
    const { pods } = hardWay({ nonMasqueradeCIDRs: ["10.200.0.0/16"], ipMasqBackend: "nftables" });
    const [p0, p1] = pods;
    const seenFromPod = countArrivals(p1.netns.name, podIp(p0));
    expect(pingEventually(p0.netns.name, podIp(p1))).toBe(true);
    expect(seenFromPod()).toBeGreaterThan(0);
  });
});
