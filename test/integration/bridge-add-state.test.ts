// The seed scenario, one ADD at a time: what the kernel holds after ADD, CHECK and DEL.
// cni0 with gateway 10.85.0.1/16, a veth per pod (pod end eth0), default route via the
// gateway, ip_forward, the per-pod CNI-… masquerade chain (reference layout), host-local files.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import type { CniNode } from "../helpers/cni.js";
import { tool } from "../helpers/exec.js";
import { routes } from "../helpers/ipjson.js";
import { mustExecIn } from "../helpers/netns.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  DEFAULT_NET,
  addPod,
  bridgesIn,
  callBridge,
  delPod,
  globalCidrs,
  hostVethOf,
  linkIn,
  natRules,
  netConf,
  podIp,
  procSys,
  reservationOwner,
  reservations,
  vethsIn,
} from "../helpers/bridge-fixtures.js";

autoCleanup();

function chainName(net: string, cid: string): string {
  return `CNI-${createHash("sha512").update(net + cid).digest("hex").slice(0, 24)}`;
}

describe("bridge ADD: kernel state of the seed scenario", () => {
  let node: CniNode;

  it("creates cni0 with the gateway, the veth pair, the pod address and default route", () => {
    node = createCniNode();
    const conf = netConf(node);
    const pod = addPod(node, conf);
    const nodeNs = node.netns.name;

    const br = linkIn(nodeNs, "cni0");
    expect(br?.linkinfo?.info_kind).toBe("bridge");
    expect(br?.flags).toContain("UP");
    expect(globalCidrs(nodeNs, "cni0")).toEqual(["10.85.0.1/16"]);

    const veth = hostVethOf(node, pod);
    expect(veth.ifname).toMatch(/^veth[0-9a-f]{8}$/);
    expect(veth.master).toBe("cni0");
    expect(veth.flags).toContain("UP");

    const eth0 = linkIn(pod.netns.name, "eth0");
    expect(eth0?.linkinfo?.info_kind).toBe("veth");
    expect(eth0?.flags).toContain("UP");
    const ip = podIp(pod);
    expect(globalCidrs(pod.netns.name, "eth0")).toEqual([`${ip}/16`]);
    expect(ip).toMatch(/^10\.85\./);
    expect(ip).not.toBe("10.85.0.1");

    const def = routes(pod.netns.name, { family: 4 }).find((r) => r.dst === "default");
    expect(def?.gateway).toBe("10.85.0.1");
    expect(def?.dev).toBe("eth0");

    expect(procSys(nodeNs, "net.ipv4.ip_forward")).toBe("1");
    expect(procSys(pod.netns.name, "net.ipv4.conf.eth0.arp_notify")).toBe("1");
  });

  it("prints a 1.0.0 result naming bridge, host veth and pod interface (with sandbox)", () => {
    node = createCniNode();
    const pod = addPod(node, netConf(node));
    const r = pod.result;
    expect(r.cniVersion).toBe("1.0.0");
    const ifs = r.interfaces ?? [];
    expect(ifs.map((i) => i.name)).toEqual(["cni0", hostVethOf(node, pod).ifname, "eth0"]);
    expect(ifs[2]?.sandbox).toBe(pod.netns.path);
    expect(ifs[0]?.mac).toBe(linkIn(node.netns.name, "cni0")?.address);
    expect(ifs[1]?.mac).toBe(hostVethOf(node, pod).address);
    expect(ifs[2]?.mac).toBe(linkIn(pod.netns.name, "eth0")?.address);
    expect(r.ips).toHaveLength(1);
    expect(r.ips?.[0]?.interface).toBe(2);
    expect(r.ips?.[0]?.gateway).toBe("10.85.0.1");
    expect(r.ips?.[0]?.address).toMatch(/^10\.85\.\d+\.\d+\/16$/);
    // The reference echoes the IPAM route as is (no gw); a gw, if present, must be the gateway.
    expect(r.routes).toHaveLength(1);
    expect(r.routes?.[0]?.dst).toBe("0.0.0.0/0");
    if (r.routes?.[0]?.gw !== undefined) expect(r.routes[0].gw).toBe("10.85.0.1");
  });

  it("reserves the address in the host-local data dir with container id and ifname", () => {
    node = createCniNode();
    const pod = addPod(node, netConf(node));
    const ip = podIp(pod);
    expect(reservations(node.dataDir)).toEqual([ip]);
    const owner = reservationOwner(node.dataDir, ip);
    expect(owner[0]).toBe(pod.containerId);
    expect(owner[1]).toBe("eth0");
  });

  it("installs the per-pod CNI- masquerade chain with the reference layout", () => {
    node = createCniNode();
    const pod = addPod(node, netConf(node));
    const ip = podIp(pod);
    const chain = chainName(DEFAULT_NET, pod.containerId);
    const comment = `"name: \\"${DEFAULT_NET}\\" id: \\"${pod.containerId}\\""`;
    const rules = natRules(node.netns.name);
    expect(rules).toContain(`:${chain} -`);
    expect(rules).toContain(`-A POSTROUTING -s ${ip}/32 -m comment --comment ${comment} -j ${chain}`);
    expect(rules).toContain(`-A ${chain} -d 10.85.0.0/16 -m comment --comment ${comment} -j ACCEPT`);
    expect(rules).toContain(`-A ${chain} ! -d 224.0.0.0/4 -m comment --comment ${comment} -j MASQUERADE`);
  });

  it("second pod: same bridge, another address, another veth; CHECK passes for both", () => {
    node = createCniNode();
    const conf = netConf(node);
    const a = addPod(node, conf);
    const b = addPod(node, conf);
    expect(bridgesIn(node.netns.name)).toHaveLength(1);
    expect(podIp(a)).not.toBe(podIp(b));
    expect(vethsIn(node.netns.name).filter((v) => v.master === "cni0")).toHaveLength(2);
    for (const p of [a, b]) {
      const r = callBridge(node, "CHECK", { ...conf, prevResult: p.result }, { containerId: p.containerId, netns: p.netns.path });
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
  });

  it("DEL removes the veth, the reservation and the masquerade chain; keeps the bridge", () => {
    node = createCniNode();
    const conf = netConf(node);
    const keep = addPod(node, conf);
    const pod = addPod(node, conf);
    const r = delPod(node, pod);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(linkIn(pod.netns.name, "eth0")).toBeUndefined();
    expect(vethsIn(node.netns.name).map((v) => v.ifname)).toEqual([hostVethOf(node, keep).ifname]);
    expect(reservations(node.dataDir)).toEqual([podIp(keep)]);
    const chain = chainName(DEFAULT_NET, pod.containerId);
    expect(natRules(node.netns.name).filter((l) => l.includes(chain))).toEqual([]);
    expect(natRules(node.netns.name).some((l) => l.includes(chainName(DEFAULT_NET, keep.containerId)))).toBe(true);
    expect(linkIn(node.netns.name, "cni0")).toBeDefined();
  });

  it("CHECK fails once the pod's address is gone", () => {
    node = createCniNode();
    const conf = netConf(node);
    const pod = addPod(node, conf);
    const ip = podIp(pod);
    expect(callBridge(node, "CHECK", { ...conf, prevResult: pod.result }, { containerId: pod.containerId, netns: pod.netns.path }).code).toBe(0);
    // Break the pod: remove its address.
    mustExecIn(pod.netns.name, [tool("ip"), "addr", "del", `${ip}/16`, "dev", "eth0"]);
    const r = callBridge(node, "CHECK", { ...conf, prevResult: pod.result }, { containerId: pod.containerId, netns: pod.netns.path });
    expect(r.code).not.toBe(0);
  });
});
