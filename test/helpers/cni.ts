// Running CNI plugins (directly, or through the libcni driver) inside a node netns.
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CLEAN_PATH } from "./exec.js";
import type { RunResult } from "./exec.js";
import { NAME_PREFIX, createNodeNetns, createTmpDir, execIn, execInAsync } from "./netns.js";
import type { Netns } from "./netns.js";
import { DRIVER_PATH } from "./paths.js";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "GC" | "STATUS";
export type DriverCommand = "add" | "check" | "del" | "gc" | "status";

export interface CniErrorJson {
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

export interface CniRun extends RunResult {
  /** stdout parsed as JSON, if it is JSON. */
  readonly json: unknown;
  /** The CNI error object (plugin: on stdout; driver: on stderr), when the run failed with one. */
  readonly error: CniErrorJson | undefined;
}

export interface PluginInvocation {
  /** Name of the node netns the plugin runs in (never the host). */
  readonly node: string;
  /** Absolute path of the plugin executable. */
  readonly exe: string;
  readonly command: CniCommand;
  /** stdin: an object (JSON-encoded) or raw text. */
  readonly config?: object | string;
  readonly containerId?: string;
  /** CNI_NETNS: a netns path (Netns.path). */
  readonly netns?: string;
  /** CNI_IFNAME; default "eth0" for ADD/DEL/CHECK, null leaves it unset. */
  readonly ifname?: string | null;
  readonly args?: string;
  /** CNI_PATH; default the executable's directory. */
  readonly path?: string;
  /** Extra environment (wins over the above). */
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export interface DriverInvocation {
  readonly node: string;
  readonly command: DriverCommand;
  readonly network: string;
  /** Pod netns path; required for add/check/del. */
  readonly netnsPath?: string;
  readonly confDir: string;
  readonly cniPath: string;
  /** libcni's cache dir (results/); always a temp dir, never /var/lib/cni. */
  readonly cacheDir: string;
  readonly containerId?: string;
  readonly ifname?: string;
  readonly cniArgs?: string;
  readonly capArgs?: Readonly<Record<string, unknown>>;
  readonly validAttachments?: readonly { readonly containerID: string; readonly ifname: string }[];
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

const SAFE_DIR_PREFIX = join(tmpdir(), NAME_PREFIX);

function tryJson(text: string): unknown {
  const t = text.trim();
  if (t === "") return undefined;
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return undefined;
  }
}

function asCniError(v: unknown): CniErrorJson | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  return typeof o["code"] === "number" && typeof o["msg"] === "string" ? (o as unknown as CniErrorJson) : undefined;
}

/**
 * Refuse configs that would write to the host: every host-local IPAM must have a
 * dataDir inside a test temp dir (else it writes /var/lib/cni/networks).
 */
export function assertSafeConfig(conf: unknown): void {
  if (typeof conf !== "object" || conf === null) return;
  const o = conf as Record<string, unknown>;
  const plugins = Array.isArray(o["plugins"]) ? (o["plugins"] as unknown[]) : [o];
  for (const p of plugins) {
    if (typeof p !== "object" || p === null) continue;
    const ipam = (p as Record<string, unknown>)["ipam"];
    if (typeof ipam !== "object" || ipam === null) continue;
    const { type, dataDir } = ipam as Record<string, unknown>;
    if (type === "host-local" && !(typeof dataDir === "string" && dataDir.startsWith(SAFE_DIR_PREFIX))) {
      throw new Error(`unsafe test config: host-local ipam.dataDir must be under ${SAFE_DIR_PREFIX}* (got ${String(dataDir)})`);
    }
  }
}

function pluginStdin(config: object | string | undefined): string {
  if (config === undefined) return "";
  const parsed = typeof config === "string" ? tryJson(config) : config;
  assertSafeConfig(parsed);
  return typeof config === "string" ? config : JSON.stringify(config);
}

function pluginEnv(inv: PluginInvocation): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: CLEAN_PATH, CNI_COMMAND: inv.command, CNI_PATH: inv.path ?? dirname(inv.exe) };
  if (inv.containerId !== undefined) env["CNI_CONTAINERID"] = inv.containerId;
  if (inv.netns !== undefined) env["CNI_NETNS"] = inv.netns;
  const perAttachment = inv.command === "ADD" || inv.command === "DEL" || inv.command === "CHECK";
  const ifname = inv.ifname === undefined ? (perAttachment ? "eth0" : null) : inv.ifname;
  if (ifname !== null) env["CNI_IFNAME"] = ifname;
  if (inv.args !== undefined) env["CNI_ARGS"] = inv.args;
  return { ...env, ...inv.env };
}

function pluginRun(r: RunResult): CniRun {
  const json = tryJson(r.stdout);
  return { ...r, json, error: r.code === 0 ? undefined : asCniError(json) };
}

/** Run a plugin executable inside the node netns with CNI env + stdin. */
export function runPlugin(inv: PluginInvocation): CniRun {
  const input = pluginStdin(inv.config);
  return pluginRun(execIn(inv.node, [inv.exe], { input, env: pluginEnv(inv), timeoutMs: inv.timeoutMs }));
}

export async function runPluginAsync(inv: PluginInvocation): Promise<CniRun> {
  const input = pluginStdin(inv.config);
  return pluginRun(await execInAsync(inv.node, [inv.exe], { input, env: pluginEnv(inv), timeoutMs: inv.timeoutMs }));
}

function driverArgv(inv: DriverInvocation): string[] {
  const perAttachment = inv.command === "add" || inv.command === "check" || inv.command === "del";
  if (perAttachment && inv.netnsPath === undefined) throw new Error(`driver ${inv.command} needs netnsPath`);
  if (!inv.cacheDir.startsWith(SAFE_DIR_PREFIX)) throw new Error(`driver cacheDir must be under ${SAFE_DIR_PREFIX}*`);
  return [DRIVER_PATH, inv.command, inv.network, ...(inv.netnsPath === undefined ? [] : [inv.netnsPath])];
}

function driverEnv(inv: DriverInvocation): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: CLEAN_PATH,
    NETCONFPATH: inv.confDir,
    CNI_PATH: inv.cniPath,
    CNI_CACHE_DIR: inv.cacheDir,
  };
  if (inv.containerId !== undefined) env["CNI_CONTAINERID"] = inv.containerId;
  if (inv.ifname !== undefined) env["CNI_IFNAME"] = inv.ifname;
  if (inv.cniArgs !== undefined) env["CNI_ARGS"] = inv.cniArgs;
  if (inv.capArgs !== undefined) env["CAP_ARGS"] = JSON.stringify(inv.capArgs);
  if (inv.validAttachments !== undefined) env["VALID_ATTACHMENTS"] = JSON.stringify(inv.validAttachments);
  return { ...env, ...inv.env };
}

function driverRun(r: RunResult): CniRun {
  const lastLine = r.stderr.trim().split("\n").pop() ?? "";
  return { ...r, json: tryJson(r.stdout), error: r.code === 0 ? undefined : asCniError(tryJson(lastLine)) };
}

/** Run the libcni driver (cnitool-compatible) inside the node netns. */
export function runDriver(inv: DriverInvocation): CniRun {
  return driverRun(execIn(inv.node, driverArgv(inv), { env: driverEnv(inv), timeoutMs: inv.timeoutMs }));
}

export async function runDriverAsync(inv: DriverInvocation): Promise<CniRun> {
  return driverRun(await execInAsync(inv.node, driverArgv(inv), { env: driverEnv(inv), timeoutMs: inv.timeoutMs }));
}

/** A node netns plus its temp dirs: conf (NETCONFPATH), data (host-local dataDir), cache (libcni). */
export interface CniNode {
  readonly netns: Netns;
  readonly dir: string;
  readonly confDir: string;
  readonly dataDir: string;
  readonly cacheDir: string;
}

export function createCniNode(): CniNode {
  const netns = createNodeNetns();
  const dir = createTmpDir("node");
  const [confDir, dataDir, cacheDir] = ["conf", "data", "cache"].map((d) => join(dir, d)) as [string, string, string];
  for (const d of [confDir, dataDir, cacheDir]) mkdirSync(d, { recursive: true });
  return { netns, dir, confDir, dataDir, cacheDir };
}

/** Write a network config into confDir as <name>.conflist (or .conf without "plugins"); returns its path. */
export function writeNetConf(confDir: string, conf: object, fileName?: string): string {
  assertSafeConfig(conf);
  const o = conf as Record<string, unknown>;
  const name = typeof o["name"] === "string" ? o["name"] : "net";
  const file = join(confDir, fileName ?? `${name}.${"plugins" in o ? "conflist" : "conf"}`);
  writeFileSync(file, JSON.stringify(conf, null, 2));
  return file;
}

export interface BridgeNetOptions {
  readonly name: string;
  readonly cniVersion: string;
  readonly subnet: string;
  readonly dataDir: string;
  readonly bridge?: string;
  readonly isGateway?: boolean;
  readonly ipMasq?: boolean;
  /** Extra keys for the bridge plugin object. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** The seed scenario's conflist: bridge (cni0, gateway, masquerade) + host-local with a default route. */
export function bridgeConflist(o: BridgeNetOptions): Record<string, unknown> {
  return {
    cniVersion: o.cniVersion,
    name: o.name,
    plugins: [
      {
        type: "bridge",
        bridge: o.bridge ?? "cni0",
        isGateway: o.isGateway ?? true,
        ipMasq: o.ipMasq ?? true,
        ...o.extra,
        ipam: {
          type: "host-local",
          dataDir: o.dataDir,
          ranges: [[{ subnet: o.subnet }]],
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
    ],
  };
}
