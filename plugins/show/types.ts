/**
 * `tscni show`: what was observed (ShowFacts, gathered by collect.ts) and what it means
 * (ShowReport, computed by report.ts, printed by render.ts). Plain data, JSON-ready.
 */

/** One link of the current netns. */
export interface LinkFact {
  name: string;
  /** IFLA_IFALIAS; tscni's host veths carry `tscni:<net>:<ifname>:<containerId>`. */
  alias?: string;
  /** The bridge (or other master) it is enslaved to. */
  master?: string;
  /** A veth (or, read from sysfs, a bridge port whose peer is another link). */
  veth: boolean;
}

/** One host-local reservation file `<dataDir>/<network>/<ip>`. */
export interface ReservationFact {
  network: string;
  ip: string;
  containerId: string;
  /** Absent in legacy files holding only the container ID. */
  ifname?: string;
}

/** `iptables-save -t nat` of one family; `saved` absent when the tool is missing or failed. */
export interface IptablesFact {
  family: 4 | 6;
  saved?: string;
  error?: string;
}

export interface NftChainFact {
  name: string;
  comment?: string;
}

export interface NftElementFact {
  map: string;
  ip: string;
  /** The chain its verdict jumps to. */
  target: string;
}

/** tscni's nft table `inet tscni_masq`. */
export interface NftFact {
  state: "no-tool" | "no-table" | "table" | "error";
  chains: NftChainFact[];
  elements: NftElementFact[];
  error?: string;
}

/** A libcni cache entry (`<cacheDir>/results/<net>-<id>-<ifname>`): host interfaces of its result. */
export interface CacheFact {
  network: string;
  containerId: string;
  ifname: string;
  hostInterfaces: string[];
}

export interface ShowFacts {
  dataDir: string;
  /** Network directories looked at (the one asked for, or all). */
  networks: string[];
  /** Set when --network narrowed the view: state of other networks is not judged. */
  only?: string;
  reservations: ReservationFact[];
  links: LinkFact[];
  iptables: IptablesFact[];
  nft: NftFact;
  cache: CacheFact[];
  /** Unreadable entries and failed tools, as sentences. */
  problems: string[];
}

export type ChainState = "present" | "absent" | "unknown";

export interface HostVeth {
  name: string;
  /** How it was tied to the attachment. */
  via: "alias" | "libcni-cache";
  bridge: string | null;
}

export interface AttachmentRow {
  network: string;
  containerId: string;
  /** null for a legacy reservation that names no interface. */
  ifname: string | null;
  addresses: string[];
  hostVeth: HostVeth | null;
  /** Why hostVeth is null, e.g. "unknown (not made by tscni)". */
  hostVethNote?: string;
  iptables: { chain: string; state: ChainState; postroutingJumps: number };
  nftables: { chain: string; state: ChainState; elements: string[] };
}

export type OrphanKind = "veth" | "reservation" | "iptables-chain" | "nft-chain";

export interface Orphan {
  kind: OrphanKind;
  network: string | null;
  containerId: string | null;
  ifname: string | null;
  /** The veth name, the address(es), or the chain: what an operator would remove. */
  object: string;
  detail: string;
}

export interface ShowReport {
  dataDir: string;
  networks: string[];
  attachments: AttachmentRow[];
  orphans: Orphan[];
  /** Veths on a bridge without a tscni alias: the reference plugin's, or someone else's. */
  unclaimedVeths: { name: string; bridge: string | null }[];
  problems: string[];
}
