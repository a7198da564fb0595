import { CniError, asCniError } from "./types/errors.js";

/**
 * Waits for every task; the first failure is thrown with the others' messages in its
 * details, so parallel steps that fail together are all reported.
 */
export async function settleAll(tasks: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(tasks);
  const errors = results.flatMap((r) => (r.status === "rejected" ? [asCniError(r.reason)] : []));
  if (errors.length === 0) return;
  const [first, ...rest] = errors;
  if (rest.length === 0) throw first!;
  throw new CniError(first!.code, first!.message, [first!.details, ...rest.map((e) => e.message)].filter(Boolean).join("\n"));
}
