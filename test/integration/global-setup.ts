// Integration globalSetup: root only; one run id for every worker; sweep this run's leftovers at the end.
import { randomBytes } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, tool } from "../helpers/exec.js";

const PREFIX = "tscni-t-";

function ourNetns(runId: string): string[] {
  const r = run(tool("ip"), ["-j", "netns", "list"]);
  if (r.code !== 0 || r.stdout.trim() === "") return [];
  return (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name).filter((n) => n.startsWith(`${PREFIX}${runId}-`));
}

export function setup(): void {
  if (process.getuid?.() !== 0) {
    throw new Error("integration tests need root (they create network namespaces); refusing to run");
  }
  process.env["TSCNI_RUN_ID"] ??= randomBytes(3).toString("hex");
}

export function teardown(): void {
  const runId = process.env["TSCNI_RUN_ID"];
  if (runId === undefined || runId === "") return;
  const leaked = ourNetns(runId);
  for (const name of leaked) run(tool("ip"), ["netns", "delete", name]);
  const dirs = readdirSync(tmpdir()).filter((d) => d.startsWith(`${PREFIX}${runId}-`));
  for (const d of dirs) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  if (leaked.length > 0 || dirs.length > 0) {
    // A test forgot cleanupAll(): report it (the sweep above already removed them).
    throw new Error(`leaked by tests (now removed): ${[...leaked, ...dirs].join(", ")}`);
  }
}
