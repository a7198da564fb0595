/**
 * The opt-in `logFile`: one JSON line per invocation (command, container, the duration
 * of each step, this process's CPU time, outcome). Steps are timed whether or not a log
 * is kept; it costs a clock read.
 */
import { appendFileSync } from "node:fs";
import { asCniError } from "../../pkg/types/errors.js";

/** CPU time of this process so far (user + system, all threads), in ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export class StepLog {
  private readonly start = performance.now();
  private readonly cpuStart = cpuMs();
  private readonly steps: Record<string, number> = {};
  readonly notes: string[] = [];

  /** Times an async step under `name`. */
  async step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const t = performance.now();
    try {
      return await fn();
    } finally {
      this.steps[name] = round(performance.now() - t);
    }
  }

  note(text: string): void {
    if (text.trim() !== "") this.notes.push(text.trim());
  }

  /** The log record; `err` undefined means success. */
  record(fields: Record<string, unknown>, err?: unknown): Record<string, unknown> {
    const outcome = err === undefined ? "ok" : (() => {
      const e = asCniError(err);
      return { code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) };
    })();
    return {
      time: new Date().toISOString(),
      ...fields,
      durationMs: round(performance.now() - this.start),
      // This process's CPU (children not included): before the handler (runtime start-up,
      // loading, stdin) and in it. On 2 cores it competes with the tools it spawned.
      cpuMs: { startup: round(this.cpuStart), handler: round(cpuMs() - this.cpuStart) },
      steps: this.steps,
      ...(this.notes.length ? { notes: this.notes } : {}),
      outcome,
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Appends one line; a log that cannot be written never fails the command (stderr says why). */
export function writeLog(file: string | undefined, record: Record<string, unknown>): void {
  if (!file) return;
  try {
    appendFileSync(file, JSON.stringify(record) + "\n", { mode: 0o640 });
  } catch (err) {
    process.stderr.write(`tscni bridge: cannot write logFile ${file}: ${(err as Error).message}\n`);
  }
}
