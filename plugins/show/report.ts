/**
 * Facts → report: ties each host-local reservation to its host veth (by alias, else by the
 * libcni cache) and its masquerade state, and lists what no reservation explains. Pure.
 */
import { chainName, networkHash } from "../../pkg/masq/names.js";
import { commentOf, jumpsTo } from "../../pkg/masq/iptables-plan.js";
import { nftPodChain } from "../../pkg/masq/nftables-plan.js";
import { parseNftComment, parseOwnerAlias, parseOwnerComment, type Owner } from "./owners.js";
import type { AttachmentRow, ChainState, HostVeth, LinkFact, Orphan, ReservationFact, ShowFacts, ShowReport } from "./types.js";

export const NOT_TSCNI = "unknown (not made by tscni)";
export const NO_VETH = "none: no host link carries its alias";

interface Group {
  network: string;
  containerId: string;
  ifname: string | null;
  addresses: string[];
}

const key = (net: string, cid: string, ifname: string | null): string => `${net}\0${cid}\0${ifname ?? ""}`;

function groupReservations(rs: readonly ReservationFact[]): Group[] {
  const groups = new Map<string, Group>();
  for (const r of rs) {
    const k = key(r.network, r.containerId, r.ifname ?? null);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { network: r.network, containerId: r.containerId, ifname: r.ifname ?? null, addresses: [] }));
    g.addresses.push(r.ip);
  }
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...groups.values()].sort((a, b) => cmp(a.network, b.network) || cmp(a.containerId, b.containerId) || cmp(a.ifname ?? "", b.ifname ?? ""));
}

/** Does the owner mark on a link (maybe cut short) name this attachment? */
function ownerMatches(o: Owner, g: Group): boolean {
  if (o.network !== g.network) return false;
  if (g.ifname !== null && o.ifname !== g.ifname) return false;
  return o.truncated ? g.containerId.startsWith(o.containerId) : o.containerId === g.containerId;
}

function inScope(f: ShowFacts, network: string): boolean {
  return f.only === undefined || f.only === network;
}

export function buildReport(f: ShowFacts): ShowReport {
  const groups = groupReservations(f.reservations);
  const linkByName = new Map(f.links.map((l) => [l.name, l]));
  const aliased = f.links.flatMap((l) => {
    const o = l.alias ? parseOwnerAlias(l.alias) : undefined;
    return o ? [{ link: l, owner: o }] : [];
  });
  const claimed = new Set<string>();
  const iptSaved = f.iptables.filter((i) => i.saved !== undefined).map((i) => i.saved!);
  const iptLines = iptSaved.flatMap((s) => s.split("\n"));
  const nftChains = new Set(f.nft.chains.map((c) => c.name));
  const orphans: Orphan[] = [];

  const hostVethOf = (g: Group): HostVeth | undefined => {
    const hit = aliased.find((a) => !claimed.has(a.link.name) && ownerMatches(a.owner, g));
    if (hit) return { name: hit.link.name, via: "alias", bridge: hit.link.master ?? null };
    if (g.ifname === null) return undefined;
    const cached = f.cache.find((c) => c.network === g.network && c.containerId === g.containerId && c.ifname === g.ifname);
    for (const name of cached?.hostInterfaces ?? []) {
      const l: LinkFact | undefined = linkByName.get(name);
      if (l && l.veth && !claimed.has(name)) return { name, via: "libcni-cache", bridge: l.master ?? null };
    }
    return undefined;
  };

  const veths = groups.map((g) => {
    const v = hostVethOf(g);
    if (v) claimed.add(v.name);
    return v;
  });
  const unclaimedVeths = f.links
    .filter((l) => l.veth && l.master && !claimed.has(l.name) && !(l.alias && parseOwnerAlias(l.alias)))
    .map((l) => ({ name: l.name, bridge: l.master ?? null }));

  const attachments: AttachmentRow[] = groups.map((g, i) => {
    const veth = veths[i];
    const chain = chainName(g.network, g.containerId);
    const iptState: ChainState = iptSaved.length === 0 ? "unknown" : iptLines.some((l) => l.startsWith(`:${chain} `)) ? "present" : "absent";
    const nftChain = nftPodChain(g.network, g.ifname ?? "", g.containerId);
    const nftState: ChainState = f.nft.state === "table" ? (nftChains.has(nftChain) ? "present" : "absent") : f.nft.state === "no-table" ? "absent" : "unknown";
    const row: AttachmentRow = {
      network: g.network,
      containerId: g.containerId,
      ifname: g.ifname,
      addresses: g.addresses,
      hostVeth: veth ?? null,
      iptables: { chain, state: iptState, postroutingJumps: iptLines.filter((l) => l.startsWith("-A POSTROUTING ") && jumpsTo(l, chain)).length },
      nftables: { chain: nftChain, state: nftState, elements: f.nft.elements.filter((e) => e.target === nftChain).map((e) => e.ip) },
    };
    if (!veth) row.hostVethNote = unclaimedVeths.length > 0 ? NOT_TSCNI : NO_VETH;
    return row;
  });

  // Reservations whose veth is certainly gone: no aliased link, and no unmarked veth that could be it.
  for (const a of attachments) {
    if (a.hostVeth || a.hostVethNote !== NO_VETH) continue;
    orphans.push({
      kind: "reservation",
      network: a.network,
      containerId: a.containerId,
      ifname: a.ifname,
      object: a.addresses.join(","),
      detail: `reserved under ${f.dataDir}/${a.network}, but no host veth carries its alias (and no unmarked veth is on a bridge)`,
    });
  }

  for (const { link, owner } of aliased) {
    if (claimed.has(link.name) || !inScope(f, owner.network)) continue;
    orphans.push({
      kind: "veth",
      network: owner.network,
      containerId: owner.containerId,
      ifname: owner.ifname ?? null,
      object: link.name,
      detail: `host veth${link.master ? ` on ${link.master}` : ""} whose alias names an attachment with no reservation under ${f.dataDir}/${owner.network}`,
    });
  }

  const reserved = new Set(groups.map((g) => `${g.network}\0${g.containerId}`));
  const seenChains = new Set<string>();
  for (const fact of f.iptables) {
    for (const line of fact.saved?.split("\n") ?? []) {
      const m = /^-A (CNI-[0-9a-f]{24}) /.exec(line);
      if (!m || seenChains.has(m[1]!)) continue;
      const comment = commentOf(line);
      const owner = comment === undefined ? undefined : parseOwnerComment(comment);
      if (!owner || chainName(owner.network, owner.containerId) !== m[1]) continue;
      seenChains.add(m[1]!);
      if (!inScope(f, owner.network) || reserved.has(`${owner.network}\0${owner.containerId}`)) continue;
      orphans.push({
        kind: "iptables-chain",
        network: owner.network,
        containerId: owner.containerId,
        ifname: null,
        object: m[1]!,
        detail: `${fact.family === 4 ? "iptables" : "ip6tables"} nat chain whose comment names a container with no reservation under ${f.dataDir}/${owner.network}`,
      });
    }
  }

  const ours = new Set(attachments.map((a) => a.nftables.chain));
  const scopePrefix = f.only === undefined ? "pod-" : `pod-${networkHash(f.only)}-`;
  for (const c of f.nft.chains) {
    if (!c.name.startsWith(scopePrefix) || ours.has(c.name)) continue;
    const owner = c.comment ? parseNftComment(c.comment) : undefined;
    orphans.push({
      kind: "nft-chain",
      network: owner?.network ?? null,
      containerId: owner?.containerId ?? null,
      ifname: owner?.ifname ?? null,
      object: c.name,
      detail: `nft chain in inet tscni_masq whose attachment holds no reservation under ${f.dataDir}${owner ? `/${owner.network}` : ""}`,
    });
  }

  return { dataDir: f.dataDir, networks: f.networks, attachments, orphans, unclaimedVeths, problems: f.problems };
}
