// pkg/exec's settleOnNetlinkClose against the real kernel: an nf_tables tool that deleted
// something is done once it closes its netlink socket after reading all of its (padded)
// input, and that close then waits for an RCU grace period. run() must settle inside that
// wait — while the tool still runs — with the deletion already in the kernel, and must
// still report a failing tool by its exit code. Everything happens in a throwaway netns.
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { run } from "../../pkg/exec.js";
import { createNetns, iptablesSave, mustExecIn, tool } from "../helpers/index.js";
import { autoCleanup } from "../helpers/vitest.js";

autoCleanup();

/** A nat table with `n` chains CNI-c<i>, each with one rule and a jump from POSTROUTING. */
function natWithChains(ns: string, n: number): void {
  const lines = ["*nat"];
  for (let i = 1; i <= n; i++) lines.push(`:CNI-c${i} - [0:0]`, `-A CNI-c${i} -d 10.85.0.0/16 -j ACCEPT`, `-A POSTROUTING -s 10.85.0.${i}/32 -j CNI-c${i}`);
  lines.push("COMMIT", "");
  mustExecIn(ns, [tool("iptables-restore"), "--noflush", "-w"], { input: lines.join("\n") });
}

const teardown = (i: number): string => `*nat\n-D POSTROUTING -s 10.85.0.${i}/32 -j CNI-c${i}\n-F CNI-c${i}\n-X CNI-c${i}\nCOMMIT\n`;

/** Children of this process still running `comm` (not yet exited: zombies do not count). */
function runningChildren(comm: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "latin1");
      const m = /^\d+ \((.*)\) (\S) (\d+) /.exec(stat);
      if (m && m[1] === comm && m[2] !== "Z" && Number(m[3]) === process.pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

describe("run with settleOnNetlinkClose", () => {
  it("settles while iptables-restore still waits out the grace period, the chain already gone", async () => {
    const ns = createNetns("exec");
    const n = 5;
    natWithChains(ns.name, n);
    let early = 0;
    for (let i = 1; i <= n; i++) {
      const argv = [tool("nsenter"), `--net=${ns.path}`, tool("iptables-restore"), "--noflush", "-w"];
      const r = await run(argv, { stdin: teardown(i), settleOnNetlinkClose: { fillerLine: "#\n" } });
      // nsenter execs the tool: the child's comm is the tool's (truncated to 15 bytes).
      if (runningChildren("iptables-restor").length > 0) early++;
      // Whenever run() settles, the deletion is in the kernel.
      expect(r).toMatchObject({ code: 0, stderr: "" });
      expect(iptablesSave(ns.name, "nat")).not.toMatch(new RegExp(`CNI-c${i}\\b`));
    }
    // Settling early is a matter of timing (the close must still be waiting when a 1 ms
    // poll looks), so it must happen, but not every time on a loaded machine.
    expect(early, "run() never settled before iptables-restore had exited").toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 200)); // let the tools finish before the netns goes
  });

  it("still settles a failing tool at its exit, with its code and stderr", async () => {
    const ns = createNetns("exec");
    natWithChains(ns.name, 1);
    const argv = [tool("nsenter"), `--net=${ns.path}`, tool("iptables-restore"), "--noflush", "-w"];
    const r = await run(argv, { stdin: teardown(7), settleOnNetlinkClose: { fillerLine: "#\n" }, allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/line 2 failed|does not exist|Bad rule/i);
    expect(iptablesSave(ns.name, "nat")).toMatch(/-A CNI-c1 /);
  });
});
