// Bad input → a CNI error object on stdout, non-zero exit, the right code, and no change on
// the node (links, addresses, routes, nat rules, nft ruleset, ip_forward, IPAM files) nor in
// the pod netns. The reference creates the bridge (and sometimes the veth) before it looks at
// the netns or calls IPAM, so "no change" is checked against it only where it holds.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import type { CniNode } from "../helpers/cni.js";
import { tool } from "../helpers/exec.js";
import { links } from "../helpers/ipjson.js";
import { createPodNetns, mustExecIn } from "../helpers/netns.js";
import type { Netns } from "../helpers/netns.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  IS_REFERENCE,
  addPod,
  callBridge,
  expectCniError,
  netConf,
  nodeSnapshot,
} from "../helpers/bridge-fixtures.js";
import type { CallOptions } from "../helpers/bridge-fixtures.js";

autoCleanup();

interface Case {
  readonly name: string;
  /** The config (from the default seed config). */
  readonly conf?: (node: CniNode, base: Record<string, unknown>) => object | string;
  /** Call options (from containerId "bad-input", the pod's path, ifname eth0). */
  readonly call?: (pod: Netns, node: CniNode) => CallOptions;
  /** Prepare the pod/node before the snapshot. */
  readonly prepare?: (pod: Netns, node: CniNode) => void;
  /** Codes tscni must answer with. */
  readonly codes: readonly number[];
  /** Codes the reference answers with (undefined: any). */
  readonly refCodes?: readonly number[];
  /** Whether the reference also leaves the node unchanged (false: checked only for tscni). */
  readonly refNoChange: boolean;
  /** Only tscni has this check at all (a key the reference ignores). */
  readonly oursOnly?: boolean;
  /** The failure comes after IPAM ran: only reservations must be unchanged, not host-local's cursor. */
  readonly afterIpam?: boolean;
}

const CASES: readonly Case[] = [
  { name: "missing CNI_CONTAINERID", call: (p) => ({ containerId: undefined as unknown as string, netns: p.path, env: {} }), codes: [4], refCodes: [4], refNoChange: true },
  { name: "missing CNI_NETNS", call: () => ({ netns: undefined as unknown as string }), codes: [4], refCodes: [4], refNoChange: true },
  { name: "missing CNI_IFNAME", call: (p) => ({ netns: p.path, ifname: null as unknown as string }), codes: [4], refCodes: [4], refNoChange: true },
  { name: "stdin is not JSON", conf: () => "{ not json", codes: [6], refCodes: [6], refNoChange: true },
  { name: "unsupported cniVersion 9.9.9", conf: (_n, b) => ({ ...b, cniVersion: "9.9.9" }), codes: [1], refCodes: [1], refNoChange: true },
  { name: "hairpinMode and promiscMode together", conf: (_n, b) => ({ ...b, hairpinMode: true, promiscMode: true }), codes: [7], refNoChange: true },
  { name: "vlan 5000 (out of range)", conf: (_n, b) => ({ ...b, vlan: 5000 }), codes: [7], refNoChange: true },
  { name: "vlan -1", conf: (_n, b) => ({ ...b, vlan: -1 }), codes: [7], refNoChange: true },
  { name: "vlan and vlanTrunk together", conf: (_n, b) => ({ ...b, vlan: 100, vlanTrunk: [{ id: 200 }] }), codes: [7], refNoChange: true, oursOnly: true },
  { name: "vlanTrunk minID > maxID", conf: (_n, b) => ({ ...b, vlanTrunk: [{ minID: 300, maxID: 200 }] }), codes: [7], refNoChange: true, oursOnly: true },
  { name: "vlanTrunk id 4095", conf: (_n, b) => ({ ...b, vlanTrunk: [{ id: 4095 }] }), codes: [7], refNoChange: true, oursOnly: true },
  { name: "bridge name longer than 15 characters", conf: (_n, b) => ({ ...b, bridge: "cni-bridge-too-long" }), codes: [7], refNoChange: true },
  { name: "malformed MAC in runtimeConfig", conf: (_n, b) => ({ ...b, runtimeConfig: { mac: "zz:zz:zz" } }), codes: [7], refNoChange: false },
  { name: "malformed MAC in CNI_ARGS", call: (p) => ({ netns: p.path, args: "IgnoreUnknown=1;MAC=not-a-mac" }), codes: [7], refNoChange: false },
  { name: "invalid subnet in ipam", conf: (n, b) => ({ ...b, ipam: { type: "host-local", dataDir: n.dataDir, ranges: [[{ subnet: "10.85.0.0/33" }]] } }), codes: [7], refNoChange: false },
  { name: "IPAM plugin not on CNI_PATH", conf: (n, b) => ({ ...b, ipam: { type: "no-such-ipam", dataDir: n.dataDir } }), codes: [7, 50, 999], refNoChange: false },
  { name: "CNI_NETNS does not exist", call: () => ({ netns: "/run/netns/tscni-t-does-not-exist" }), codes: [4, 8], refNoChange: false },
  { name: "CNI_NETNS is a regular file", call: (_p, n) => ({ netns: regularFile(n) }), codes: [4, 8], refNoChange: false },
  {
    name: "an interface named CNI_IFNAME already exists in the pod",
    prepare: (p) => mustExecIn(p.name, [tool("ip"), "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"]),
    codes: [4, 7, 999],
    refNoChange: false,
    afterIpam: true,
  },
  { name: "nonMasqueradeCIDRs entry is not a CIDR", conf: (_n, b) => ({ ...b, nonMasqueradeCIDRs: ["10.200.0.0/99"] }), codes: [7], refNoChange: true, oursOnly: true },
  { name: "unknown ipMasqBackend", conf: (_n, b) => ({ ...b, ipMasqBackend: "pf" }), codes: [7], refNoChange: true, oursOnly: true },
];

function regularFile(node: CniNode): string {
  const f = join(node.dir, "not-a-netns");
  writeFileSync(f, "");
  return f;
}

function podLinks(pod: Netns): unknown {
  return links(pod.name).map((l) => ({ ifname: l.ifname, kind: l.linkinfo?.info_kind, flags: l.flags }));
}

describe("bad input on ADD", () => {
  for (const c of CASES) {
    const skip = IS_REFERENCE && c.oursOnly === true;
    it.skipIf(skip)(`${c.name} → CNI error${IS_REFERENCE && !c.refNoChange ? "" : ", node unchanged"}`, () => {
      const node = createCniNode();
      const pod = createPodNetns();
      const base = netConf(node);
      c.prepare?.(pod, node);
      const snap = { data: c.afterIpam === true ? ("reservations" as const) : ("tree" as const) };
      const before = nodeSnapshot(node, snap);
      const podBefore = podLinks(pod);
      const opts: CallOptions = { containerId: "bad-input", netns: pod.path, ifname: "eth0", ...c.call?.(pod, node) };
      const r = callBridge(node, "ADD", c.conf === undefined ? base : c.conf(node, base), opts);
      expectCniError(r, IS_REFERENCE ? c.refCodes : c.codes);
      if (!IS_REFERENCE || c.refNoChange) {
        expect(nodeSnapshot(node, snap)).toEqual(before);
        expect(podLinks(pod)).toEqual(podBefore);
      }
    });
  }

  it("addresses exhausted (a /30 holds one pod) → error; the first pod is intact" + (IS_REFERENCE ? "" : ", node unchanged"), () => {
    const node = createCniNode();
    const conf = netConf(node, { subnets: ["10.85.0.0/30"] });
    const first = addPod(node, conf);
    const before = nodeSnapshot(node);
    const pod = createPodNetns();
    const r = callBridge(node, "ADD", conf, { containerId: "second", netns: pod.path });
    expectCniError(r, IS_REFERENCE ? undefined : [11, 999, 7]);
    if (!IS_REFERENCE) {
      expect(nodeSnapshot(node)).toEqual(before);
      expect(podLinks(pod)).toEqual(podLinks(createPodNetns()));
    }
    expect(callBridge(node, "CHECK", { ...conf, prevResult: first.result }, { containerId: first.containerId, netns: first.netns.path }).code).toBe(0);
  });

  it("errors go to stdout as JSON; stderr never holds the result", () => {
    const node = createCniNode();
    const r = callBridge(node, "ADD", { ...netConf(node), hairpinMode: true, promiscMode: true }, { containerId: "x", netns: createPodNetns().path });
    expect(r.code).not.toBe(0);
    const err = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(err)).toEqual(expect.arrayContaining(["code", "msg"]));
    expect(r.stderr).not.toContain('"code"');
  });
});
