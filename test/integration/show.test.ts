// `tscni show` against a real node netns: two pods attached by tscni's bridge + host-local,
// then a reservation removed by hand (the pod's veth and CNI- chain become orphans); a pod
// of the Go reference attached through libcni (found through libcni's cached result); an
// nftables network. Asserts against what the kernel holds, not the plugin's own words.
// TSCNI_SHOW_EXE overrides the executable (default dist/bin/tscni).
import { rmSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { chainName } from "../../pkg/masq/names.js";
import { nftPodChain } from "../../pkg/masq/nftables-plan.js";
import { createCniNode, runDriver, writeNetConf } from "../helpers/cni.js";
import type { CniNode } from "../helpers/cni.js";
import { iptablesChains, iptablesSave } from "../helpers/firewall.js";
import { createPodNetns, execIn } from "../helpers/netns.js";
import { GO_CNI_DIR, TSCNI_EXE } from "../helpers/paths.js";
import { autoCleanup } from "../helpers/vitest.js";
import { addPod, DEFAULT_NET, describeOurs, hostVethOf, netConf, nftText, podIp } from "../helpers/bridge-fixtures.js";
import type { Pod } from "../helpers/bridge-fixtures.js";
import type { ShowReport } from "../../plugins/show/types.js";

autoCleanup();

const EXE = process.env["TSCNI_SHOW_EXE"] ?? TSCNI_EXE;

function show(node: CniNode, ...args: string[]): { code: number; stdout: string; stderr: string } {
  return execIn(node.netns.name, [EXE, "show", "--data-dir", node.dataDir, "--cache-dir", node.cacheDir, ...args]);
}

function showJson(node: CniNode, ...args: string[]): ShowReport {
  const r = show(node, "--json", ...args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ShowReport;
}

function expectMapped(node: CniNode, report: ShowReport, pod: Pod, network = DEFAULT_NET): void {
  const row = report.attachments.find((a) => a.containerId === pod.containerId);
  expect(row, `no attachment for ${pod.containerId}`).toBeDefined();
  expect(row).toMatchObject({
    network,
    ifname: pod.ifname,
    addresses: [podIp(pod)],
    hostVeth: { name: hostVethOf(node, pod).ifname, via: "alias", bridge: "cni0" },
  });
}

describeOurs("tscni show", () => {
  it("maps pods to veth, address and chain; a reservation removed by hand leaves an orphan veth and chain", () => {
    const node = createCniNode();
    const conf = netConf(node);
    const a = addPod(node, conf);
    const b = addPod(node, conf);
    const chains = iptablesChains(iptablesSave(node.netns.name, "nat"));

    const before = showJson(node);
    expect(before.networks).toEqual([DEFAULT_NET]);
    expect(before.attachments).toHaveLength(2);
    for (const p of [a, b]) {
      expectMapped(node, before, p);
      const row = before.attachments.find((x) => x.containerId === p.containerId)!;
      expect(row.iptables).toEqual({ chain: chainName(DEFAULT_NET, p.containerId), state: "present", postroutingJumps: 1 });
      expect(chains).toContain(row.iptables.chain);
    }
    expect(before.orphans).toEqual([]);
    expect(before.unclaimedVeths).toEqual([]);
    expect(before.problems).toEqual([]);

    rmSync(join(node.dataDir, DEFAULT_NET, podIp(b)));
    const after = showJson(node);
    expect(after.attachments.map((x) => x.containerId)).toEqual([a.containerId]);
    expectMapped(node, after, a);
    const vethB = hostVethOf(node, b).ifname;
    expect(after.orphans.map((o) => [o.kind, o.network, o.containerId, o.object]).sort()).toEqual([
      ["iptables-chain", DEFAULT_NET, b.containerId, chainName(DEFAULT_NET, b.containerId)],
      ["veth", DEFAULT_NET, b.containerId, vethB],
    ]);

    const text = show(node, "--no-trunc");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^${DEFAULT_NET}\\s+${a.containerId}\\s+eth0\\s+${podIp(a).replace(/\./g, "\\.")}\\s+${hostVethOf(node, a).ifname}\\s+cni0\\s+iptables CNI-`, "m"));
    expect(text.stdout).toContain("ORPHANS (2)");
    expect(text.stdout).toMatch(new RegExp(`^veth\\s+${DEFAULT_NET}\\s+${b.containerId}\\s+eth0\\s+${vethB}\\s`, "m"));
  });

  it("finds the Go reference's veth through libcni's cache; reads tscni's nftables state", () => {
    const node = createCniNode();
    writeNetConf(node.confDir, {
      cniVersion: "1.0.0",
      name: "gonet",
      plugins: [{ type: "bridge", bridge: "cni0", isGateway: true, ipMasq: true, ipam: { type: "host-local", dataDir: node.dataDir, ranges: [[{ subnet: "10.85.0.0/16" }]] } }],
    });
    const goPod = createPodNetns();
    const go = runDriver({ node: node.netns.name, command: "add", network: "gonet", netnsPath: goPod.path, confDir: node.confDir, cniPath: GO_CNI_DIR, cacheDir: node.cacheDir, containerId: "go-pod-1" });
    expect(go.code, go.stderr).toBe(0);
    const nftConf = netConf(node, { name: "nftnet", bridge: "cni1", subnets: ["10.86.0.0/16"], extra: { ipMasqBackend: "nftables" } });
    const n = addPod(node, nftConf);

    const r = showJson(node);
    expect(r.networks).toEqual(["gonet", "nftnet"]);
    const goRow = r.attachments.find((x) => x.containerId === "go-pod-1")!;
    expect(goRow.hostVeth).toMatchObject({ via: "libcni-cache", bridge: "cni0" });
    expect(goRow.iptables).toMatchObject({ chain: chainName("gonet", "go-pod-1"), state: "present" });
    const nRow = r.attachments.find((x) => x.containerId === n.containerId)!;
    expect(nRow).toMatchObject({ network: "nftnet", addresses: [podIp(n)], hostVeth: { name: hostVethOf(node, n).ifname, bridge: "cni1" } });
    const chain = nftPodChain("nftnet", "eth0", n.containerId);
    expect(nRow.nftables).toEqual({ chain, state: "present", elements: [podIp(n)] });
    expect(nftText(node.netns.name)).toContain(`chain ${chain} {`);
    expect(r.orphans).toEqual([]);

    // Without the cache, the Go veth is unknown, not an orphan; --network narrows the view.
    const noCache = JSON.parse(execIn(node.netns.name, [EXE, "show", "--data-dir", node.dataDir, "--cache-dir", join(node.dir, "none"), "--network", "gonet", "--json"]).stdout) as ShowReport;
    expect(noCache.networks).toEqual(["gonet"]);
    expect(noCache.attachments[0]).toMatchObject({ containerId: "go-pod-1", hostVeth: null, hostVethNote: "unknown (not made by tscni)" });
    expect(noCache.orphans).toEqual([]);
  });

  it("errors: a missing data dir or a bad option is one line on stderr, exit 1", () => {
    const node = createCniNode();
    const missing = execIn(node.netns.name, [EXE, "show", "--data-dir", join(node.dir, "nope")]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toBe(`tscni show: data dir ${join(node.dir, "nope")} does not exist (host-local's dataDir; set it with --data-dir)\n`);
    const bad = execIn(node.netns.name, [EXE, "show", "--jsn"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^tscni show: unknown option '--jsn'\n/);
    const help = execIn(node.netns.name, [EXE, "show", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: tscni show /);
  });
});
