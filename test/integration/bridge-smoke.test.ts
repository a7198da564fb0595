// Smoke test of the bridge plugin's own path through ADD, CHECK, DEL: the kernel state,
// the spawn budget seen in the logFile (one line per invocation, per-step durations),
// and that a failed ADD changes nothing.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createCniNode } from "../helpers/cni.js";
import { execIn } from "../helpers/netns.js";
import { tool } from "../helpers/exec.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  addPod,
  BRIDGE_EXE,
  callBridge,
  cniNatLines,
  delPod,
  describeOurs,
  globalCidrs,
  hostVethOf,
  itOurs,
  netConf,
  podIp,
  procSys,
  reservations,
  vethsIn,
} from "../helpers/bridge-fixtures.js";

autoCleanup();

interface LogLine {
  command: string;
  containerId: string;
  durationMs: number;
  cpuMs?: { startup: number; handler: number };
  steps: Record<string, number>;
  outcome: "ok" | { code: number; msg: string };
}

function logLines(file: string): LogLine[] {
  return readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as LogLine);
}

describeOurs("bridge smoke (tscni)", () => {
  it("ADD, CHECK, DEL: kernel state, pings, one log line each, nothing left", () => {
    const node = createCniNode();
    const logFile = join(node.dir, "bridge.log");
    const conf = netConf(node, { extra: { logFile } });
    const a = addPod(node, conf);
    const b = addPod(node, conf);

    expect(globalCidrs(node.netns.name, "cni0")).toEqual(["10.85.0.1/16"]);
    expect(procSys(a.netns.name, "net/ipv4/conf/eth0/arp_notify")).toBe("1");
    expect(hostVethOf(node, a).master).toBe("cni0");
    const ping = (from: string, to: string) => execIn(from, [tool("ping"), "-c1", "-W2", to]).code;
    expect(ping(a.netns.name, "10.85.0.1")).toBe(0);
    expect(ping(a.netns.name, podIp(b))).toBe(0);

    const check = callBridge(node, "CHECK", { ...conf, prevResult: a.result }, { containerId: a.containerId, netns: a.netns.path });
    expect(check.code, check.stdout).toBe(0);

    expect(delPod(node, a).code).toBe(0);
    expect(delPod(node, a).code).toBe(0);
    expect(reservations(node.dataDir)).toEqual([podIp(b)]);
    expect(vethsIn(node.netns.name)).toHaveLength(1);
    expect(cniNatLines(node.netns.name).filter((l) => l.includes(`-s ${podIp(a)}/32`))).toEqual([]);

    const lines = logLines(logFile);
    expect(lines.map((l) => l.command)).toEqual(["ADD", "ADD", "CHECK", "DEL", "DEL"]);
    expect(lines.every((l) => l.outcome === "ok")).toBe(true);
    // The second ADD finds the gateway in place: validation, links batch, IPAM in-process,
    // pod ∥ masquerade; no gateway batch. Each record has the plugin process's CPU time.
    expect(Object.keys(lines[1]!.steps).sort()).toEqual(["host", "host-sysctl", "ipam", "masq", "pod", "port-up", "prepare"]);
    expect(lines[1]!.cpuMs).toEqual({ startup: expect.any(Number), handler: expect.any(Number) });
    expect(Object.keys(lines[0]!.steps)).toContain("gateway");
  });

  it("an ADD whose ifname is taken in the pod fails, rolls back its IPAM reservation and leaves the node as it was", () => {
    const node = createCniNode();
    const conf = netConf(node);
    const a = addPod(node, conf);
    const before = { res: reservations(node.dataDir), veths: vethsIn(node.netns.name).length, nat: cniNatLines(node.netns.name) };
    const r = callBridge(node, "ADD", conf, { containerId: "another-container", netns: a.netns.path });
    expect(r.code).not.toBe(0);
    expect((r.json as { msg: string }).msg).toMatch(/already exists/);
    expect({ res: reservations(node.dataDir), veths: vethsIn(node.netns.name).length, nat: cniNatLines(node.netns.name) }).toEqual(before);
  });
});

describeOurs("bridge smoke: a repeated ADD of a live attachment", () => {
  it("fails on the taken ifname and keeps the attachment's reservation (IPAM ran in parallel and is not rolled back)", () => {
    const node = createCniNode();
    const conf = netConf(node);
    const a = addPod(node, conf);
    const before = { res: reservations(node.dataDir), veths: vethsIn(node.netns.name).length, nat: cniNatLines(node.netns.name) };
    const r = callBridge(node, "ADD", conf, { containerId: a.containerId, netns: a.netns.path, ifname: a.ifname });
    expect(r.code).not.toBe(0);
    expect((r.json as { msg: string }).msg).toMatch(/already exists/);
    expect({ res: reservations(node.dataDir), veths: vethsIn(node.netns.name).length, nat: cniNatLines(node.netns.name) }).toEqual(before);
    expect(reservations(node.dataDir)).toContain(podIp(a));
  });
});

describe("bridge smoke: VERSION", () => {
  it("answers every version", () => {
    const node = createCniNode();
    const r = callBridge(node, "VERSION", { cniVersion: "1.1.0" });
    expect(r.code).toBe(0);
    expect((r.json as { supportedVersions: string[] }).supportedVersions).toContain("0.1.0");
  });

  itOurs("answers at once when stdin is a terminal nobody types into (run by hand)", async () => {
    // script(1) (Debian's bsdutils) gives the plugin a pseudo-terminal as stdin; script's own
    // stdin stays open, so the terminal never reaches its end.
    const t0 = performance.now();
    const child = spawn(tool("script"), ["-qec", `CNI_COMMAND=VERSION ${BRIDGE_EXE}`, "/dev/null"], { stdio: ["pipe", "pipe", "ignore"] });
    const answeredMs = await new Promise<number | undefined>((resolve) => {
      let out = "";
      const timer = setTimeout(() => resolve(undefined), 8000); // the stdin timeout is 10 s
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes('"supportedVersions"')) {
          clearTimeout(timer);
          resolve(performance.now() - t0);
        }
      });
    });
    child.kill();
    expect(answeredMs, "VERSION waited for the terminal").toBeLessThan(5000);
  });
});
