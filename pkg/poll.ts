/**
 * Resolves once `check()` is true; never resolves if `until` settles first (polling stops
 * then). Checks every millisecond for the first `fastForMs` — where a lone command finds
 * what it waits for — then backs off to every `slowMs`: in a burst of a hundred commands
 * the same waits last seconds, and a 1 ms poll each would cost more CPU than the work.
 */
export function pollUntil(check: () => boolean, until: Promise<unknown>, fastForMs = 30, slowMs = 15): Promise<void> {
  let done = false;
  void until.then(
    () => (done = true),
    () => (done = true),
  );
  const start = performance.now();
  return new Promise((resolve) => {
    const poll = (): void => {
      if (done) return;
      if (check()) return resolve();
      const waited = performance.now() - start;
      setTimeout(poll, waited < fastForMs ? 1 : Math.min(slowMs, 1 + (waited - fastForMs) / 4));
    };
    poll();
  });
}
