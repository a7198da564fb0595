import type * as ChildProcess from "node:child_process";
import { accessSync, closeSync, constants, fstatSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { pollUntil } from "./poll.js";
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
  /**
   * Settle (exit code 0) before the child exits, once it is done with the kernel: it is
   * inside close(2) of a netlink socket and has written nothing to stderr. For nf_tables
   * tools after a deleting transaction, that close blocks 10–25 ms: releasing a netfilter
   * netlink socket flushes the kernel's pending destroy work, which waits for an RCU grace
   * period. The child finishes on its own, also after this process is gone; a tool that
   * fails says so on stderr before it closes anything, so a failure still settles at the
   * exit, with its code.
   *
   * A tool may close and reopen its socket before its commit (iptables-nft rebuilding its
   * cache when a concurrent commit changed the ruleset). With `fillerLine`, stdin is padded
   * with that line (a comment, to the tool) well beyond the tool's first read, and the
   * child must also have read all of it: a tool that reads its input line by line and
   * commits at a line (iptables-restore at COMMIT) reads the end only after the commit.
   */
  settleOnNetlinkClose?: { fillerLine?: string };
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

/** Linux open(2) O_TMPFILE (__O_TMPFILE | O_DIRECTORY): an unnamed file, gone when closed. */
const O_TMPFILE = 0o20200000;
/** tmpfs first: the files live for one child's lifetime and never reach a disk. */
const TMP_DIRS = ["/dev/shm", "/run", "/tmp"];
let tmpDir: string | null | undefined;

/** An unnamed read-write file for a child's stdio, or undefined when none can be made here. */
function tmpFd(): number | undefined {
  if (tmpDir === null) return undefined;
  for (const dir of tmpDir !== undefined ? [tmpDir] : TMP_DIRS) {
    try {
      const fd = openSync(dir, O_TMPFILE | constants.O_RDWR, 0o600);
      tmpDir = dir;
      return fd;
    } catch {
      /* next */
    }
  }
  tmpDir = null;
  return undefined;
}

/** The whole file, read by position (the child moved the shared offset to its end). */
function readFd(fd: number): string {
  const size = fstatSync(fd).size;
  if (size === 0) return "";
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.toString("utf8", 0, off);
}

/**
 * A child's stdin, stdout and stderr as unnamed tmpfs files rather than pipes: bun's first
 * spawn with pipes loads its stream machinery (measured 5.0 vs 1.6 ms for the first
 * spawn's synchronous part, ~1 MB RSS), and a tool fed a batch and read after it exits
 * needs no streaming. stdin is written with pwrite, so the child reads it from offset 0.
 */
function fileStdio(stdin: string, filler?: string): { files: [number, number, number]; inputBytes: number } | undefined {
  const fds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const fd = tmpFd();
    if (fd === undefined) {
      for (const f of fds) closeSync(f);
      return undefined;
    }
    fds.push(fd);
  }
  try {
    const input = filler ? padded(stdin, filler, fstatSync(fds[0]!).blksize) : stdin;
    if (input !== "") writeSync(fds[0]!, input, 0);
    return { files: fds as [number, number, number], inputBytes: Buffer.byteLength(input) };
  } catch {
    for (const f of fds) closeSync(f);
    return undefined;
  }
}

/**
 * `stdin`, then `line` repeated past two of the file's blocks (stdio reads a block at a
 * time, st_blksize), so that the end of the input is read only after what precedes it
 * was acted on (RunOptions.settleOnNetlinkClose).
 */
function padded(stdin: string, line: string, blockSize: number): string {
  const need = 2 * Math.max(blockSize || 4096, 4096) + 1;
  return stdin + line.repeat(Math.ceil(need / line.length));
}

/** Which child_process: loaded on first use, so a bun run that spawns with Bun.spawn never loads it. */
let childProcessModule: typeof ChildProcess | undefined;
function childProcess(): typeof ChildProcess {
  return (childProcessModule ??= (process as unknown as { getBuiltinModule(id: string): typeof ChildProcess }).getBuiltinModule("node:child_process"));
}

/** bun's own spawn, when this runs under bun (the shipped executable). */
interface BunSpawn {
  spawn(o: { cmd: string[]; env: Record<string, string>; stdio: number[]; timeout?: number }): { pid: number; exited: Promise<number>; exitCode: number | null; signalCode: string | null };
}
const bun = (globalThis as { Bun?: BunSpawn }).Bun;

/** How a child ended: its exit code, or the signal that ended it. */
interface Ended {
  code: number | null;
  signal: string | null;
}

/** A started child: its pid, and when it ends. */
interface Started {
  pid: number;
  ended: Promise<Ended>;
}

/**
 * Runs argv with the three files as its stdio until it ends. Under bun this is Bun.spawn:
 * node:child_process is then never loaded, and its spawn costs more (measured with three
 * spawns: ~1.2 ms wall and ~2.6 ms CPU more per invocation). A program that cannot be
 * started throws (bun) or rejects `ended` (Node).
 */
function spawnWithFiles(argv: readonly string[], opts: RunOptions, files: readonly number[]): Started {
  const env = opts.env ?? process.env;
  if (bun) {
    const defined = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
    const child = bun.spawn({ cmd: [...argv], env: defined, stdio: [...files], ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}) });
    return { pid: child.pid, ended: child.exited.then(() => ({ code: child.exitCode, signal: child.signalCode })) };
  }
  const child = childProcess().spawn(argv[0]!, argv.slice(1), { env: env as NodeJS.ProcessEnv, stdio: [...files], timeout: opts.timeoutMs });
  const ended = new Promise<Ended>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
  return { pid: child.pid ?? 0, ended };
}

/**
 * Whether `pid` is inside close(2) of a netlink socket — its kernel stack (root only)
 * shows netlink_release, not on the way out of the process (do_exit). Read from
 * /proc/<pid>/stack; false whenever that cannot be read.
 */
function closingNetlinkSocket(pid: number): boolean {
  try {
    const stack = readFileSync(`/proc/${pid}/stack`, "latin1");
    return stack.includes("netlink_release") && !stack.includes("do_exit");
  } catch {
    return false;
  }
}

/** The offset of our descriptor `fd` (shared with the child it was given to as stdin). */
function offsetOf(fd: number): number {
  try {
    return Number(/^pos:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "latin1"))?.[1] ?? -1);
  } catch {
    return -1;
  }
}

/**
 * Resolves once the child is done with the kernel (RunOptions.settleOnNetlinkClose): it
 * is closing a netlink socket, `files[2]` (stderr) is empty and, when `inputBytes` is
 * given, it has read that much of `files[0]`. Never resolves otherwise.
 */
function doneWithKernel(pid: number, files: readonly number[], inputBytes: number | undefined, until: Promise<unknown>): Promise<void> {
  return pollUntil(() => (inputBytes === undefined || offsetOf(files[0]!) === inputBytes) && closingNetlinkSocket(pid) && fstatSync(files[2]!).size === 0, until);
}

export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const filler = opts.settleOnNetlinkClose?.fillerLine || undefined;
  const stdio = fileStdio(opts.stdin ?? "", filler);
  if (!stdio) return runPiped(argv, opts);
  const { files } = stdio;
  const closeAll = (): void => {
    for (const f of files) closeSync(f);
  };
  let started: Started;
  try {
    started = spawnWithFiles(argv, opts, files);
  } catch (e) {
    closeAll();
    return Promise.reject(new CniError(CniCode.Internal, `cannot run ${argv[0]}: ${(e as Error).message}`, `command: ${formatCommand(argv)}`, { cause: e }));
  }
  opts.onStdinWritten?.();
  const inputBytes = filler ? stdio.inputBytes : undefined;
  const ended = opts.settleOnNetlinkClose
    ? Promise.race([started.ended, doneWithKernel(started.pid, files, inputBytes, started.ended).then((): Ended => ({ code: 0, signal: null }))])
    : started.ended;
  return ended.then(
    ({ code, signal }) => {
      let res: RunResult;
      try {
        res = { code: code ?? 128, stdout: readFd(files[1]), stderr: readFd(files[2]) };
      } catch (e) {
        throw new CniError(CniCode.IoFailure, `reading the output of ${argv[0]}: ${(e as Error).message}`, `command: ${formatCommand(argv)}`, { cause: e });
      } finally {
        closeAll();
      }
      if (signal) res.stderr += `\nkilled by ${signal}`;
      if (res.code !== 0 && !opts.allowFailure) throw new CommandFailedError(argv, res.code, res.stderr);
      return res;
    },
    (e: Error) => {
      closeAll();
      throw new CniError(CniCode.Internal, `cannot run ${argv[0]}: ${e.message}`, `command: ${formatCommand(argv)}`, { cause: e });
    },
  );
}

/** The same with pipes, where no unnamed file can be made (no O_TMPFILE, nothing writable). */
function runPiped(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(argv[0]!, argv.slice(1), {
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
