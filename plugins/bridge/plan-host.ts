/**
 * The host side of an ADD as `ip -batch` lines, pure functions of (config, what was
 * observed, the names and MACs chosen). Two batches:
 *  - links (in parallel with an in-process IPAM, before an exec'd one): the veth first,
 *    so an interface already named CNI_IFNAME in the pod fails before anything else
 *    changed; then the bridge (created only when absent), the port; then a show of
 *    the bridge (its kind and MAC);
 *  - gateway, after IPAM, in parallel with the pod side: the gateway address(es) on the
 *    bridge (or its VLAN interface), with a show of the addresses it had before.
 * Show lines print JSON blocks in the order they appear; `shows` says which is which.
 */
import { formatCidr, type Cidr } from "../../pkg/ip.js";
import { line } from "../../pkg/iproute2.js";
import type { BridgeConfig } from "./config.js";
import { broadcast } from "./plan-pod.js";

export interface LinksPlanInput {
  conf: Pick<BridgeConfig, "bridge" | "mtu" | "promiscMode" | "hairpinMode" | "portIsolation" | "vlan" | "vlanTrunk">;
  ifname: string;
  netnsPath: string;
  hostVeth: string;
  hostMac: string;
  podMac: string;
  /** An alias tying the host veth to its owner (DEL without a netns, GC). */
  alias: string;
  /** Absent: create it with `bridgeMac` (pinned, so ports joining never change it). */
  bridgeExists: boolean;
  bridgeMac: string;
  /** Existing bridge whose MAC is still inherited from its ports: pin it (the reference does, with a gateway). */
  pinBridgeMac?: string;
  /** Skip the veth line (a retry after a lost race to create the bridge). */
  vethCreated?: boolean;
}

export type ShowKind = "gateway-addrs-before" | "bridge" | "vlan-gateway";

export interface BatchPlan {
  lines: string[];
  /** The kind of each JSON block printed, in order. */
  shows: ShowKind[];
}

export interface LinksPlan extends BatchPlan {
  /** 1-based line numbers of the steps whose failure means something specific. */
  vethLine: number | undefined;
  bridgeAddLine: number | undefined;
}

export function planLinks(p: LinksPlanInput): LinksPlan {
  const { conf } = p;
  const lines: string[] = [];
  const mtu = conf.mtu > 0 ? ["mtu", conf.mtu] : [];
  const queues = ["numtxqueues", 1, "numrxqueues", 1];
  let vethLine: number | undefined;
  let bridgeAddLine: number | undefined;

  if (!p.vethCreated) {
    lines.push(line("link", "add", p.hostVeth, "address", p.hostMac, ...mtu, ...queues, "type", "veth", "peer", "name", p.ifname, "address", p.podMac, ...mtu, ...queues, "netns", p.netnsPath));
    vethLine = lines.length;
  }
  if (!p.bridgeExists) {
    const filtering = conf.vlan !== 0 || conf.vlanTrunk.length > 0 ? ["vlan_filtering", 1] : [];
    lines.push(line("link", "add", conf.bridge, "address", p.bridgeMac, ...mtu, "type", "bridge", ...filtering));
    bridgeAddLine = lines.length;
  } else if (p.pinBridgeMac) {
    lines.push(line("link", "set", "dev", conf.bridge, "address", p.pinBridgeMac));
  }
  lines.push(line("link", "set", "dev", conf.bridge, ...(conf.promiscMode ? ["promisc", "on"] : []), "up"));
  lines.push(line("link", "set", "dev", p.hostVeth, "alias", p.alias, "master", conf.bridge, "up"));
  if (conf.hairpinMode || conf.portIsolation) {
    lines.push(line("link", "set", "dev", p.hostVeth, "type", "bridge_slave", ...(conf.hairpinMode ? ["hairpin", "on"] : []), ...(conf.portIsolation ? ["isolated", "on"] : [])));
  }
  // `addr show` prints the link too; after a `link show`, ip 6.1's batch drops addr_info.
  lines.push(line("addr", "show", "dev", conf.bridge));
  return { lines, shows: ["bridge"], vethLine, bridgeAddLine };
}

export interface GatewayPlanInput {
  conf: Pick<BridgeConfig, "bridge" | "mtu">;
  gateways: readonly Cidr[];
  /** With vlan: the VLAN gateway interface and whether it exists. */
  vlanGateway?: { name: string; exists: boolean; peer: string; mac: string; peerMac: string };
}

export interface GatewayPlan extends BatchPlan {
  /** 1-based line creating the VLAN gateway pair (a concurrent first ADD may win that race). */
  vlanAddLine?: number;
}

export function planGateway(p: GatewayPlanInput): GatewayPlan {
  const { conf } = p;
  const lines: string[] = [];
  const shows: ShowKind[] = [];
  let vlanAddLine: number | undefined;
  if (p.gateways.length === 0) return { lines, shows };
  const mtu = conf.mtu > 0 ? ["mtu", conf.mtu] : [];
  let target = conf.bridge;
  if (p.vlanGateway) {
    const v = p.vlanGateway;
    target = v.name;
    if (!v.exists) {
      lines.push(line("link", "add", v.name, "address", v.mac, ...mtu, "type", "veth", "peer", "name", v.peer, "address", v.peerMac, ...mtu));
      vlanAddLine = lines.length;
      lines.push(line("link", "set", "dev", v.peer, "master", conf.bridge, "up"));
    }
    lines.push(line("link", "set", "dev", v.name, "up"));
  }
  lines.push(line("addr", "show", "dev", target));
  shows.push("gateway-addrs-before");
  for (const gw of p.gateways) {
    const nodad = gw.ip.family === 6 ? ["nodad"] : [];
    lines.push(line("addr", "replace", formatCidr(gw), ...broadcast(gw), "dev", target, ...nodad));
  }
  if (p.vlanGateway) {
    lines.push(line("addr", "show", "dev", p.vlanGateway.name));
    shows.push("vlan-gateway");
  }
  return { lines, shows, ...(vlanAddLine !== undefined ? { vlanAddLine } : {}) };
}

/** "10-12" style ranges for `bridge vlan add vid`. */
export function vlanRanges(ids: readonly number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    out.push(i === j ? String(ids[i]) : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return out;
}

/**
 * `bridge -batch` lines for the port's VLANs: access port (pvid untagged) or trunk
 * (tagged), dropping the bridge's default VLAN when preserveDefaultVlan is off.
 */
export function planVlan(
  conf: Pick<BridgeConfig, "vlan" | "vlanTrunk" | "preserveDefaultVlan">,
  ports: readonly string[],
  defaultPvid: number,
): string[] {
  if (conf.vlan === 0 && conf.vlanTrunk.length === 0) return [];
  const lines: string[] = [];
  for (const port of ports) {
    if (!conf.preserveDefaultVlan && defaultPvid > 0) lines.push(line("vlan", "del", "dev", port, "vid", defaultPvid, "master"));
    if (conf.vlan !== 0) lines.push(line("vlan", "add", "dev", port, "vid", conf.vlan, "pvid", "untagged", "master"));
    for (const r of vlanRanges(conf.vlanTrunk)) lines.push(line("vlan", "add", "dev", port, "vid", r, "master"));
  }
  return lines;
}
