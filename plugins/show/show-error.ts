/** A failure of `tscni show` itself (bad arguments, unreadable data dir): one line on stderr, exit 1. */
export class ShowError extends Error {
  /** The user typed something wrong: point at --help. */
  readonly usage: boolean;

  constructor(message: string, opts: { usage?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "ShowError";
    this.usage = opts.usage ?? false;
  }
}
