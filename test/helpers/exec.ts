// Spawning for tests: one sync and one async runner, tools by absolute path.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export interface RunOptions {
  readonly input?: string;
  /** Full environment of the child (not merged); default: process.env. */
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

export interface RunResult {
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    super(`command failed (exit ${result.code}${result.signal ? `, ${result.signal}` : ""}): ${argv.join(" ")}\n${result.stderr}${result.stdout}`);
    this.name = "CommandError";
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;
const TOOL_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"];
const toolCache = new Map<string, string>();

/** Absolute path of a system tool (ip, iptables, ping, …), resolved once. */
export function tool(name: string): string {
  const cached = toolCache.get(name);
  if (cached !== undefined) return cached;
  const found = TOOL_DIRS.map((d) => `${d}/${name}`).find((p) => existsSync(p));
  if (found === undefined) throw new Error(`tool not found: ${name} (looked in ${TOOL_DIRS.join(", ")})`);
  toolCache.set(name, found);
  return found;
}

/** A clean PATH for plugins and the driver, like a container runtime's. */
export const CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(cmd, args, {
    input: opts.input ?? "",
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error && r.status === null && r.signal === null) throw r.error;
  return { code: r.status ?? -1, signal: r.signal, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function runAsync(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr });
    });
    child.stdin.on("error", () => {}); // child may exit without reading stdin
    child.stdin.end(opts.input ?? "");
  });
}

/** run() that throws CommandError on a non-zero exit; returns stdout. */
export function mustRun(cmd: string, args: readonly string[], opts: RunOptions = {}): string {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new CommandError([cmd, ...args], r);
  return r.stdout;
}
