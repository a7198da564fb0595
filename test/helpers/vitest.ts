// Vitest glue: clean up after every test, fail loudly if cleanup itself failed.
import { afterAll, afterEach } from "vitest";
import { cleanupAll } from "./cleanup.js";

export function autoCleanup(): void {
  const check = (): void => {
    const errors = cleanupAll();
    if (errors.length > 0) throw new Error(`cleanup failed:\n${errors.join("\n")}`);
  };
  afterEach(check);
  afterAll(check);
}
