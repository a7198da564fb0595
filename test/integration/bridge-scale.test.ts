// 100 concurrent ADDs on one fresh node: the bridge is created once (the racing creators all
// succeed), 100 distinct addresses, 100 veths on the bridge; then 100 concurrent DELs leave
// nothing (no veths, no reservations, no masquerade state).
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import type { CniNode } from "../helpers/cni.js";
import { createPodNetns } from "../helpers/netns.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  IS_REFERENCE,
  addPodAsync,
  bridgesIn,
  cniNatLines,
  delPodAsync,
  globalCidrs,
  netConf,
  nftText,
  podIp,
  reservations,
  vethsIn,
} from "../helpers/bridge-fixtures.js";
import type { Pod } from "../helpers/bridge-fixtures.js";

autoCleanup();

const N = Number(process.env["TSCNI_SCALE_PODS"] ?? "100");

async function burst(node: CniNode, conf: object): Promise<Pod[]> {
  const netns = Array.from({ length: N }, () => createPodNetns());
  const t0 = Date.now();
  const pods = await Promise.all(netns.map((pod, i) => addPodAsync(node, conf, { pod, containerId: `scale-${i}`, timeoutMs: 120_000 })));
  console.log(`${N} concurrent ADDs: ${Date.now() - t0} ms`);
  return pods;
}

async function delAll(node: CniNode, pods: readonly Pod[]): Promise<void> {
  const t0 = Date.now();
  const runs = await Promise.all(pods.map((p) => delPodAsync(node, p, { timeoutMs: 120_000 })));
  console.log(`${N} concurrent DELs: ${Date.now() - t0} ms`);
  const failed = runs.filter((r) => r.code !== 0);
  expect(failed.map((r) => r.stdout), "failed DELs").toEqual([]);
}

function expectAllUp(node: CniNode, pods: readonly Pod[]): void {
  const n = node.netns.name;
  expect(bridgesIn(n).map((b) => b.ifname)).toEqual(["cni0"]);
  const ips = pods.map((p) => podIp(p));
  expect(new Set(ips).size).toBe(N);
  expect(reservations(node.dataDir).sort()).toEqual([...ips].sort());
  const veths = vethsIn(n);
  expect(veths).toHaveLength(N);
  expect(veths.every((v) => v.master === "cni0")).toBe(true);
  expect(globalCidrs(n, "cni0")).toEqual(["10.85.0.1/16"]);
  // Every pod holds exactly the address its result names (spot check 10 of them).
  for (const p of pods.slice(0, 10)) expect(globalCidrs(p.netns.name, "eth0")).toEqual([`${podIp(p)}/16`]);
}

describe(`${N} concurrent ADDs then ${N} concurrent DELs on a fresh node`, () => {
  it("iptables masquerade", { timeout: 240_000 }, async () => {
    const node = createCniNode();
    const pods = await burst(node, netConf(node));
    expectAllUp(node, pods);
    expect(cniNatLines(node.netns.name).filter((l) => l.startsWith("-A POSTROUTING"))).toHaveLength(N);
    await delAll(node, pods);
    expect(vethsIn(node.netns.name)).toEqual([]);
    expect(reservations(node.dataDir)).toEqual([]);
    expect(cniNatLines(node.netns.name)).toEqual([]);
  });

  it.skipIf(IS_REFERENCE)("nftables masquerade", { timeout: 240_000 }, async () => {
    const node = createCniNode();
    const pods = await burst(node, netConf(node, { extra: { ipMasqBackend: "nftables" } }));
    expectAllUp(node, pods);
    const rules = nftText(node.netns.name);
    for (const p of pods) expect(rules).toContain(podIp(p));
    await delAll(node, pods);
    expect(vethsIn(node.netns.name)).toEqual([]);
    expect(reservations(node.dataDir)).toEqual([]);
    const after = nftText(node.netns.name);
    for (const p of pods) expect(after).not.toMatch(new RegExp(`\\b${podIp(p).replaceAll(".", "\\.")}\\b`));
    expect(cniNatLines(node.netns.name)).toEqual([]);
  });
});
