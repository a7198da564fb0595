/**
 * What the host looks like, read in-process (no spawn): /proc/net/dev always belongs
 * to this process's network namespace; /sys/class/net only when sysfs was mounted
 * for it (`ip netns exec` does that, plain `nsenter --net` does not), which we check
 * by comparing the two listings before trusting sysfs.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { linkNames } from "../../pkg/iproute2.js";

export interface HostView {
  links: Set<string>;
  /** /sys/class/net shows this namespace. */
  sysfs: boolean;
}

function sameSet(a: Set<string>, b: readonly string[]): boolean {
  return a.size === b.length && b.every((n) => a.has(n));
}

export function observeHost(): HostView {
  for (let attempt = 0; attempt < 2; attempt++) {
    const links = linkNames(readFileSync("/proc/net/dev", "utf8"));
    let sys: string[] = [];
    try {
      sys = readdirSync("/sys/class/net");
    } catch {
      return { links, sysfs: false };
    }
    if (sameSet(links, sys)) return { links, sysfs: true };
  }
  return { links: linkNames(readFileSync("/proc/net/dev", "utf8")), sysfs: false };
}

function sysRead(name: string, attr: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/${attr}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

export interface LinkFacts {
  exists: boolean;
  /** Undefined when it cannot be told without a spawn (sysfs not ours). */
  isBridge?: boolean;
  mac?: string;
  /** addr_assign_type 3: the MAC was set, so joining ports will not change it. */
  macPinned?: boolean;
}

export function linkFacts(view: HostView, name: string): LinkFacts {
  if (!view.links.has(name)) return { exists: false };
  if (!view.sysfs) return { exists: true };
  const mac = sysRead(name, "address");
  return {
    exists: true,
    isBridge: existsSync(`/sys/class/net/${name}/bridge`),
    ...(mac ? { mac } : {}),
    macPinned: sysRead(name, "addr_assign_type") === "3",
  };
}

/** Operstate of a link via sysfs; undefined when sysfs is not ours. */
export function operstate(view: HostView, name: string): string | undefined {
  return view.sysfs ? sysRead(name, "operstate") : undefined;
}

/** Alias of a link via sysfs; undefined when unknown. */
export function ifalias(view: HostView, name: string): string | undefined {
  return view.sysfs ? sysRead(name, "ifalias") : undefined;
}

/** A random locally administered unicast MAC, as the kernel makes them. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** "veth" + 8 hex characters, not already taken. */
export function randomVethName(taken: Set<string>): string {
  for (;;) {
    const n = `veth${randomBytes(4).toString("hex")}`;
    if (!taken.has(n)) return n;
  }
}
