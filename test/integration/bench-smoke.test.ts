// The benchmark (scripts/bench.mjs, issue 5) runs once with a tiny pod count: it completes,
// writes the JSON with every figure for every contender, and leaves no netns behind.
// No timing assertions: CI machines are noisy; the figures are for docs/bench.md.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, cleanupAll, createTmpDir, listNetns } from "../helpers/index.js";
import { autoCleanup } from "../helpers/vitest.js";

autoCleanup();

interface FigureResult {
  median: number | null;
  min: number | null;
  max: number | null;
  n: number;
  errors: number;
  ratio?: number | null;
  errorMessages?: string[];
}
interface Figure {
  key: string;
  title: string;
  unit: string;
  goal: string;
  results: Record<string, FigureResult>;
}
interface BenchReport {
  runId: string;
  command: string;
  machine: { cpu: string; cores: number; kernel: string };
  contenders: { key: string; reference: boolean }[];
  figures: Figure[];
  errors: number;
}

const HAVE_TIME = existsSync("/usr/bin/time");

describe("npm run bench (smoke)", () => {
  it("runs with a tiny pod count, reports every figure and cleans up", () => {
    const dir = createTmpDir("bench");
    const json = join(dir, "bench.json");
    const md = join(dir, "bench.md");
    const args = [
      join(REPO_ROOT, "scripts", "bench.mjs"),
      ...["--pods", "5", "--big-pods", "10", "--iterations", "3", "--concurrency", "5"],
      ...["--burst-iterations", "1", "--rss-iterations", HAVE_TIME ? "1" : "0", "--fill-parallel", "4"],
      ...["--json", json, "--md", md],
    ];
    const r = spawnSync(process.execPath, args, { cwd: REPO_ROOT, encoding: "utf8", timeout: 170_000 });
    expect(r.status, `bench exited ${r.status} ${r.signal ?? ""}\n${r.stderr}`).toBe(0);

    const report = JSON.parse(readFileSync(json, "utf8")) as BenchReport;
    expect(report.errors).toBe(0);
    expect(report.command).toContain("scripts/bench.mjs");
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.kernel).not.toBe("");
    expect(report.contenders.map((c) => c.key)).toEqual(["reference", "tscni-iptables", "tscni-nftables"]);
    // Only this run's namespaces: another benchmark may be running on the machine.
    expect(listNetns().filter((n) => n.startsWith(`tscni-b-${report.runId}-`)), "netns left behind by the benchmark").toEqual([]);

    const want = ["add", "del", "check", "addMid", "addBig", "scale", "delMid", "delBig", "burstAdd", "burstDel", "version"];
    if (HAVE_TIME) want.push("rss", "rssCheck", "rssDel");
    const figures = new Map(report.figures.map((f) => [f.key, f]));
    for (const key of want) {
      const fig = figures.get(key);
      expect(fig, `figure ${key}`).toBeDefined();
      for (const c of report.contenders) {
        const res = fig!.results[c.key];
        expect(res, `${key} / ${c.key}`).toBeDefined();
        expect(res!.errors, `${key} / ${c.key}: ${res!.errorMessages?.join("; ")}`).toBe(0);
        expect(res!.median, `${key} / ${c.key} median`).toBeGreaterThan(0);
        if (key !== "scale") {
          expect(res!.n).toBeGreaterThan(0);
          expect(res!.min!).toBeLessThanOrEqual(res!.median!);
          expect(res!.max!).toBeGreaterThanOrEqual(res!.median!);
          if (!c.reference) expect(res!.ratio, `${key} / ${c.key} ratio`).toBeGreaterThan(0);
        }
      }
    }
    const table = readFileSync(md, "utf8");
    expect(table).toContain("| figure | goal |");
    expect(table).toContain("tscni (nftables)");
    expect(cleanupAll()).toEqual([]);
  }, 180_000);
});
