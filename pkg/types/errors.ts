/** The CNI spec's well-known error codes (SPEC.md "Error"). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  /** libcni's ErrInvalidNetNS (cni ≥ 1.2): CNI_NETNS is not a usable network namespace. */
  InvalidNetns: 8,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  PluginLimitedConnectivity: 51,
  Internal: 999,
} as const;

/** An error that already knows its CNI code; the dispatcher prints it as is. */
export class CniError extends Error {
  readonly code: number;
  readonly details?: string;

  constructor(code: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super(msg, options);
    this.name = "CniError";
    this.code = code;
    if (details !== undefined && details !== "") this.details = details;
  }
}

/** Bad network configuration (code 7). */
export class ConfigError extends CniError {
  constructor(msg: string, details?: string) {
    super(CniCode.InvalidConfig, msg, details);
    this.name = "ConfigError";
  }
}

/** Bad or missing CNI_* environment (code 4). */
export class EnvError extends CniError {
  constructor(msg: string, details?: string) {
    super(CniCode.InvalidEnv, msg, details);
    this.name = "EnvError";
  }
}

/** CNI_NETNS names no network namespace, or the plugin's own (code 8, libcni's ErrInvalidNetNS). */
export class NetnsError extends CniError {
  constructor(msg: string, details?: string) {
    super(CniCode.InvalidNetns, msg, details);
    this.name = "NetnsError";
  }
}

/** Requested version is not one we speak (code 1). */
export class VersionError extends CniError {
  constructor(msg: string, details?: string) {
    super(CniCode.IncompatibleVersion, msg, details);
    this.name = "VersionError";
  }
}

/** Wraps anything thrown that is not a CniError, keeping the original as cause. */
export function asCniError(err: unknown, fallbackCode: number = CniCode.Internal): CniError {
  if (err instanceof CniError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new CniError(fallbackCode, msg, undefined, { cause: err });
}
