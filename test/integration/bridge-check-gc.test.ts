// CHECK (verifies the kernel against prevResult, no false failures), GC and STATUS (spec
// 1.1.0, tscni only), and the opt-in logFile.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import type { CniNode, CniRun } from "../helpers/cni.js";
import { tool } from "../helpers/exec.js";
import { createPodNetns, mustExecIn } from "../helpers/netns.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  addPod,
  callBridge,
  cniNatLines,
  delPod,
  describeOurs,
  eventually,
  expectCniError,
  hostVethOf,
  linkIn,
  netConf,
  nftText,
  podIp,
  reservations,
} from "../helpers/bridge-fixtures.js";
import type { Pod } from "../helpers/bridge-fixtures.js";

autoCleanup();

function check(node: CniNode, pod: Pod, conf: object = pod.conf): CniRun {
  return callBridge(node, "CHECK", { ...conf, prevResult: pod.result }, { containerId: pod.containerId, netns: pod.netns.path });
}

describe("CHECK", () => {
  it("passes right after ADD", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    const r = check(node, pod);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout.trim()).toBe("");
  });

  it("without prevResult fails", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    const r = callBridge(node, "CHECK", pod.conf, { containerId: pod.containerId, netns: pod.netns.path });
    expectCniError(r, undefined);
  });

  it("with cniVersion 0.3.1 is refused (CHECK needs 0.4.0)", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { cniVersion: "0.3.1" }));
    const r = check(node, pod);
    expectCniError(r, [1]);
  });

  it("fails when the host veth has left the bridge", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    mustExecIn(node.netns.name, [tool("ip"), "link", "set", hostVethOf(node, pod).ifname, "nomaster"]);
    expectCniError(check(node, pod), undefined);
  });

  it("fails when the pod's default route is gone", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    mustExecIn(pod.netns.name, [tool("ip"), "route", "del", "default"]);
    expectCniError(check(node, pod), undefined);
  });
});

/** Hold a packet socket in promiscuous membership on `dev` (what tcpdump does), until killed. */
function promiscListener(ns: string, dev: string): ChildProcess | undefined {
  if (!existsSync("/usr/bin/python3")) return undefined;
  const py = [
    "import socket, struct, sys, time",
    `s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))`,
    `idx = socket.if_nametoindex(${JSON.stringify(dev)})`,
    "s.setsockopt(263, 1, struct.pack('iHH8s', idx, 1, 0, b''))",
    "print('ready', flush=True)",
    "time.sleep(30)",
  ].join("\n");
  const child = spawn(tool("ip"), ["netns", "exec", ns, "/usr/bin/python3", "-c", py], { stdio: ["ignore", "pipe", "pipe"] });
  return child;
}

describeOurs("CHECK beyond the reference (tscni)", () => {
  it("fails when the masquerade rules are gone", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    mustExecIn(node.netns.name, [tool("iptables"), "-t", "nat", "-F", "POSTROUTING"]);
    expectCniError(check(node, pod), undefined);
  });

  it("fails when the gateway address is gone from the bridge", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    mustExecIn(node.netns.name, [tool("ip"), "addr", "del", "10.85.0.1/16", "dev", "cni0"]);
    expectCniError(check(node, pod), undefined);
  });

  it("passes in L2 mode (ipam {})", () => {
    const node = createCniNode();
    const pod = addPod(node, { cniVersion: "1.0.0", name: "tscni-bridge", type: "bridge", bridge: "cni0", ipam: {} });
    const r = check(node, pod);
    expect(r.code, r.stdout).toBe(0);
  });

  it("passes while someone captures on the bridge (promiscuity from a packet socket)", async () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node));
    const child = promiscListener(node.netns.name, "cni0");
    if (child === undefined) return; // no python3 on this machine: nothing to simulate tcpdump with
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on("data", () => resolve());
        child.on("exit", (c) => reject(new Error(`listener exited ${String(c)}`)));
      });
      const promiscuity = eventually(() => linkIn(node.netns.name, "cni0")?.promiscuity ?? 0, (p) => p > 0);
      expect(promiscuity).toBeGreaterThan(0);
      const r = check(node, pod);
      expect(r.code, r.stdout).toBe(0);
    } finally {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }
  });
});

describeOurs("GC and STATUS (spec 1.1.0, tscni)", () => {
  for (const backend of ["iptables", "nftables"] as const) {
    it(`GC (${backend}) releases addresses and masquerade state of attachments not in the valid list`, () => {
      const node = createCniNode();
      const conf = netConf(node, { cniVersion: "1.1.0", extra: { ipMasqBackend: backend } });
      const keep = addPod(node, conf);
      const stale = addPod(node, conf);
      const gcConf = { ...conf, "cni.dev/valid-attachments": [{ containerID: keep.containerId, ifname: "eth0" }] };
      const r = callBridge(node, "GC", gcConf, {});
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(reservations(node.dataDir)).toEqual([podIp(keep)]);
      if (backend === "iptables") {
        const lines = cniNatLines(node.netns.name);
        expect(lines.some((l) => l.includes(`-s ${podIp(keep)}/32`))).toBe(true);
        expect(lines.some((l) => l.includes(podIp(stale)))).toBe(false);
        expect(lines.some((l) => l.includes(stale.containerId))).toBe(false);
      } else {
        expect(nftText(node.netns.name)).toContain(podIp(keep));
        expect(nftText(node.netns.name)).not.toContain(podIp(stale));
      }
      const c = check(node, keep);
      expect(c.code, c.stdout).toBe(0);
    });
  }

  it("GC with every attachment valid changes nothing", () => {
    const node = createCniNode();
    const conf = netConf(node, { cniVersion: "1.1.0" });
    const a = addPod(node, conf);
    const b = addPod(node, conf);
    const nat = cniNatLines(node.netns.name);
    const valid = [a, b].map((p) => ({ containerID: p.containerId, ifname: "eth0" }));
    expect(callBridge(node, "GC", { ...conf, "cni.dev/valid-attachments": valid }, {}).code).toBe(0);
    expect(reservations(node.dataDir).sort()).toEqual([podIp(a), podIp(b)].sort());
    expect(cniNatLines(node.netns.name)).toEqual(nat);
  });

  it("STATUS succeeds with a 1.1.0 config and prints nothing", () => {
    const node = createCniNode();
    const r = callBridge(node, "STATUS", netConf(node, { cniVersion: "1.1.0" }), {});
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("");
  });

  it("STATUS is refused for a 1.0.0 config", () => {
    const node = createCniNode();
    expectCniError(callBridge(node, "STATUS", netConf(node, { cniVersion: "1.0.0" }), {}), [1]);
  });

  it("STATUS fails when the IPAM plugin is not on CNI_PATH", () => {
    const node = createCniNode();
    const conf = netConf(node, { cniVersion: "1.1.0", ipam: { type: "no-such-ipam", dataDir: node.dataDir } });
    expectCniError(callBridge(node, "STATUS", conf, {}), undefined);
  });
});

describeOurs("logFile (tscni)", () => {
  it("one JSON line per invocation: command, container, steps, outcome", () => {
    const node = createCniNode();
    const log = join(node.dir, "bridge.log");
    const conf = netConf(node, { extra: { logFile: log } });
    const pod = addPod(node, conf);
    expect(delPod(node, pod).code).toBe(0);
    const bad = callBridge(node, "ADD", { ...conf, hairpinMode: true, promiscMode: true }, { containerId: "bad", netns: createPodNetns().path });
    expect(bad.code).not.toBe(0);
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines).toHaveLength(3);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const text = entries.map((e) => JSON.stringify(e));
    expect(text[0]).toContain("ADD");
    expect(text[0]).toContain(pod.containerId);
    expect(text[1]).toContain("DEL");
    expect(text[1]).toContain(pod.containerId);
    expect(text[2]).toContain("ADD");
    expect(text[2]).toContain("bad");
    // The failed one differs in outcome from the successful one.
    const outcome = (e: Record<string, unknown>): string => JSON.stringify(e["outcome"] ?? e["error"] ?? e["ok"] ?? e["result"]);
    expect(outcome(entries[2] as Record<string, unknown>)).not.toBe(outcome(entries[0] as Record<string, unknown>));
    // Nothing of the log leaks into the plugin's stdout.
    expect(pod.result.cniVersion).toBe("1.0.0");
  });
});
