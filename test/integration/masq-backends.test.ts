// Masquerade backends against the real kernel, each inside a throwaway "node" netns.
// The API runs in a small esbuild bundle of pkg/masq executed via `ip netns exec`, so
// iptables/nft only ever touch our own netns. Assertions read the kernel's state.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GO_CNI_DIR,
  REPO_ROOT,
  conntrackList,
  createCniNode,
  createNetns,
  createPodNetns,
  RUN_ID,
  execIn,
  iptablesSave,
  mustExecIn,
  nftRuleset,
  ping,
  runPlugin,
  tool,
} from "../helpers/index.js";
import { autoCleanup } from "../helpers/vitest.js";
import { chainName, ownerComment } from "../../pkg/masq/names.js";
import { nftPodChain } from "../../pkg/masq/nftables-plan.js";

autoCleanup();

const NET = "masqnet";
let bundle = "";

const ENTRY = `
import { setupMasq, teardownMasq, checkMasq, gcMasq, detectBackend } from "./pkg/masq/index.ts";
import { parseCidr } from "./pkg/ip.ts";
const [op, json] = process.argv.slice(2);
const a = JSON.parse(json ?? "{}");
const cidrs = (xs) => (xs === undefined ? undefined : xs.map((s) => { const c = parseCidr(s); if (!c) throw new Error("bad cidr " + s); return c; }));
const t = { ...a.target, addresses: cidrs(a.target?.addresses), nonMasqueradeCidrs: cidrs(a.target?.nonMasqueradeCidrs ?? []) };
const t0 = performance.now();
let result;
try {
  if (op === "setup") result = await setupMasq(a.backend, t);
  else if (op === "teardown") result = await teardownMasq(t);
  else if (op === "check") result = await checkMasq(a.backend, t);
  else if (op === "gc") result = await gcMasq(a.network, a.keep);
  else if (op === "detect") result = detectBackend();
  else throw new Error("unknown op " + op);
  process.stdout.write(JSON.stringify({ ok: true, ms: performance.now() - t0, result }));
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, ms: performance.now() - t0, code: e.code, msg: e.message, details: e.details }));
  process.exitCode = 1;
}
`;

let bundleDir = "";
// Built once per file; not in the per-test cleanup registry (that runs after every test).
afterAll(() => {
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

beforeAll(async () => {
  const dir = (bundleDir = mkdtempSync(join(tmpdir(), `tscni-t-${RUN_ID}-masq-bundle-`)));
  bundle = join(dir, "masq.mjs");
  await build({
    stdin: { contents: ENTRY, resolveDir: REPO_ROOT, loader: "ts", sourcefile: "masq-entry.ts" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: bundle,
    logLevel: "silent",
  });
});

interface ApiOut {
  ok: boolean;
  ms: number;
  result?: unknown;
  code?: number;
  msg?: string;
}

function api(ns: string, op: string, args: object): ApiOut {
  const r = execIn(ns, [process.execPath, bundle, op, JSON.stringify(args)]);
  const out = JSON.parse(r.stdout || "{}") as ApiOut;
  if (!out.ok) throw new Error(`${op} failed: ${out.msg ?? r.stderr}`);
  return out;
}

type Backend = "iptables" | "nftables";

interface T {
  network: string;
  containerId: string;
  ifname: string;
  addresses?: string[];
  nonMasqueradeCidrs?: string[];
}

const target = (containerId: string, addresses: string[], extra: Partial<T> = {}): T => ({ network: NET, containerId, ifname: "eth0", addresses, ...extra });

/** The nat lines (rules and user-chain declarations) that mention CNI chains. */
function natLines(ns: string, v6 = false): string[] {
  return iptablesSave(ns, "nat", v6)
    .split("\n")
    .filter((l) => /CNI-/.test(l))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ""));
}

function nftTable(ns: string): string {
  const r = execIn(ns, [tool("nft"), "list", "table", "inet", "tscni_masq"]);
  return r.code === 0 ? r.stdout : "";
}

function q(s: string): string {
  return `"${s.replace(/"/g, '\\"')}"`;
}

describe("iptables backend", () => {
  it("setup makes exactly the reference's rules; re-setup adds nothing; check; teardown is clean", () => {
    const ns = createNetns("masq").name;
    const t = target("c1", ["10.85.0.5/16", "fd00:85::5/64"], { nonMasqueradeCidrs: ["10.0.0.0/8"] });
    api(ns, "setup", { backend: "iptables", target: t });
    const ch = chainName(NET, "c1");
    const cm = q(ownerComment(NET, "c1"));
    expect(natLines(ns)).toEqual([
      `:${ch} -`,
      `-A POSTROUTING -s 10.85.0.5/32 -m comment --comment ${cm} -j ${ch}`,
      `-A ${ch} -d 10.85.0.0/16 -m comment --comment ${cm} -j ACCEPT`,
      `-A ${ch} -d 10.0.0.0/8 -m comment --comment ${cm} -j ACCEPT`,
      `-A ${ch} ! -d 224.0.0.0/4 -m comment --comment ${cm} -j MASQUERADE`,
    ]);
    expect(natLines(ns, true)).toEqual([
      `:${ch} -`,
      `-A POSTROUTING -s fd00:85::5/128 -m comment --comment ${cm} -j ${ch}`,
      `-A ${ch} -d fd00:85::/64 -m comment --comment ${cm} -j ACCEPT`,
      `-A ${ch} ! -d ff00::/8 -m comment --comment ${cm} -j MASQUERADE`,
    ]);
    const before = [natLines(ns), natLines(ns, true)];
    api(ns, "setup", { backend: "iptables", target: t });
    expect([natLines(ns), natLines(ns, true)]).toEqual(before);
    expect(api(ns, "check", { backend: "iptables", target: t }).result).toEqual({ ok: true, problems: [] });

    // A lost jump is reported by check and restored by the next setup.
    mustExecIn(ns, [tool("iptables"), "-t", "nat", "-D", "POSTROUTING", "-s", "10.85.0.5/32", "-m", "comment", "--comment", ownerComment(NET, "c1"), "-j", ch]);
    expect(api(ns, "check", { backend: "iptables", target: t }).result).toMatchObject({ ok: false, problems: [expect.stringContaining("missing rule -A POSTROUTING -s 10.85.0.5/32")] });
    api(ns, "setup", { backend: "iptables", target: t });
    expect([natLines(ns), natLines(ns, true)]).toEqual(before);

    // So is a rule lost from the pod's chain.
    mustExecIn(ns, [tool("iptables"), "-t", "nat", "-D", ch, "1"]);
    expect(api(ns, "check", { backend: "iptables", target: t }).result).toMatchObject({ ok: false, problems: [expect.stringContaining(`chain ${ch} differs`)] });

    api(ns, "teardown", { target: t });
    expect([natLines(ns), natLines(ns, true)]).toEqual([[], []]);
    api(ns, "teardown", { target: t }); // idempotent
  });

  it("teardown without addresses finds the jumps by chain name, including the legacy -s ip/prefix form", () => {
    const ns = createNetns("masq").name;
    const t = target("c2", ["10.85.0.6/16"]);
    api(ns, "setup", { backend: "iptables", target: t });
    const ch = chainName(NET, "c2");
    mustExecIn(ns, [tool("iptables"), "-t", "nat", "-A", "POSTROUTING", "-s", "10.85.0.6/16", "-m", "comment", "--comment", ownerComment(NET, "c2"), "-j", ch]);
    api(ns, "teardown", { target: { network: NET, containerId: "c2", ifname: "eth0" } });
    expect(natLines(ns)).toEqual([]);
  });

  it("gc removes this network's chains of containers not kept, and nothing else", () => {
    const ns = createNetns("masq").name;
    for (const [id, ip] of [["k1", "10.85.0.11/16"], ["g1", "10.85.0.12/16"], ["g2", "10.85.0.13/16"]] as const) {
      api(ns, "setup", { backend: "iptables", target: target(id, [ip]) });
    }
    api(ns, "setup", { backend: "iptables", target: target("g1", ["10.9.0.2/16"], { network: "othernet" }) });
    api(ns, "gc", { network: NET, keep: [{ containerId: "k1", ifname: "eth0" }] });
    const chains = natLines(ns).filter((l) => l.startsWith(":"));
    expect(chains.sort()).toEqual([`:${chainName(NET, "k1")} -`, `:${chainName("othernet", "g1")} -`].sort());
    expect(natLines(ns).filter((l) => l.startsWith("-A POSTROUTING"))).toHaveLength(2);
  });
});

describe("interop with the Go reference bridge (v1.1.1, iptables)", () => {
  function goBridge(node: ReturnType<typeof createCniNode>, command: "ADD" | "DEL", pod: string, id: string) {
    const config = {
      cniVersion: "0.4.0",
      name: NET,
      type: "bridge",
      bridge: "cni0",
      isGateway: true,
      ipMasq: true,
      ipam: { type: "host-local", dataDir: node.dataDir, ranges: [[{ subnet: "10.85.0.0/16" }]] },
    };
    const r = runPlugin({ node: node.netns.name, exe: join(GO_CNI_DIR, "bridge"), command, config, containerId: id, netns: pod });
    if (r.code !== 0) throw new Error(`Go bridge ${command}: ${r.stdout}${r.stderr}`);
    return r;
  }

  it("our teardown removes what the Go ADD made (addresses unknown)", () => {
    const node = createCniNode();
    const pod = createPodNetns();
    goBridge(node, "ADD", pod.path, "goc1");
    expect(natLines(node.netns.name)).toHaveLength(4);
    api(node.netns.name, "teardown", { target: { network: NET, containerId: "goc1", ifname: "eth0" } });
    expect(natLines(node.netns.name)).toEqual([]);
    // No Go DEL afterwards: v1.1.1 fails its DEL when the chain is already gone (go-iptables
    // does not recognise iptables-nft 1.8.9's "Chain ... does not exist" as not-exist).
    // Deleting the netns removes the rest.
  });

  it("our setup over the Go ADD's state is byte-identical, and the Go DEL removes ours", () => {
    const node = createCniNode();
    const pod = createPodNetns();
    const r = goBridge(node, "ADD", pod.path, "goc2");
    const addr = (r.json as { ips: { address: string }[] }).ips[0]!.address;
    const goState = natLines(node.netns.name);
    api(node.netns.name, "setup", { backend: "iptables", target: target("goc2", [addr]) });
    expect(natLines(node.netns.name)).toEqual(goState);
    goBridge(node, "DEL", pod.path, "goc2");
    expect(natLines(node.netns.name)).toEqual([]);
  });
});

describe("nftables backend", () => {
  it("setup, re-setup, check, teardown (known and unknown addresses)", () => {
    const ns = createNetns("masq").name;
    const t = target("n1", ["10.85.0.5/16", "fd00:85::5/64"], { nonMasqueradeCidrs: ["10.0.0.0/8"] });
    api(ns, "setup", { backend: "nftables", target: t });
    const pod = nftPodChain(NET, "eth0", "n1");
    const table = nftTable(ns);
    expect(table).toContain(`elements = { 10.85.0.5 : jump ${pod} }`);
    expect(table).toContain(`elements = { fd00:85::5 : jump ${pod} }`);
    expect(table).toContain("ip saddr 10.85.0.5 ip daddr != 224.0.0.0/4 masquerade");
    expect(table).toContain("ip daddr 10.0.0.0/8 return");
    const rules = nftRuleset(ns).filter((o) => "rule" in o).length;
    api(ns, "setup", { backend: "nftables", target: t });
    expect(nftTable(ns)).toBe(table);
    expect(nftRuleset(ns).filter((o) => "rule" in o).length).toBe(rules);
    expect(api(ns, "check", { backend: "nftables", target: t }).result).toEqual({ ok: true, problems: [] });

    api(ns, "teardown", { target: t });
    expect(nftTable(ns)).not.toContain(pod);
    expect(nftTable(ns)).not.toMatch(/elements/);
    expect((api(ns, "check", { backend: "nftables", target: t }).result as { ok: boolean }).ok).toBe(false);

    api(ns, "setup", { backend: "nftables", target: t });
    api(ns, "teardown", { target: { network: NET, containerId: "n1", ifname: "eth0" } });
    expect(nftTable(ns)).not.toContain(pod);
    expect(nftTable(ns)).not.toMatch(/elements/);
    expect(natLines(ns)).toEqual([]); // the iptables side had nothing and reported nothing
  });

  it("a leftover element of another owner is replaced on ADD and survives that owner's DEL", () => {
    const ns = createNetns("masq").name;
    api(ns, "setup", { backend: "nftables", target: target("old", ["10.85.0.7/16"]) });
    api(ns, "setup", { backend: "nftables", target: target("new", ["10.85.0.7/16"]) });
    const mine = nftPodChain(NET, "eth0", "new");
    expect(nftTable(ns)).toContain(`elements = { 10.85.0.7 : jump ${mine} }`);
    api(ns, "teardown", { target: target("old", ["10.85.0.7/16"]) });
    expect(nftTable(ns)).toContain(`elements = { 10.85.0.7 : jump ${mine} }`);
    expect(nftTable(ns)).not.toContain(nftPodChain(NET, "eth0", "old"));
  });

  it("gc keeps listed attachments only, per network", () => {
    const ns = createNetns("masq").name;
    for (const [id, ip] of [["k1", "10.85.0.11/16"], ["g1", "10.85.0.12/16"], ["g2", "fd00:85::13/64"]] as const) {
      api(ns, "setup", { backend: "nftables", target: target(id, [ip]) });
    }
    api(ns, "setup", { backend: "nftables", target: target("g1", ["10.9.0.2/16"], { network: "othernet" }) });
    api(ns, "gc", { network: NET, keep: [{ containerId: "k1", ifname: "eth0" }] });
    const table = nftTable(ns);
    expect(table).toContain(nftPodChain(NET, "eth0", "k1"));
    expect(table).toContain(nftPodChain("othernet", "eth0", "g1"));
    expect(table).not.toContain(nftPodChain(NET, "eth0", "g1"));
    expect(table).not.toContain(nftPodChain(NET, "eth0", "g2"));
    expect(table).not.toContain("fd00:85::13");
  });
});

describe.each(["iptables", "nftables"] as const)("connectivity through masquerade (%s)", (backend: Backend) => {
  it("the pod reaches an external netns only with masquerade, seen as SNAT in conntrack", () => {
    const node = createNetns("masq-node").name;
    const pod = createPodNetns().name;
    const ext = createNetns("masq-ext").name;
    const ip = tool("ip");
    const n = (args: string) => mustExecIn(node, [ip, ...args.split(" ")]);
    // node: bridge br0 10.85.0.1/24 + veth to the pod; veth to "ext" 198.51.100.1/24.
    n("link add br0 type bridge");
    n("addr add 10.85.0.1/24 dev br0");
    n("link set br0 up");
    n(`link add vpod type veth peer name eth0 netns ${pod}`);
    n("link set vpod master br0 up");
    n(`link add vext type veth peer name eth0 netns ${ext}`);
    n("addr add 198.51.100.1/24 dev vext");
    n("link set vext up");
    mustExecIn(node, [tool("sysctl"), "-qw", "net.ipv4.ip_forward=1"]);
    for (const [ns, addr, gw] of [[pod, "10.85.0.2/24", "10.85.0.1"], [ext, "198.51.100.2/24", undefined]] as const) {
      mustExecIn(ns, [ip, "addr", "add", addr, "dev", "eth0"]);
      mustExecIn(ns, [ip, "link", "set", "eth0", "up"]);
      if (gw) mustExecIn(ns, [ip, "route", "add", "default", "via", gw]);
    }
    // ext has no route back to 10.85.0.0/24: without SNAT the reply is lost.
    expect(ping(pod, "198.51.100.2")).toBe(false);
    const t = target(`conn-${backend}`, ["10.85.0.2/24"]);
    api(node, "setup", { backend, target: t });
    expect(ping(pod, "198.51.100.2")).toBe(true);
    const flows = conntrackList(node).split("\n").filter((l) => l.includes("src=10.85.0.2") && l.includes("dst=198.51.100.2"));
    expect(flows.some((l) => / dst=198\.51\.100\.1 /.test(l.slice(l.lastIndexOf("src=198.51.100.2"))))).toBe(true);
    api(node, "teardown", { target: t });
    mustExecIn(node, [tool("conntrack"), "-F"]);
    expect(ping(pod, "198.51.100.2")).toBe(false);
  });
});
