// Throwaway network namespaces and temp dirs for root integration tests.
// Every name starts with `tscni-t-<runId>-`; everything made here is registered for cleanup.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { forgetNftMarkers } from "../../scripts/bench/nft-markers.mjs";
import { registerCleanup } from "./cleanup.js";
import { run, runAsync, mustRun, tool } from "./exec.js";
import type { RunOptions, RunResult } from "./exec.js";

export const NAME_PREFIX = "tscni-t-";

/** Shared by every worker of one test run (set by the integration globalSetup). */
export const RUN_ID: string = process.env["TSCNI_RUN_ID"] ?? randomBytes(3).toString("hex");

export interface Netns {
  readonly name: string;
  /** The bind-mount path (/run/netns/<name>) — what CNI_NETNS and the driver take. */
  readonly path: string;
}

export function uniqueName(kind: string): string {
  return `${NAME_PREFIX}${RUN_ID}-${kind}-${randomBytes(3).toString("hex")}`;
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

function assertOurs(name: string): void {
  if (!name.startsWith(NAME_PREFIX)) throw new Error(`refusing to touch netns not made by tests: ${name}`);
}

export function listNetns(): string[] {
  const out = mustRun(tool("ip"), ["-j", "netns", "list"]).trim();
  if (out === "") return [];
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

export function netnsExists(name: string): boolean {
  return listNetns().includes(name);
}

/** Delete one of our netns; a netns that is already gone is fine. */
export function deleteNetns(name: string): void {
  assertOurs(name);
  forgetNftMarkers(name);
  const r = run(tool("ip"), ["netns", "delete", name]);
  if (r.code !== 0 && netnsExists(name)) throw new Error(`ip netns delete ${name}: ${r.stderr.trim()}`);
}

/** Create a netns `tscni-t-<run>-<kind>-<rand>` with lo up; removed by cleanupAll(). */
export function createNetns(kind = "ns"): Netns {
  const name = uniqueName(kind);
  mustRun(tool("ip"), ["netns", "add", name]);
  forgetNftMarkers(name); // left by an earlier namespace with this inode (scripts/bench/nft-markers.mjs)
  registerCleanup(`netns ${name}`, () => deleteNetns(name));
  mustRun(tool("ip"), ["-n", name, "link", "set", "lo", "up"]);
  return { name, path: netnsPath(name) };
}

/** A "node": plays the host; plugins run only inside one. */
export function createNodeNetns(): Netns {
  return createNetns("node");
}

/** A pod sandbox netns. */
export function createPodNetns(): Netns {
  return createNetns("pod");
}

/** Run argv inside a netns (`ip netns exec`); argv[0] should be an absolute path. */
export function execIn(ns: string, argv: readonly string[], opts: RunOptions = {}): RunResult {
  assertOurs(ns);
  return run(tool("ip"), ["netns", "exec", ns, ...argv], opts);
}

export function execInAsync(ns: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  assertOurs(ns);
  return runAsync(tool("ip"), ["netns", "exec", ns, ...argv], opts);
}

/** execIn() that throws on failure; returns stdout. */
export function mustExecIn(ns: string, argv: readonly string[], opts: RunOptions = {}): string {
  assertOurs(ns);
  return mustRun(tool("ip"), ["netns", "exec", ns, ...argv], opts);
}

/** One ICMP echo from a netns, 1 s timeout. */
export function ping(fromNs: string, addr: string): boolean {
  const v6 = addr.includes(":");
  return execIn(fromNs, [tool("ping"), ...(v6 ? ["-6"] : []), "-c1", "-W1", addr]).code === 0;
}

/** A temp dir /tmp/tscni-t-<run>-<rand>, removed by cleanupAll(). */
export function createTmpDir(kind = "tmp"): string {
  const dir = mkdtempSync(join(tmpdir(), `${NAME_PREFIX}${RUN_ID}-${kind}-`));
  registerCleanup(`dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Background {
  readonly pid: number;
  /** SIGKILL the process (by PID) if it is still running. */
  stop(): void;
}

/** Start a long-running process inside a netns (a listener, a "remote host"); killed by PID on cleanup. */
export function startIn(ns: string, argv: readonly string[]): Background {
  assertOurs(ns);
  const child = spawn(tool("ip"), ["netns", "exec", ns, ...argv], { stdio: "ignore" });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`failed to start ${argv.join(" ")} in ${ns}`);
  let exited = false;
  child.on("exit", () => (exited = true));
  const stop = (): void => {
    if (exited) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  registerCleanup(`process ${pid} in ${ns}`, stop);
  return { pid, stop };
}
