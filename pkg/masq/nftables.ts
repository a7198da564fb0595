/**
 * nftables masquerade backend: applies the plans of nftables-plan.ts (the design is
 * described there). One `nft -f -` per ADD; DEL reads one chain and the pod's map elements
 * (all flat), then deletes in one transaction; GC lists our table.
 */
import { readFileSync, statSync } from "node:fs";
import { CommandFailedError, findTool, run, tool, type RunResult } from "../exec.js";
import { CniCode, CniError } from "../types/errors.js";
import { formatIp } from "../ip.js";
import {
  addressesInChain,
  jumpTargetOf,
  NFT_FAMILY,
  NFT_TABLE,
  nftBaseChain,
  nftMap,
  nftPodChain,
  nftPodPlan,
  nftPodRules,
  nftSetupPlan,
  nftKnownTeardownPlan,
  nftTeardownPlan,
} from "./nftables-plan.js";
import { networkHash } from "./names.js";
import type { Attachment, MasqCheck, MasqRef, MasqTarget } from "./types.js";

export * from "./nftables-plan.js";

export function nftAvailable(): boolean {
  return findTool("nft") !== undefined;
}

/**
 * nft reads the kernel's ruleset with netlink dumps (for `list`/`get`, and to fill its
 * cache before a transaction). A dump that races another process's commit is flagged
 * (NLM_F_DUMP_INTR) and nft 1.0.x gives up with "Interrupted system call" instead of
 * restarting it — common in bursts of concurrent ADDs/DELs. Nothing was committed then
 * (the cache is read before the commit is sent), and every transaction tscni sends is
 * idempotent or fails atomically, so the whole call is repeated, a bounded number of times.
 */
export const NFT_TRIES = 5;
const EINTR = /Interrupted system call/;

export function nftInterrupted(r: RunResult): boolean {
  return r.code !== 0 && EINTR.test(r.stderr);
}

export async function retryInterrupted(call: () => Promise<RunResult>, tries = NFT_TRIES): Promise<RunResult> {
  for (let i = 1; ; i++) {
    const r = await call();
    if (!nftInterrupted(r) || i >= tries) return r;
    // A little jitter so that retries of a burst do not meet the same commits again.
    await new Promise((res) => setTimeout(res, Math.random() * 2 * i));
  }
}

/**
 * `deleting`: as for iptables-restore in ./iptables.ts, settle once nft is closing its
 * netlink socket — but only with an nft that opens one socket and closes it after its
 * commit (nftClosesOnlyAtEnd).
 */
async function nft(args: string[], stdin?: string, allowFailure = false, deleting = false): Promise<RunResult> {
  const argv = [tool("nft"), ...args];
  const early = deleting && nftClosesOnlyAtEnd(argv[0]!);
  const r = await retryInterrupted(() => run(argv, { stdin, allowFailure: true, ...(early ? { settleOnNetlinkClose: {} } : {}) }));
  if (r.code !== 0 && !allowFailure) throw new CommandFailedError(argv, r.code, r.stderr);
  return r;
}

const closesOnlyAtEnd = new Map<string, boolean>();

/**
 * Whether the nft at `path` closes its netlink socket only when it is done: nftables
 * 0.9.9 and later (before, it closed and reopened it when a cache dump was interrupted).
 * The version is read from the executable (it holds "1.0.6" as a string of its own); when
 * it cannot be found, no.
 */
export function nftClosesOnlyAtEnd(path: string): boolean {
  const known = closesOnlyAtEnd.get(path);
  if (known !== undefined) return known;
  let v: number[] = [];
  try {
    // nft is a small front end to libnftables (~30 KB); a big static build is not searched.
    const m = statSync(path).size <= 4 << 20 ? /\0(\d+)\.(\d+)\.(\d+)\0/.exec(readFileSync(path, "latin1")) : null;
    if (m) v = m.slice(1, 4).map(Number);
  } catch {
    /* unreadable: no */
  }
  const yes = v.length === 3 && (v[0]! > 0 || v[1]! > 9 || (v[1] === 9 && v[2]! >= 9));
  closesOnlyAtEnd.set(path, yes);
  return yes;
}

const ENOENT = /No such file or directory/;

function mapOf(network: string, ip: string): string {
  return nftMap(network, ip.includes(":") ? 6 : 4);
}

/** The chain a pod address's element jumps to; undefined when there is no element. */
async function elementTarget(network: string, ip: string): Promise<string | undefined> {
  const r = await nft(["get", "element", NFT_FAMILY, NFT_TABLE, mapOf(network, ip), `{ ${ip} }`], undefined, true);
  if (r.code !== 0) {
    if (ENOENT.test(r.stderr)) return undefined;
    throw new CniError(CniCode.Internal, `nft get element ${ip} failed: ${r.stderr.trim()}`);
  }
  return jumpTargetOf(r.stdout);
}

export async function setupNftables(t: MasqTarget): Promise<void> {
  const first = await nft(["-f", "-"], nftPodPlan(t), true);
  if (first.code === 0) return;
  // First ADD of this network (no table/map), or a leftover element of another owner.
  const chain = nftPodChain(t.network, t.ifname, t.containerId);
  const ips = t.addresses.map((a) => formatIp(a.ip));
  const targets = await Promise.all(ips.map((ip) => elementTarget(t.network, ip)));
  const replace = ips.filter((_, i) => targets[i] !== undefined && targets[i] !== chain);
  await nft(["-f", "-"], nftSetupPlan(t, replace));
}

export async function teardownNftables(ref: MasqRef): Promise<void> {
  if (!nftAvailable()) return;
  const chain = nftPodChain(ref.network, ref.ifname, ref.containerId);
  const known = [...new Set((ref.addresses ?? []).map((a) => formatIp(a.ip)))];
  if (known.length) {
    // The common DEL (prevResult names the addresses): no read, one transaction that the
    // kernel commits only when it is safe — see nftKnownTeardownPlan. Anything else (an
    // element of another owner, an address the chain has that prevResult lacks, no
    // chain or table) aborts it whole, and the read below sorts it out.
    const r = await nft(["-f", "-"], nftKnownTeardownPlan(ref.network, known, chain), true, true);
    if (r.code === 0) return;
  }
  // One read: our chain and the elements of the addresses we know.
  const args = ["list", "chain", NFT_FAMILY, NFT_TABLE, chain];
  for (const ip of known) args.push(";", "get", "element", NFT_FAMILY, NFT_TABLE, mapOf(ref.network, ip), `{ ${ip} }`);
  const listed = await nft(args, undefined, true);
  if (!listed.stdout.includes(`chain ${chain} {`)) {
    // No table or no chain: nothing of ours (an element cannot jump to a missing chain).
    if (ENOENT.test(listed.stderr)) return;
    throw new CniError(CniCode.Internal, `nft list chain ${chain} failed: ${listed.stderr.trim()}`);
  }
  const ips = [...new Set([...addressesInChain(listed.stdout), ...known])];
  let owned: string[];
  if (listed.code === 0 && ips.every((ip) => known.includes(ip))) {
    owned = [...listed.stdout.matchAll(/elements = \{ (\S+) : jump ([\w.-]+)/g)].filter((m) => m[2] === chain).map((m) => m[1]!);
  } else {
    const targets = await Promise.all(ips.map((ip) => elementTarget(ref.network, ip)));
    owned = ips.filter((_, i) => targets[i] === chain);
  }
  await nft(["-f", "-"], nftTeardownPlan(ref.network, owned, [chain]), false, true);
}

/** One spawn when all is well: lists the attachment chain, the base chain and each element. */
export async function checkNftables(t: MasqTarget): Promise<MasqCheck> {
  const chain = nftPodChain(t.network, t.ifname, t.containerId);
  const args = ["list", "chain", NFT_FAMILY, NFT_TABLE, chain, ";", "list", "chain", NFT_FAMILY, NFT_TABLE, nftBaseChain(t.network)];
  for (const a of t.addresses) args.push(";", "get", "element", NFT_FAMILY, NFT_TABLE, nftMap(t.network, a.ip.family), `{ ${formatIp(a.ip)} }`);
  const r = await nft(args, undefined, true);
  const problems: string[] = [];
  if (r.code !== 0) {
    problems.push(`nftables: masquerade state of ${chain} incomplete: ${r.stderr.trim().split("\n")[0]}`);
    return { ok: false, problems };
  }
  const podBlock = r.stdout.split(`chain ${chain} {`)[1]?.split("}")[0] ?? "";
  const have = podBlock.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("comment "));
  const want = nftPodRules(t);
  if (have.join("\n") !== want.join("\n")) problems.push(`nftables: chain ${chain} differs: want [${want.join("; ")}], have [${have.join("; ")}]`);
  for (const m of r.stdout.matchAll(/elements = \{ (\S+) : jump ([\w.-]+)/g)) {
    if (m[2] !== chain) problems.push(`nftables: element ${m[1]} jumps to ${m[2]}, not ${chain}`);
  }
  if (!/ip saddr vmap @/.test(r.stdout)) problems.push(`nftables: base chain ${nftBaseChain(t.network)} has no map lookup`);
  return { ok: problems.length === 0, problems };
}

interface NftJson {
  nftables: Array<{ chain?: { name: string }; map?: { name: string; elem?: Array<[unknown, { jump?: { target: string } }]> } }>;
}

/** GC plan from `nft -j list table inet tscni_masq`; undefined when nothing is stale. Pure. */
export function nftGcPlan(listing: NftJson, network: string, keep: readonly Attachment[]): string | undefined {
  const prefix = `pod-${networkHash(network)}-`;
  const kept = new Set(keep.map((a) => nftPodChain(network, a.ifname, a.containerId)));
  const stale = new Set(listing.nftables.flatMap((o) => (o.chain && o.chain.name.startsWith(prefix) && !kept.has(o.chain.name) ? [o.chain.name] : [])));
  if (stale.size === 0) return undefined;
  const maps = new Set([nftMap(network, 4), nftMap(network, 6)]);
  const elements: string[] = [];
  for (const o of listing.nftables) {
    if (!o.map || !maps.has(o.map.name)) continue;
    for (const [key, verdict] of o.map.elem ?? []) {
      if (typeof key === "string" && verdict?.jump && stale.has(verdict.jump.target)) elements.push(key);
    }
  }
  return nftTeardownPlan(network, elements, [...stale]);
}

export async function gcNftables(network: string, keep: readonly Attachment[]): Promise<void> {
  if (!nftAvailable()) return;
  const r = await nft(["-j", "list", "table", NFT_FAMILY, NFT_TABLE], undefined, true);
  if (r.code !== 0) {
    if (ENOENT.test(r.stderr)) return;
    throw new CniError(CniCode.Internal, `nft list table ${NFT_TABLE} failed: ${r.stderr.trim()}`);
  }
  const plan = nftGcPlan(JSON.parse(r.stdout) as NftJson, network, keep);
  if (plan) await nft(["-f", "-"], plan);
}
