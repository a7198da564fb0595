/**
 * An undo stack: each applied step pushes its inverse; on failure the stack is
 * unwound in reverse order. Every inverse is attempted; failures are collected,
 * never thrown, so the caller can put them in the error's `details`.
 */
export interface UndoStep {
  label: string;
  run(): Promise<void> | void;
}

export class UndoStack {
  private readonly steps: UndoStep[] = [];

  push(label: string, run: () => Promise<void> | void): void {
    this.steps.push({ label, run });
  }

  get size(): number {
    return this.steps.length;
  }

  /** Forget every step: the command succeeded. */
  commit(): void {
    this.steps.length = 0;
  }

  /** Runs the inverses newest first; returns one line per failed inverse. */
  async unwind(): Promise<string[]> {
    const failures: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.run();
      } catch (err) {
        failures.push(`undo ${step.label}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return failures;
  }
}
