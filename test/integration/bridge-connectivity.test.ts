// Traffic, as in the seed scenarios: pod↔pod on the bridge, pod→gateway, pod→an "external
// host" netns (198.51.100.0/24 behind the node, no route back to the pods) reached only
// through masquerade — the node's conntrack shows the SNAT to the node address; with
// nonMasqueradeCIDRs the external host sees the pod address. Both families; both backends.
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  addExternalHost,
  addPod,
  addRoute,
  cniNatLines,
  conntrack,
  countArrivals,
  delPod,
  describeOurs,
  netConf,
  nftText,
  pingEventually,
  pingOk,
  podIp,
  procSys,
} from "../helpers/bridge-fixtures.js";

autoCleanup();

describe("connectivity on one node (IPv4)", () => {
  it("pod↔pod and pod→gateway over cni0", () => {
    const node = createCniNode();
    const conf = netConf(node);
    const a = addPod(node, conf);
    const b = addPod(node, conf);
    expect(pingEventually(a.netns.name, "10.85.0.1")).toBe(true);
    expect(pingEventually(a.netns.name, podIp(b))).toBe(true);
    expect(pingEventually(b.netns.name, podIp(a))).toBe(true);
  });

  it("ipMasq: the external host answers; node conntrack shows the SNAT to the node address", () => {
    const node = createCniNode();
    const ext = addExternalHost(node);
    const arrivalsFromNode = countArrivals(ext.netns.name, ext.nodeAddr);
    const pod = addPod(node, netConf(node, { ipMasq: true }));
    const arrivalsFromPod = countArrivals(ext.netns.name, podIp(pod));
    expect(pingEventually(pod.netns.name, ext.addr)).toBe(true);
    const ct = conntrack(node.netns.name).find((e) => e.orig.src === podIp(pod) && e.orig.dst === ext.addr);
    expect(ct, JSON.stringify(conntrack(node.netns.name))).toBeDefined();
    expect(ct?.reply.src).toBe(ext.addr);
    expect(ct?.reply.dst).toBe(ext.nodeAddr);
    expect(arrivalsFromNode()).toBeGreaterThan(0);
    expect(arrivalsFromPod()).toBe(0);
  });

  it("without ipMasq the external host is unreachable (it has no route back)", () => {
    const node = createCniNode();
    const ext = addExternalHost(node);
    const pod = addPod(node, netConf(node, { ipMasq: false }));
    const arrivals = countArrivals(ext.netns.name, podIp(pod));
    expect(pingOk(pod.netns.name, ext.addr)).toBe(false);
    // The request did arrive, with the pod's address: only the way back is missing.
    expect(arrivals()).toBeGreaterThan(0);
  });

  it("multicast destinations are not masqueraded (chain stops at 224.0.0.0/4)", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { ipMasq: true }));
    const lines = cniNatLines(node.netns.name);
    expect(lines.some((l) => l.includes("! -d 224.0.0.0/4") && l.includes("MASQUERADE"))).toBe(true);
    expect(lines.some((l) => l.includes(`-s ${podIp(pod)}/32`))).toBe(true);
  });
});

describe("dual stack", () => {
  const subnets = ["10.85.0.0/16", "fd85::/64"];

  it("each pod gets one address per family; pod↔pod and pod→gateway work in both", () => {
    const node = createCniNode();
    const conf = netConf(node, { subnets, ipMasq: false });
    const a = addPod(node, conf);
    const b = addPod(node, conf);
    expect(a.result.ips?.map((i) => i.address.includes(":"))).toEqual([false, true]);
    expect(pingEventually(a.netns.name, "10.85.0.1")).toBe(true);
    expect(pingEventually(a.netns.name, "fd85::1")).toBe(true);
    expect(pingEventually(a.netns.name, podIp(b, 6))).toBe(true);
    expect(pingEventually(b.netns.name, podIp(a, 6))).toBe(true);
    expect(procSys(node.netns.name, "net.ipv6.conf.all.forwarding")).toBe("1");
  });

  it("ipMasq masquerades both families towards the external host", () => {
    const node = createCniNode();
    const ext = addExternalHost(node, { v6: true });
    const pod = addPod(node, netConf(node, { subnets, ipMasq: true }));
    expect(pingEventually(pod.netns.name, ext.addr)).toBe(true);
    expect(pingEventually(pod.netns.name, ext.addr6 as string)).toBe(true);
    const ct6 = conntrack(node.netns.name, 6).find((e) => e.orig.src === podIp(pod, 6) && e.orig.dst === ext.addr6);
    expect(ct6, JSON.stringify(conntrack(node.netns.name, 6))).toBeDefined();
    expect(ct6?.reply.dst).toBe(ext.nodeAddr6);
    expect(cniNatLines(node.netns.name).some((l) => l.includes("! -d ff00::/8") || l.includes("MASQUERADE"))).toBe(true);
  });
});

describeOurs("nonMasqueradeCIDRs (tscni)", () => {
  it("traffic to a listed CIDR keeps the pod address; other destinations are still masqueraded", () => {
    const node = createCniNode();
    const ext = addExternalHost(node, { extraAddrs: ["198.51.100.3/24"] });
    const pod = addPod(node, netConf(node, { ipMasq: true, extra: { nonMasqueradeCIDRs: ["198.51.100.2/32"] } }));
    const ip = podIp(pod);
    const fromPod = countArrivals(ext.netns.name, ip);
    // .2 is not masqueraded: the request arrives with the pod address, and there is no way back yet.
    expect(pingOk(pod.netns.name, ext.addr)).toBe(false);
    expect(fromPod()).toBeGreaterThan(0);
    // .3 is masqueraded: it answers.
    expect(pingEventually(pod.netns.name, "198.51.100.3")).toBe(true);
    const ct3 = conntrack(node.netns.name).find((e) => e.orig.src === ip && e.orig.dst === "198.51.100.3");
    expect(ct3?.reply.dst).toBe(ext.nodeAddr);
    // With a route back, .2 answers, and conntrack shows no translation.
    addRoute(ext.netns.name, "10.85.0.0/16", ext.nodeAddr);
    expect(pingEventually(pod.netns.name, ext.addr)).toBe(true);
    const ct2 = conntrack(node.netns.name).find((e) => e.orig.src === ip && e.orig.dst === ext.addr && e.reply.src === ext.addr);
    expect(ct2?.reply.dst).toBe(ip);
  });

  it("nftables backend: masquerade works, no iptables CNI- state, DEL removes the pod from the ruleset", () => {
    const node = createCniNode();
    const ext = addExternalHost(node);
    const conf = netConf(node, { ipMasq: true, extra: { ipMasqBackend: "nftables" } });
    const pod = addPod(node, conf);
    const ip = podIp(pod);
    expect(pingEventually(pod.netns.name, ext.addr)).toBe(true);
    const ct = conntrack(node.netns.name).find((e) => e.orig.src === ip && e.orig.dst === ext.addr);
    expect(ct?.reply.dst).toBe(ext.nodeAddr);
    expect(cniNatLines(node.netns.name)).toEqual([]);
    expect(nftText(node.netns.name)).toContain(ip);
    expect(delPod(node, pod).code).toBe(0);
    expect(nftText(node.netns.name)).not.toContain(ip);
  });

  it("nftables backend with nonMasqueradeCIDRs: listed CIDR keeps the pod address", () => {
    const node = createCniNode();
    const ext = addExternalHost(node, { extraAddrs: ["198.51.100.3/24"] });
    const pod = addPod(
      node,
      netConf(node, { ipMasq: true, extra: { ipMasqBackend: "nftables", nonMasqueradeCIDRs: ["198.51.100.2/32"] } }),
    );
    const fromPod = countArrivals(ext.netns.name, podIp(pod));
    expect(pingOk(pod.netns.name, ext.addr)).toBe(false);
    expect(fromPod()).toBeGreaterThan(0);
    expect(pingEventually(pod.netns.name, "198.51.100.3")).toBe(true);
  });

  it("dual stack with nftables: both families masqueraded", () => {
    const node = createCniNode();
    const ext = addExternalHost(node, { v6: true });
    const pod = addPod(node, netConf(node, { subnets: ["10.85.0.0/16", "fd85::/64"], ipMasq: true, extra: { ipMasqBackend: "nftables" } }));
    expect(pingEventually(pod.netns.name, ext.addr)).toBe(true);
    expect(pingEventually(pod.netns.name, ext.addr6 as string)).toBe(true);
    expect(conntrack(node.netns.name, 6).find((e) => e.orig.src === podIp(pod, 6))?.reply.dst).toBe(ext.nodeAddr6);
  });
});
