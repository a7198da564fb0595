import { read } from "node:fs";
import { CniCode, CniError } from "./types/errors.js";

/** A network config is a few KiB; a prevResult of a big pod a few more. */
export const STDIN_LIMIT_BYTES = 1 << 20;
/** A runtime that never closes stdin must not hang the plugin forever. */
export const STDIN_TIMEOUT_MS = 10_000;

/**
 * Reads fd 0 to its end, refusing more than `limit` bytes (code 5) or waiting longer
 * than `timeoutMs` for the end (code 5). Uses fs.read, not process.stdin, to keep
 * the stream machinery off the start-up path.
 */
export function readStdin(fd = 0, limit = STDIN_LIMIT_BYTES, timeoutMs = STDIN_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const timer = setTimeout(() => {
      finish(new CniError(CniCode.IoFailure, `stdin did not end within ${timeoutMs / 1000} s`, "the runtime must write the network configuration to stdin and close it"));
    }, timeoutMs);
    timer.unref?.();
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString("utf8"));
    };
    const step = (): void => {
      const buf = Buffer.allocUnsafe(65536);
      read(fd, buf, 0, buf.length, null, (err, n) => {
        if (done) return;
        if (err) {
          if ((err as NodeJS.ErrnoException).code === "EAGAIN") return void setTimeout(step, 1);
          if ((err as NodeJS.ErrnoException).code === "EOF") return finish();
          return finish(new CniError(CniCode.IoFailure, `reading stdin: ${err.message}`));
        }
        if (n === 0) return finish();
        total += n;
        if (total > limit) {
          return finish(new CniError(CniCode.IoFailure, `stdin is larger than ${limit} bytes`, "a network configuration is expected on stdin"));
        }
        chunks.push(buf.subarray(0, n));
        step();
      });
    };
    step();
  });
}
