import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { CniCode, CniError } from "./types/errors.js";

/** The only place that spawns processes. */
export interface RunOptions {
  stdin?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Resolve instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /**
   * Called once `stdin` is in the pipe. The write is asynchronous (bun and Node alike): a
   * caller about to block the event loop with synchronous work waits for this first, or
   * the child waits for its input until that work is done.
   */
  onStdinWritten?: () => void;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const SAFE_ARG = /^[\w@%+=:,./-]+$/;

/** Quotes only the argv parts that need it, for error messages. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (SAFE_ARG.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

/** A spawned tool failed: the quoted command, its exit code and stderr are the evidence. */
export class CommandFailedError extends CniError {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stderr: string;

  constructor(argv: readonly string[], exitCode: number, stderr: string, code: number = CniCode.Internal) {
    const tail = stderr.trim().split("\n").slice(-3).join("; ");
    super(code, `${formatCommand(argv.slice(0, 3))}${argv.length > 3 ? " …" : ""} failed (exit ${exitCode})${tail ? `: ${tail}` : ""}`, `command: ${formatCommand(argv)}`);
    this.name = "CommandFailedError";
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ? (opts.env as NodeJS.ProcessEnv) : process.env,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e: NodeJS.ErrnoException) => {
      reject(new CniError(CniCode.Internal, `cannot run ${argv[0]}: ${e.message}`, `command: ${formatCommand(argv)}`, { cause: e }));
    });
    child.on("close", (code, signal) => {
      const res = { code: code ?? 128, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
      if (signal) res.stderr += `\nkilled by ${signal}`;
      if (res.code !== 0 && !opts.allowFailure) reject(new CommandFailedError(argv, res.code, res.stderr));
      else resolve(res);
    });
    child.stdin.on("error", () => opts.onStdinWritten?.());
    child.stdin.end(opts.stdin ?? "", () => opts.onStdinWritten?.());
  });
}

const SYSTEM_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"];
const resolved = new Map<string, string | null>();

/**
 * Finds a system tool by absolute path, once per process. System directories come
 * first: root's PATH on many machines starts with directories that hold none of them.
 */
export function findTool(name: string): string | undefined {
  const hit = resolved.get(name);
  if (hit !== undefined) return hit ?? undefined;
  const dirs = [...SYSTEM_DIRS, ...(process.env.PATH ?? "").split(":").filter(Boolean)];
  for (const dir of dirs) {
    const p = `${dir}/${name}`;
    try {
      accessSync(p, constants.X_OK);
      resolved.set(name, p);
      return p;
    } catch {
      /* next */
    }
  }
  resolved.set(name, null);
  return undefined;
}

/** Like findTool, but a missing tool is a clear error. */
export function tool(name: string): string {
  const p = findTool(name);
  if (!p) throw new CniError(CniCode.Internal, `required tool "${name}" not found`, `searched ${SYSTEM_DIRS.join(", ")} and PATH`);
  return p;
}
