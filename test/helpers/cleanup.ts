// A LIFO registry of synchronous undo steps; also runs on process exit and SIGINT/SIGTERM.
export type CleanupFn = () => void;

interface Entry {
  readonly label: string;
  readonly fn: CleanupFn;
}

let stack: Entry[] = [];
let hooked = false;

function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    cleanupAll();
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = (): void => {
      cleanupAll();
      process.removeListener(sig, onSignal);
      // Re-raise only if nobody else handles it (vitest may have its own handler).
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Register an undo step; returns a function that unregisters it (without running it). */
export function registerCleanup(label: string, fn: CleanupFn): () => void {
  installExitHooks();
  const entry: Entry = { label, fn };
  stack.push(entry);
  return () => {
    stack = stack.filter((e) => e !== entry);
  };
}

/** Run every registered step, newest first, even if some fail. Returns the failures. */
export function cleanupAll(): string[] {
  const errors: string[] = [];
  while (stack.length > 0) {
    const entry = stack.pop() as Entry;
    try {
      entry.fn();
    } catch (e) {
      errors.push(`${entry.label}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return errors;
}

/** Labels of the steps still pending (for leak assertions). */
export function pendingCleanups(): string[] {
  return stack.map((e) => e.label);
}
