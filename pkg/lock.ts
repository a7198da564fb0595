/**
 * A whole-command lock on a file path, with immediate dead-holder detection.
 *
 * Node has no flock. The lock is a file created atomically with its content: the
 * owner record (`pid`, process start time, pid namespace, nonce) is written to a
 * private temp file that is then hard-linked to the lock path (link() fails with
 * EEXIST when the lock is held). A waiter reads the owner record and checks
 * /proc/<pid>/stat: no such process, a zombie, or a different start time (pid
 * reused) means the holder is dead, and its lock is broken at once — a holder
 * killed with SIGKILL blocks the next command for one poll interval, not for a
 * stale timeout. Breaking happens under a short-lived `<lock>.break` directory so
 * two waiters never both break (one could otherwise remove the lock the other
 * just took). When the holder lives in another pid namespace its pid means
 * nothing here, and the lock is considered stale only after `foreignStaleMs`.
 *
 * Why not proper-lockfile: its mkdir lock probes mtime precision by setting the
 * lock's mtime up to 1 s into the future and clamps `stale` to >= 2 s, so a
 * SIGKILLed holder blocks others for 2–3 s; it also installs signal-exit hooks in
 * every process. This file is ~5 syscalls uncontended.
 */
import { linkSync, mkdirSync, readFileSync, readlinkSync, rmdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { CniCode, CniError } from "./types/errors.js";

export interface LockOptions {
  /** Give up (code 11, try again later) after this long. */
  timeoutMs: number;
  /** First poll interval; doubles up to maxPollMs, with jitter. */
  pollMs: number;
  maxPollMs: number;
  /** A lock whose owner cannot be checked (other pid namespace, garbage content) is stale after this. */
  foreignStaleMs: number;
  /** A `.break` directory older than this belongs to a breaker that died. */
  breakStaleMs: number;
  /**
   * Nice value of the holder's thread while it holds the lock, when it had to wait for
   * it (undefined: unchanged).
   * Lowering it needs CAP_SYS_NICE (CNI plugins run as root); without it nothing changes.
   */
  holderNice?: number;
}

export const DEFAULT_LOCK_OPTIONS: LockOptions = {
  timeoutMs: 30_000,
  pollMs: 1,
  maxPollMs: 25,
  foreignStaleMs: 60_000,
  breakStaleMs: 1_000,
  // In a burst (100 ADDs on 2 cores) the holder competes for CPU with every other
  // plugin, and each of its file operations that sleeps (ext4 journal) costs it a trip
  // through a long run queue while everyone else waits for the lock. Boosting it for
  // the ~1-2 ms it holds the lock: lock microbench (100 processes) wall -20-30 %, the
  // longest hold 110-180 -> ~50 ms.
  holderNice: -10,
};

export interface HeldLock {
  readonly path: string;
  /** Removes the lock if it is still ours; never throws. */
  release(): void;
}

interface Owner {
  pid: number;
  start: string;
  pidns: string;
}

let self: { start: string; pidns: string } | undefined;

function procStat(pid: number | "self"): { state: string; start: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", start: fields[19] ?? "" };
}

function selfInfo(): { start: string; pidns: string } {
  if (!self) {
    let pidns = "";
    try {
      pidns = readlinkSync("/proc/self/ns/pid");
    } catch {
      /* no /proc: pid checks fall back to age */
    }
    self = { start: procStat("self")?.start ?? "", pidns };
  }
  return self;
}

function ownerText(nonce: string): string {
  const me = selfInfo();
  return `tscni-lock pid=${process.pid} start=${me.start} pidns=${me.pidns} nonce=${nonce}\n`;
}

export function parseOwner(text: string): Owner | undefined {
  const m = /^tscni-lock pid=(\d+) start=(\S*) pidns=(\S*) nonce=\S+\n?$/.exec(text);
  if (!m) return undefined;
  return { pid: Number(m[1]), start: m[2]!, pidns: m[3]! };
}

/** "alive", "dead", or "unknown" (the pid cannot be judged from here). */
export function ownerState(owner: Owner): "alive" | "dead" | "unknown" {
  const me = selfInfo();
  if (owner.pidns === "" || owner.pidns !== me.pidns) return "unknown";
  if (owner.pid === process.pid) return owner.start === me.start ? "alive" : "dead";
  const st = procStat(owner.pid);
  if (st) {
    if (st.state === "Z" || st.state === "X") return "dead";
    if (owner.start !== "" && st.start !== owner.start) return "dead";
    return "alive";
  }
  try {
    process.kill(owner.pid, 0);
    return "alive";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM" ? "alive" : "dead";
  }
}

function ageMs(path: string): number | undefined {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Removes the lock at `path` if it still holds `seen`; true when something was removed. */
function breakLock(path: string, seen: string, opts: LockOptions): boolean {
  const guard = `${path}.break`;
  try {
    mkdirSync(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const age = ageMs(guard);
    if (age !== undefined && age > opts.breakStaleMs) {
      try {
        rmdirSync(guard);
      } catch {
        /* someone else cleaned it */
      }
    }
    return false;
  }
  try {
    if (readOrUndefined(path) !== seen) return false;
    unlinkSync(path);
    return true;
  } catch {
    return false;
  } finally {
    try {
      rmdirSync(guard);
    } catch {
      /* ignore */
    }
  }
}

/** Why the current holder may be waited for, or undefined when its lock was broken or is gone. */
function checkHolder(path: string, opts: LockOptions): string | undefined {
  const seen = readOrUndefined(path);
  if (seen === undefined) return undefined;
  const owner = parseOwner(seen);
  let stale: boolean;
  if (owner) {
    const state = ownerState(owner);
    stale = state === "dead" || (state === "unknown" && (ageMs(path) ?? 0) > opts.foreignStaleMs);
  } else {
    stale = (ageMs(path) ?? 0) > opts.breakStaleMs * 2;
  }
  if (stale && breakLock(path, seen, opts)) return undefined;
  return owner ? `held by pid ${owner.pid}` : `held by an unknown owner (${JSON.stringify(seen.slice(0, 60))})`;
}

/**
 * Sets this thread's nice value; returns what puts it back. Never throws. node:os is
 * loaded only here: it costs ~0.4 ms of start-up, and only a holder that had to wait
 * (a burst) is boosted.
 */
async function boost(nice: number | undefined): Promise<() => void> {
  if (nice === undefined) return () => {};
  let before: number;
  let os: typeof import("node:os");
  try {
    os = await import("node:os");
    before = os.getPriority();
    if (nice >= before) return () => {};
    os.setPriority(nice);
  } catch {
    return () => {}; // no CAP_SYS_NICE: run as we are
  }
  return () => {
    try {
      os.setPriority(before);
    } catch {
      /* raising one's own nice value is always allowed */
    }
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Takes the lock at `path` (its directory must exist), waiting for a live holder. */
export async function acquireLock(path: string, options: Partial<LockOptions> = {}): Promise<HeldLock> {
  const opts: LockOptions = { ...DEFAULT_LOCK_OPTIONS, ...options };
  const nonce = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
  const text = ownerText(nonce);
  // The temp file exists only around each link() attempt, so a waiter killed while
  // waiting leaves nothing behind.
  const tmp = `${path}.${process.pid}.${nonce}`;
  const deadline = Date.now() + opts.timeoutMs;
  let poll = opts.pollMs;
  let waited = false;
  for (;;) {
    writeFileSync(tmp, text, { mode: 0o644 });
    let linked = false;
    try {
      linkSync(tmp, path);
      linked = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        /* ignore */
      }
    }
    if (linked) break;
    waited = true;
    // Wait until the lock is gone (or broken), polling read-only: a create + link +
    // unlink per poll, times a hundred waiters, is journal traffic that the holder's own
    // creates queue behind (measured: the hold time under a 100-ADD burst was 10-15 ms,
    // of which ~1 ms was work).
    for (;;) {
      const why = checkHolder(path, opts);
      if (why === undefined) break;
      if (Date.now() >= deadline) {
        throw new CniError(CniCode.TryAgainLater, `timed out after ${opts.timeoutMs} ms waiting for the lock ${path}`, why);
      }
      await sleep(poll * (0.5 + Math.random()));
      poll = Math.min(poll * 2, opts.maxPollMs);
    }
  }
  const unboost = waited ? await boost(opts.holderNice) : () => {};
  let released = false;
  return {
    path,
    release(): void {
      if (released) return;
      released = true;
      try {
        if (readFileSync(path, "utf8") === text) unlinkSync(path);
      } catch {
        /* already gone */
      }
      unboost();
    },
  };
}

/** Runs `fn` under the lock at `path`, releasing it however `fn` ends. */
export async function withLock<T>(path: string, fn: () => T | Promise<T>, options: Partial<LockOptions> = {}): Promise<T> {
  const held = await acquireLock(path, options);
  try {
    return await fn();
  } finally {
    held.release();
  }
}
