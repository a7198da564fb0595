import { CniCode, CniError, EnvError, ConfigError, VersionError, asCniError } from "./types/errors.js";
import type { Command, Invocation, NetConf } from "./types/netconf.js";
import type { Result } from "./types/result.js";
import { LATEST_VERSION, SUPPORTED_VERSIONS, fromCurrent, isSupported, versionAtLeast } from "./version.js";

/** What a plugin implements; the skeleton does env, stdin, versions and printing. */
export interface Handlers {
  add(inv: Invocation): Promise<Result>;
  del(inv: Invocation): Promise<void>;
  check(inv: Invocation): Promise<void>;
  status(inv: Invocation): Promise<void>;
  gc(inv: Invocation): Promise<void>;
}

/** The dispatcher's I/O, passed in so tests never touch `process`. */
export interface PluginIO {
  env: Readonly<Record<string, string | undefined>>;
  /** `skipTerminal`: an interactive terminal reads as empty rather than being waited for. */
  readStdin(opts?: { skipTerminal?: boolean }): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Names that become file names and kernel objects: container IDs and network names. */
export const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Interface names as the kernel and the spec allow them (IFNAMSIZ counts bytes, not characters). */
export function ifnameProblem(name: string): string | undefined {
  if (Buffer.byteLength(name, "utf8") > 15) return "it is longer than 15 bytes";
  if (name === "." || name === "..") return `"${name}" is not a valid name`;
  if (/[/:\s]/.test(name)) return "it contains '/', ':' or whitespace";
  return undefined;
}

interface EnvVar {
  name: string;
  requiredFor: readonly Command[];
  problem?: (value: string) => string | undefined;
}

const ALL: readonly Command[] = ["ADD", "DEL", "CHECK", "STATUS", "GC"];

export const ENV_SPEC: readonly EnvVar[] = [
  { name: "CNI_CONTAINERID", requiredFor: ["ADD", "DEL", "CHECK"], problem: (v) => (ID_PATTERN.test(v) ? undefined : "it must start with a letter or digit and hold only letters, digits, '_', '.' and '-'") },
  { name: "CNI_NETNS", requiredFor: ["ADD", "CHECK"], problem: (v) => (v.startsWith("/") ? undefined : "it must be an absolute path to a network namespace") },
  { name: "CNI_IFNAME", requiredFor: ["ADD", "DEL", "CHECK"], problem: ifnameProblem },
  { name: "CNI_ARGS", requiredFor: [] },
  { name: "CNI_PATH", requiredFor: ALL },
];

/** Minimum spec version per command; ADD and DEL exist since 0.1.0. */
const MIN_VERSION: Partial<Record<Command, string>> = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" };

function parseCommand(env: PluginIO["env"]): Command {
  const c = env.CNI_COMMAND ?? "";
  if (c === "ADD" || c === "DEL" || c === "CHECK" || c === "STATUS" || c === "GC" || c === "VERSION") return c;
  throw new EnvError(`unknown CNI_COMMAND "${c}"`, "expected one of ADD, DEL, CHECK, STATUS, GC, VERSION");
}

/** Validates the env table; all problems are reported in one error (code 4). */
export function parseEnv(command: Command, env: PluginIO["env"]): Omit<Invocation, "stdin" | "config"> {
  const missing: string[] = [];
  const invalid: string[] = [];
  for (const v of ENV_SPEC) {
    const value = env[v.name] ?? "";
    if (value === "") {
      if (v.requiredFor.includes(command)) missing.push(v.name);
      continue;
    }
    const why = v.problem?.(value);
    if (why && (v.requiredFor.includes(command) || command === "DEL")) invalid.push(`${v.name}=${JSON.stringify(value)}: ${why}`);
  }
  if (missing.length) throw new EnvError(`required environment variables missing: ${missing.join(", ")}`);
  if (invalid.length) throw new EnvError(`invalid environment: ${invalid.join("; ")}`);
  return {
    command,
    containerId: env.CNI_CONTAINERID ?? "",
    netns: env.CNI_NETNS ?? "",
    ifname: env.CNI_IFNAME ?? "",
    args: env.CNI_ARGS ?? "",
    path: (env.CNI_PATH ?? "").split(":").filter((p) => p !== ""),
  };
}

/** Parses stdin into a NetConf: decode (6), version (1) and name (7) checks. */
export function parseConfig(command: Command, stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, "the network configuration on stdin is not valid JSON", (err as Error).message);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodeFailure, "the network configuration on stdin must be a JSON object");
  }
  const conf = raw as NetConf;
  if (conf.cniVersion === undefined || conf.cniVersion === "") conf.cniVersion = "0.1.0";
  if (typeof conf.cniVersion !== "string") {
    throw new CniError(CniCode.DecodeFailure, `cniVersion must be a string, not ${JSON.stringify(conf.cniVersion)}`);
  }
  if (!isSupported(conf.cniVersion)) {
    throw new VersionError(`cniVersion ${JSON.stringify(conf.cniVersion)} is not supported`, `config version ${JSON.stringify(conf.cniVersion)}; supported versions: ${SUPPORTED_VERSIONS.join(", ")}`);
  }
  const min = MIN_VERSION[command];
  if (min && !versionAtLeast(conf.cniVersion, min)) {
    throw new VersionError(`${command} needs cniVersion ${min} or later, the config says ${conf.cniVersion}`, `config version ${conf.cniVersion}; supported versions: ${SUPPORTED_VERSIONS.join(", ")}`);
  }
  if (typeof conf.name !== "string" || conf.name === "") throw new ConfigError('the network configuration has no "name"');
  if (!ID_PATTERN.test(conf.name)) {
    throw new ConfigError(`invalid network name ${JSON.stringify(conf.name)}: it must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`);
  }
  return conf;
}

export function aboutLine(about: string): string {
  return `${about}; CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`;
}

function errorJson(err: CniError, cniVersion: string): string {
  const out: Record<string, unknown> = { cniVersion, code: err.code, msg: err.message };
  if (err.details) out.details = err.details;
  return JSON.stringify(out) + "\n";
}

/** Runs one CNI invocation; returns the exit code. */
export async function runPlugin(about: string, handlers: Handlers, io: PluginIO): Promise<number> {
  if (io.env.CNI_COMMAND === undefined || io.env.CNI_COMMAND === "") {
    io.stderr(aboutLine(about));
    return 0;
  }
  let cniVersion: string = LATEST_VERSION;
  try {
    const command = parseCommand(io.env);
    if (command === "VERSION") {
      const text = await io.readStdin({ skipTerminal: true }).catch(() => "");
      let asked: unknown;
      try {
        asked = text.trim() ? (JSON.parse(text) as { cniVersion?: unknown }).cniVersion : undefined;
      } catch {
        asked = undefined;
      }
      // Echo the caller's version only when we speak it (the reference answers its own).
      const v = typeof asked === "string" && isSupported(asked) ? asked : LATEST_VERSION;
      io.stdout(JSON.stringify({ cniVersion: v, supportedVersions: SUPPORTED_VERSIONS }) + "\n");
      return 0;
    }
    const env = parseEnv(command, io.env);
    const stdin = await io.readStdin();
    const config = parseConfig(command, stdin);
    cniVersion = config.cniVersion;
    const inv: Invocation = { ...env, stdin, config };
    switch (command) {
      case "ADD": {
        const result = await handlers.add(inv);
        io.stdout(JSON.stringify(fromCurrent(result, cniVersion)) + "\n");
        return 0;
      }
      case "DEL":
        await handlers.del(inv);
        return 0;
      case "CHECK":
        await handlers.check(inv);
        return 0;
      case "STATUS":
        await handlers.status(inv);
        return 0;
      case "GC":
        await handlers.gc(inv);
        return 0;
    }
  } catch (err) {
    const cni = asCniError(err);
    if (cni.code === CniCode.Internal && err instanceof Error && err.stack) io.stderr(err.stack + "\n");
    io.stdout(errorJson(cni, cniVersion));
    return 1;
  }
}
