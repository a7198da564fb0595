/**
 * Pure nftables plans (`nft -f -` text). The design, and why:
 *
 *   table inet tscni_masq {
 *     map pods4-<N> { type ipv4_addr : verdict }     # pod address -> jump pod-<N>-<A>
 *     map pods6-<N> { type ipv6_addr : verdict }
 *     chain nat-<N> {                                # one base chain per network
 *       type nat hook postrouting priority srcnat; policy accept; comment "net: <network>"
 *       ip saddr vmap @pods4-<N>
 *       ip6 saddr vmap @pods6-<N>
 *     }
 *     chain pod-<N>-<A> {                            # one regular chain per attachment
 *       comment "net: <network>, if: <ifname>, id: <containerId>"
 *       ip daddr <pod subnet> return                 # and each nonMasqueradeCidr
 *       ip saddr <pod ip> ip daddr != 224.0.0.0/4 masquerade
 *       (the same with ip6 / ff00::/8)
 *     }
 *   }
 *   N = 16 hex of sha512(network), A = 16 hex of sha512("<ifname>:<containerId>").
 *
 * - Flat cost: an ADD is one transaction that declares and flushes the attachment's chain,
 *   adds its rules and one map element per address (nftPodPlan). Only when that fails (first
 *   ADD of a network, or a leftover element) does a second transaction (re)declare the
 *   table, the network's maps and base chain (flushing it and re-adding its two rules).
 *   Packet path: one hash lookup per network, whatever the number of pods.
 * - Ownership without comments: the element's verdict names its owner's chain. nft cannot
 *   delete "this element only if it is mine" (the kernel ignores the data on delete), so
 *   DEL reads the element first (`get element`, flat) and deletes it only when it jumps to
 *   our chain. The chain's masquerade rules match the pod address, so DEL can also learn
 *   the addresses from the chain when the caller no longer knows them.
 * - A base chain per network (not one shared) keeps networks independent: each ADD owns
 *   its network's two base rules, and overlapping pod subnets on two bridges don't fight
 *   over one map.
 * - Per-attachment returns and masquerade, like the reference's per-pod iptables chain
 *   (pod subnet + nonMasqueradeCidrs exempt, multicast never masqueraded).
 */
import { formatCidr, formatIp, subnetOf, type Family } from "../ip.js";
import { familiesOf, MULTICAST } from "./iptables-plan.js";
import { attachmentHash, networkHash } from "./names.js";
import type { MasqTarget } from "./types.js";

export const NFT_TABLE = "tscni_masq";
export const NFT_FAMILY = "inet";
const T = `${NFT_FAMILY} ${NFT_TABLE}`;
/** nft's limit on comment length (NFT_USERDATA_MAXLEN allows more, the tool stops at 128). */
export const NFT_COMMENT_MAX = 128;

const P: Record<Family, string> = { 4: "ip", 6: "ip6" };

export function nftBaseChain(network: string): string {
  return `nat-${networkHash(network)}`;
}

export function nftMap(network: string, family: Family): string {
  return `pods${family}-${networkHash(network)}`;
}

export function nftPodChain(network: string, ifname: string, containerId: string): string {
  return `pod-${networkHash(network)}-${attachmentHash(ifname, containerId)}`;
}

/** nft strings cannot hold a double quote (no escapes): drop them, trim to the limit. */
export function nftComment(s: string): string {
  return s.replace(/["\\\n\r]/g, "").slice(0, NFT_COMMENT_MAX);
}

function podComment(t: Pick<MasqTarget, "network" | "ifname" | "containerId">): string {
  return nftComment(`net: ${t.network}, if: ${t.ifname}, id: ${t.containerId}`);
}

/** The attachment chain's rules, as `nft list chain` prints them. */
export function nftPodRules(t: MasqTarget): string[] {
  const out: string[] = [];
  for (const f of familiesOf(t.addresses)) {
    const mine = t.addresses.filter((a) => a.ip.family === f);
    const exempt = [
      ...mine.map((a) => formatCidr(subnetOf(a))),
      ...t.nonMasqueradeCidrs.filter((n) => n.ip.family === f).map((n) => formatCidr(subnetOf(n))),
    ];
    for (const d of new Set(exempt)) out.push(`${P[f]} daddr ${d} return`);
    for (const a of new Set(mine.map((m) => formatIp(m.ip)))) out.push(`${P[f]} saddr ${a} ${P[f]} daddr != ${MULTICAST[f]} masquerade`);
  }
  return out;
}

/** The network's shared objects, (re)declared idempotently by every ADD. */
export function nftNetworkLines(network: string): string[] {
  const base = nftBaseChain(network);
  return [
    `add table ${T}`,
    `add map ${T} ${nftMap(network, 4)} { type ipv4_addr : verdict; }`,
    `add map ${T} ${nftMap(network, 6)} { type ipv6_addr : verdict; }`,
    `add chain ${T} ${base} { type nat hook postrouting priority srcnat; policy accept; comment "${nftComment(`net: ${network}`)}"; }`,
    `flush chain ${T} ${base}`,
    `add rule ${T} ${base} ip saddr vmap @${nftMap(network, 4)}`,
    `add rule ${T} ${base} ip6 saddr vmap @${nftMap(network, 6)}`,
  ];
}

/**
 * The full ADD transaction: the network's objects, then the attachment's. `replaceElements`:
 * addresses whose map element exists with another owner's verdict (a leftover); they are
 * deleted first so the add cannot fail on them.
 */
export function nftSetupPlan(t: MasqTarget, replaceElements: readonly string[] = []): string {
  return nftNetworkLines(t.network).join("\n") + "\n" + nftPodPlan(t, replaceElements);
}

/**
 * The common ADD transaction: only the attachment's objects. It fails atomically when the
 * table or the network's maps are missing (first ADD of a network), and then the caller
 * runs nftSetupPlan. Touching the base chain costs ~5-7 ms per commit (hook update, rule
 * flush), which the common path avoids.
 */
export function nftPodPlan(t: MasqTarget, replaceElements: readonly string[] = []): string {
  const chain = nftPodChain(t.network, t.ifname, t.containerId);
  const replace = new Set(replaceElements);
  const elements: string[] = [];
  for (const a of t.addresses) {
    const ip = formatIp(a.ip);
    const map = nftMap(t.network, a.ip.family);
    if (replace.has(ip)) elements.push(`delete element ${T} ${map} { ${ip} }`);
    elements.push(`add element ${T} ${map} { ${ip} : jump ${chain} }`);
  }
  return [
    `add chain ${T} ${chain} { comment "${podComment(t)}"; }`,
    `flush chain ${T} ${chain}`,
    ...nftPodRules(t).map((r) => `add rule ${T} ${chain} ${r}`),
    ...elements,
    "",
  ].join("\n");
}

/** Removes map elements (ours, already verified) and attachment chains, in one transaction. */
export function nftTeardownPlan(network: string, ownedElements: readonly string[], chains: readonly string[]): string {
  return [
    ...ownedElements.map((ip) => `delete element ${T} ${nftMap(network, ip.includes(":") ? 6 : 4)} { ${ip} }`),
    ...chains.map((c) => `flush chain ${T} ${c}`),
    ...chains.map((c) => `delete chain ${T} ${c}`),
    "",
  ].join("\n");
}

/**
 * DEL without a read, for the addresses the caller knows (prevResult). nft cannot delete
 * an element "only if it is mine" (the kernel ignores the data on delete), so each delete
 * is preceded by an `add element … : jump <chain>` in the same transaction: adding a key
 * that exists with *other* data fails (EEXIST, "element clash"), aborting the whole
 * transaction, so an element another attachment owns (the address was reassigned and its
 * ADD replaced a leftover element) is never touched; an absent element is added and
 * removed again (no change); ours is kept, then deleted. `delete chain` fails (EBUSY)
 * while any element still jumps to the chain — one prevResult did not name — and a missing
 * chain or table fails the `add element` (ENOENT): every doubtful case aborts, and the
 * caller falls back to reading (nftTeardownPlan after `get element`).
 */
export function nftKnownTeardownPlan(network: string, ips: readonly string[], chain: string): string {
  const map = (ip: string): string => nftMap(network, ip.includes(":") ? 6 : 4);
  return [
    ...ips.map((ip) => `add element ${T} ${map(ip)} { ${ip} : jump ${chain} }`),
    ...ips.map((ip) => `delete element ${T} ${map(ip)} { ${ip} }`),
    `flush chain ${T} ${chain}`,
    `delete chain ${T} ${chain}`,
    "",
  ].join("\n");
}

/** Pod addresses named by `ip saddr X` / `ip6 saddr X` in a listed attachment chain. */
export function addressesInChain(listing: string): string[] {
  return [...new Set([...listing.matchAll(/\bip6? saddr ([0-9a-fA-F:.]+)/g)].map((m) => m[1]!))];
}

/** The verdict target of a `get element` listing, e.g. "pod-…" from `10.0.0.2 : jump pod-…`. */
export function jumpTargetOf(listing: string): string | undefined {
  return /:\s*jump\s+([\w.-]+)/.exec(listing)?.[1];
}
