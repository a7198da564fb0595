// Firewall state of a netns, as the kernel holds it.
import { tool } from "./exec.js";
import { mustExecIn } from "./netns.js";

/** `iptables-save [-t table]` inside a netns (IPv4, or IPv6 with v6). */
export function iptablesSave(ns: string, table?: string, v6 = false): string {
  const exe = tool(v6 ? "ip6tables-save" : "iptables-save");
  return mustExecIn(ns, [exe, ...(table === undefined ? [] : ["-t", table])]);
}

/** Chain names declared in an iptables-save dump (":NAME POLICY [..]"). */
export function iptablesChains(dump: string): string[] {
  return dump
    .split("\n")
    .filter((l) => l.startsWith(":"))
    .map((l) => l.slice(1).split(" ")[0] ?? "");
}

/** `nft -j list ruleset` inside a netns, parsed: the `nftables` array. */
export function nftRuleset(ns: string): Record<string, unknown>[] {
  const out = mustExecIn(ns, [tool("nft"), "-j", "list", "ruleset"]).trim();
  if (out === "") return [];
  return (JSON.parse(out) as { nftables: Record<string, unknown>[] }).nftables;
}

/** A sysctl of a netns, e.g. "net.ipv4.ip_forward". */
export function sysctl(ns: string, key: string): string {
  return mustExecIn(ns, [tool("cat"), `/proc/sys/${key.replaceAll(".", "/")}`]).trim();
}

/** conntrack -L inside a netns (text). */
export function conntrackList(ns: string): string {
  return mustExecIn(ns, [tool("conntrack"), "-L"]);
}
