import { readFileSync, writeFileSync } from "node:fs";
import type { Family } from "./ip.js";

/**
 * Sysctl keys as path segments, never as dotted strings: interface names may hold
 * dots (VLAN devices such as "cni0.10"), and `/proc/sys` paths need no escaping.
 * Keys under net/ are per network namespace: in-process reads and writes act on the
 * namespace this process is in; keys of another namespace are written through the
 * pod-side shell (plugins/bridge/plan-pod.ts).
 */
export type SysctlKey = readonly string[];

export const PROC_SYS = "/proc/sys";

/** "net/ipv4/ip_forward" for ["net","ipv4","ip_forward"]. */
export function keyPath(key: SysctlKey): string {
  for (const s of key) {
    if (s === "" || s === "." || s === ".." || s.includes("/")) throw new Error(`invalid sysctl key segment ${JSON.stringify(s)}`);
  }
  return key.join("/");
}

export function procPath(key: SysctlKey): string {
  return `${PROC_SYS}/${keyPath(key)}`;
}

/** Per-interface IPv4/IPv6 settings: net/ipv{4,6}/conf/<ifname>/<name>. */
export function ifKey(family: Family, ifname: string, name: string): SysctlKey {
  return ["net", family === 4 ? "ipv4" : "ipv6", "conf", ifname, name];
}

export const IPV4_FORWARD: SysctlKey = ["net", "ipv4", "ip_forward"];
export const IPV6_FORWARD: SysctlKey = ["net", "ipv6", "conf", "all", "forwarding"];

/** The current value, trimmed; undefined when the key does not exist (e.g. IPv6 disabled). */
export function readSysctl(key: SysctlKey): string | undefined {
  try {
    return readFileSync(procPath(key), "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Sets a key in the current namespace, writing only when the value differs.
 * Returns false when the key does not exist; other failures throw with the key named.
 */
export function writeSysctl(key: SysctlKey, value: string): boolean {
  let current: string | undefined;
  try {
    current = readSysctl(key);
  } catch (err) {
    throw new Error(`cannot read sysctl ${keyPath(key)}: ${(err as Error).message}`, { cause: err });
  }
  if (current === undefined) return false;
  if (current === value) return true;
  try {
    writeFileSync(procPath(key), value);
  } catch (err) {
    throw new Error(`cannot set sysctl ${keyPath(key)}=${value}: ${(err as Error).message}`, { cause: err });
  }
  return true;
}
