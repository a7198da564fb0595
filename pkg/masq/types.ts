import type { Cidr } from "../ip.js";

export type MasqBackend = "iptables" | "nftables";

/** One attachment's masquerade: every pod address of (network, containerId, ifname). */
export interface MasqTarget {
  network: string;
  containerId: string;
  ifname: string;
  /** Pod addresses with their subnet prefix, e.g. 10.85.0.5/16; both families allowed. */
  addresses: Cidr[];
  /** Destinations reached without NAT besides the pod's own subnet (bridge `nonMasqueradeCIDRs`). */
  nonMasqueradeCidrs: Cidr[];
}

/** An attachment that GC must keep. */
export interface Attachment {
  containerId: string;
  ifname: string;
}

/** What teardown needs: the owner, and the pod addresses when they are still known. */
export interface MasqRef {
  network: string;
  containerId: string;
  ifname: string;
  /** Unknown (netns gone, no prevResult): teardown finds the state by its owner instead. */
  addresses?: Cidr[];
}

/** The outcome of a CHECK: empty `problems` means present and as planned. */
export interface MasqCheck {
  ok: boolean;
  problems: string[];
}
