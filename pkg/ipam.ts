/**
 * IPAM delegation (SPEC.md "Delegated plugins"). When the IPAM plugin found first on
 * CNI_PATH is this very executable (a hard link of it, or the file itself), host-local
 * runs in-process: no exec, no second start-up. Any other IPAM plugin is executed with
 * the same environment and stdin, and its result, of any version, is read into the
 * 1.x model.
 */
import { accessSync, constants, statSync } from "node:fs";
import { run } from "./exec.js";
import { CniCode, CniError } from "./types/errors.js";
import type { Command, Invocation } from "./types/netconf.js";
import type { Result } from "./types/result.js";
import type { Handlers } from "./skel.js";
import { toCurrent } from "./version.js";

/** Finds `type` on CNI_PATH, first match wins. */
export function findPlugin(type: string, path: readonly string[]): string | undefined {
  if (type === "" || type.includes("/") || type === "." || type === "..") return undefined;
  for (const dir of path) {
    const p = `${dir}/${type}`;
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function sameFile(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** In-process IPAM implementations, by type. Loaded lazily. */
const BUILTIN: Partial<Record<string, () => Promise<Handlers>>> = {
  "host-local": async () => (await import("../ipam/host-local/plugin.js")).plugin.handlers,
};

/** Pure config checks of in-process implementations, run before anything changes. */
const VALIDATE: Partial<Record<string, (inv: Invocation) => Promise<void>>> = {
  "host-local": async (inv) => {
    (await import("../ipam/host-local/config.js")).loadConfig(inv.config, inv.args);
  },
};

/**
 * Whether the addresses of an in-process host-local ADD's `result` were the attachment's
 * before this ADD (a repeated ADD of a live attachment gets its reservation back). ADD
 * runs IPAM in parallel with the links batch and asks this when the batch finds CNI_IFNAME
 * taken: such a reservation must not be released by the rollback. False for any IPAM that
 * is exec'd (it cannot tell us).
 */
export async function reservedBefore(t: IpamTarget, result: Result): Promise<boolean> {
  if (!t.builtin || t.type !== "host-local") return false;
  return (await import("../ipam/host-local/commands.js")).reservedBefore(result);
}

/**
 * Validates the IPAM configuration without allocating, when the IPAM runs in-process
 * (a plugin we exec can only be asked by running it).
 */
export async function validateIpam(t: IpamTarget, inv: Invocation): Promise<void> {
  if (t.builtin) await VALIDATE[t.type]?.(inv);
}

export interface IpamTarget {
  type: string;
  /** Where it was found on CNI_PATH. */
  path: string;
  /** Set when it runs in-process. */
  builtin?: () => Promise<Handlers>;
}

/** Locates the IPAM plugin; a missing plugin is code 50 (plugin not available). */
export function resolveIpam(type: string, inv: Invocation, self: string = process.execPath): IpamTarget {
  const path = findPlugin(type, inv.path);
  if (!path) {
    throw new CniError(CniCode.PluginNotAvailable, `IPAM plugin "${type}" not found on CNI_PATH`, `CNI_PATH=${inv.path.join(":")}`);
  }
  const builtin = BUILTIN[type];
  if (builtin && sameFile(path, self)) return { type, path, builtin };
  return { type, path };
}

async function execIpam(t: IpamTarget, command: Command, inv: Invocation): Promise<string> {
  const env: Record<string, string | undefined> = { ...process.env, CNI_COMMAND: command };
  const res = await run([t.path], { stdin: inv.stdin, env, allowFailure: true });
  if (res.code !== 0) throw pluginError(t, command, res.stdout, res.stderr, res.code);
  return res.stdout;
}

/** Turns a delegated plugin's error output into a CniError, keeping its code. */
function pluginError(t: IpamTarget, command: Command, stdout: string, stderr: string, exit: number): CniError {
  try {
    const e = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof e.code === "number" && typeof e.msg === "string") {
      return new CniError(e.code, `IPAM ${t.type} ${command}: ${e.msg}`, typeof e.details === "string" ? e.details : undefined);
    }
  } catch {
    /* not JSON */
  }
  const tail = (stderr.trim() || stdout.trim()).split("\n").slice(-3).join("; ");
  return new CniError(CniCode.Internal, `IPAM ${t.type} ${command} failed (exit ${exit})${tail ? `: ${tail}` : ""}`, `plugin: ${t.path}`);
}

/** ADD: the IPAM result in the 1.x model. */
export async function ipamAdd(t: IpamTarget, inv: Invocation): Promise<Result> {
  if (t.builtin) return (await t.builtin()).add(inv);
  const out = await execIpam(t, "ADD", inv);
  let raw: unknown;
  try {
    raw = JSON.parse(out);
  } catch {
    throw new CniError(CniCode.DecodeFailure, `IPAM ${t.type} printed a result that is not JSON`, out.slice(0, 500));
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodeFailure, `IPAM ${t.type} printed a result that is not a JSON object`, out.slice(0, 500));
  }
  const r = raw as Record<string, unknown>;
  return toCurrent(r, typeof r.cniVersion === "string" ? r.cniVersion : inv.config.cniVersion);
}

/** DEL, CHECK, GC, STATUS: success or a CniError. */
export async function ipamCall(t: IpamTarget, command: "DEL" | "CHECK" | "GC" | "STATUS", inv: Invocation): Promise<void> {
  if (t.builtin) {
    const h = await t.builtin();
    const fn = { DEL: h.del, CHECK: h.check, GC: h.gc, STATUS: h.status }[command];
    return fn.call(h, inv);
  }
  await execIpam(t, command, inv);
}
