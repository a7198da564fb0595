/**
 * The host side of an ADD as `ip -batch` lines, a pure function of (config, what was
 * observed, the names and MACs chosen). Order matters: the veth comes first, so an
 * interface already named CNI_IFNAME in the pod fails the batch before anything else
 * changed; then the bridge (created only when it was absent), the port, the gateway.
 * Show lines print JSON blocks in the order they appear; `shows` says which is which.
 */
import { formatCidr, type Cidr } from "../../pkg/ip.js";
import { line } from "../../pkg/iproute2.js";
import type { BridgeConfig } from "./config.js";

export interface HostPlanInput {
  conf: Pick<BridgeConfig, "bridge" | "mtu" | "promiscMode" | "hairpinMode" | "portIsolation" | "vlan" | "vlanTrunk" | "enabledad">;
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
  /** Gateway addresses for the bridge (or its VLAN interface). */
  gateways: readonly Cidr[];
  /** With vlan and a gateway: the VLAN gateway interface and whether it exists. */
  vlanGateway?: { name: string; exists: boolean; peer: string; mac: string; peerMac: string };
}

export type ShowKind = "gateway-addrs-before" | "bridge" | "vlan-gateway";

export interface HostPlan {
  lines: string[];
  /** The kind of each JSON block printed, in order. */
  shows: ShowKind[];
  /** 1-based line numbers of the steps whose failure means something specific. */
  vethLine: number | undefined;
  bridgeAddLine: number | undefined;
}

export function planHost(p: HostPlanInput): HostPlan {
  const { conf } = p;
  const lines: string[] = [];
  const shows: ShowKind[] = [];
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

  let target = conf.bridge;
  if (p.gateways.length > 0 && p.vlanGateway) {
    const v = p.vlanGateway;
    target = v.name;
    if (!v.exists) {
      lines.push(line("link", "add", v.name, "address", v.mac, ...mtu, "type", "veth", "peer", "name", v.peer, "address", v.peerMac, ...mtu));
      lines.push(line("link", "set", "dev", v.peer, "master", conf.bridge, "up"));
    }
    lines.push(line("link", "set", "dev", v.name, "up"));
  }
  if (p.gateways.length > 0) {
    lines.push(line("addr", "show", "dev", target));
    shows.push("gateway-addrs-before");
    for (const gw of p.gateways) {
      const nodad = gw.ip.family === 6 ? ["nodad"] : [];
      lines.push(line("addr", "replace", formatCidr(gw), "dev", target, ...nodad));
    }
  }
  // `addr show` prints the link too; after a `link show`, ip 6.1's batch drops addr_info.
  lines.push(line("addr", "show", "dev", conf.bridge));
  shows.push("bridge");
  if (p.gateways.length > 0 && p.vlanGateway) {
    lines.push(line("addr", "show", "dev", p.vlanGateway.name));
    shows.push("vlan-gateway");
  }
  return { lines, shows, vethLine, bridgeAddLine };
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
