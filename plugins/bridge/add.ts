/**
 * ADD: validate → (host links batch ∥ in-process IPAM) → host sysctls → (gateway batch ∥
 * pod batch ∥ masquerade ∥ spoof check ∥ VLANs) → result. Every applied step pushes its
 * inverse; a failure unwinds them in reverse and reports undo failures in `details`. The
 * bridge itself, once created, is kept (other pods may be joining it), as the reference
 * does. Nothing here reads a listing that grows with the pods on the node.
 */
import { formatCidr, formatIp, parseCidr, subnetOf, type Cidr } from "../../pkg/ip.js";
import { BatchFailedError, isExists, parseJsonStream, runBatch, type IpAddrInfo, type IpLink } from "../../pkg/iproute2.js";
import { ipamAdd, ipamCall, reservedBefore, resolveIpam, validateIpam, type IpamTarget } from "../../pkg/ipam.js";
import { detectBackend, setupMasq, teardownMasq } from "../../pkg/masq/index.js";
import { requireNetns } from "../../pkg/netns.js";
import { ifKey, IPV4_FORWARD, IPV6_FORWARD, writeSysctl } from "../../pkg/sysctl.js";
import { tool } from "../../pkg/exec.js";
import { CniCode, CniError, ConfigError, asCniError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import type { CniInterface, Result } from "../../pkg/types/result.js";
import { settleAll } from "../../pkg/settle.js";
import { UndoStack } from "../../pkg/undo.js";
import { applyPodOrThrow, applyVlan, deleteAddrs, deleteHostLink, replaceAddrs } from "./apply.js";
import { parseBridgeConfig, type BridgeConfig } from "./config.js";
import { computeAddressing, type Addressing } from "./gateways.js";
import type { StepLog } from "./log.js";
import { gatewaysInPlace, linkExists, linkFactsHere, operstate, randomMac, randomVethName, sysfsShows, type LinkFacts } from "./observe.js";
import { planGateway, planLinks, planVlan, type LinksPlanInput, type ShowKind } from "./plan-host.js";
import { planPod } from "./plan-pod.js";
import { setupSpoofcheck, spoofId, teardownSpoofcheck } from "./spoofcheck.js";

/** Ties a host veth to its attachment, for DEL without a netns and for GC. */
export function ownerAlias(network: string, containerId: string, ifname: string): string {
  return `tscni:${network}:${ifname}:${containerId}`.slice(0, 255);
}

interface Prepared {
  conf: BridgeConfig;
  bridge: LinkFacts;
  ipam: IpamTarget | undefined;
}

/** Everything that can be checked without changing anything. O(1) in the number of links on the node. */
function prepare(inv: Invocation): Prepared {
  const conf = parseBridgeConfig(inv);
  if (conf.vlan > 0 && `${conf.bridge}.${conf.vlan}`.length > 15) {
    throw new ConfigError(`bridge name "${conf.bridge}" is too long for its VLAN gateway interface "${conf.bridge}.${conf.vlan}"`);
  }
  requireNetns(inv.netns);
  const bridge = linkFactsHere(conf.bridge);
  if (bridge.exists && bridge.isBridge === false) throw new CniError(CniCode.Internal, `"${conf.bridge}" already exists but is not a bridge`);
  tool("ip");
  if (conf.ipam) tool("nsenter");
  if (conf.vlan || conf.vlanTrunk.length) tool("bridge");
  if (conf.macspoofchk) tool("nft");
  if (conf.ipMasq) tool((conf.ipMasqBackend ?? detectBackend()) === "nftables" ? "nft" : "iptables-restore");
  const ipam = conf.ipam ? resolveIpam(conf.ipam.type, inv) : undefined;
  return { conf, bridge, ipam };
}

/** The links batch found CNI_IFNAME taken in the pod. */
class IfnameTakenError extends CniError {}

export async function cmdAdd(inv: Invocation, log: StepLog): Promise<Result> {
  const p = await log.step("prepare", async () => {
    const prepared = prepare(inv);
    if (prepared.ipam) await validateIpam(prepared.ipam, inv);
    return prepared;
  });
  const undo = new UndoStack();
  try {
    const result = await addSteps(inv, p, undo, log);
    undo.commit();
    return result;
  } catch (err) {
    const failures = await log.step("undo", () => undo.unwind());
    const e = asCniError(err);
    if (failures.length === 0) throw e;
    throw new CniError(e.code, e.message, [e.details, ...failures].filter(Boolean).join("\n"), { cause: err });
  }
}

async function addSteps(inv: Invocation, p: Prepared, undo: UndoStack, log: StepLog): Promise<Result> {
  const { conf } = p;
  const br = p.bridge;
  const hostVeth = randomVethName();
  const podMac = conf.mac ?? randomMac();
  const links: LinksPlanInput = {
    conf,
    ifname: inv.ifname,
    netnsPath: inv.netns,
    hostVeth,
    hostMac: randomMac(),
    podMac,
    alias: ownerAlias(conf.name, inv.containerId, inv.ifname),
    bridgeExists: br.exists,
    bridgeMac: randomMac(),
    ...(br.exists && conf.isGateway && br.mac && br.macPinned === false ? { pinBridgeMac: br.mac } : {}),
  };

  // The links batch and an in-process IPAM run in parallel (they are independent). A taken
  // CNI_IFNAME fails the batch; the rollback then releases the address only if this ADD
  // reserved it (a repeated ADD of a live attachment gets its existing address back).
  // An IPAM plugin we exec keeps the reference's order: links first, then IPAM.
  const ipamTarget = p.ipam;
  let inputWritten: () => void = () => {};
  const linksInput = new Promise<void>((r) => (inputWritten = r));
  const linksP = log.step("host", () => applyLinks(links, undo, inputWritten));
  const parallelIpam = ipamTarget?.builtin !== undefined;
  // IPAM starts once the batch is in ip's stdin: the pipe write is asynchronous (bun and
  // Node alike) and in-process IPAM blocks the event loop — without this wait ip sat idle
  // until IPAM was done (the host batch took 12–22 ms instead of 5, strace).
  if (parallelIpam) await Promise.race([linksInput, linksP.then(() => undefined, () => undefined)]);
  const ipamP = ipamTarget && parallelIpam ? log.step("ipam", () => ipamAdd(ipamTarget, inv)) : Promise.resolve(undefined);
  const [linksR, ipamR] = await Promise.allSettled([linksP, ipamP]);
  let res: Result | undefined = ipamR.status === "fulfilled" ? ipamR.value : undefined;
  if (ipamTarget && res) {
    const keep = linksR.status === "rejected" && linksR.reason instanceof IfnameTakenError && (await reservedBefore(ipamTarget, res));
    if (!keep) undo.push("IPAM reservation", () => ipamCall(ipamTarget, "DEL", inv));
  }
  if (linksR.status === "rejected") throw linksR.reason;
  if (ipamR.status === "rejected") throw ipamR.reason;
  const bridgeLink = linksR.value;
  if (bridgeLink.linkinfo && bridgeLink.linkinfo.info_kind !== "bridge") {
    throw new CniError(CniCode.Internal, `"${conf.bridge}" already exists but is not a bridge (it is a ${bridgeLink.linkinfo.info_kind ?? "device of unknown kind"})`);
  }

  let addressing: Addressing = { ips: [], routes: [], addresses: [], gateways: [] };
  let dns = conf.dns;
  if (ipamTarget) {
    if (!parallelIpam) {
      res = await log.step("ipam", () => ipamAdd(ipamTarget, inv));
      undo.push("IPAM reservation", () => ipamCall(ipamTarget, "DEL", inv));
    }
    if (!res?.ips || res.ips.length === 0) throw new CniError(CniCode.Internal, `IPAM plugin "${ipamTarget.type}" returned no IP configuration`);
    addressing = computeAddressing(res, conf);
    dns ??= res.dns;
  }

  await log.step("host-sysctl", () => hostSysctls(conf, addressing.gateways));

  const vlanName = `${conf.bridge}.${conf.vlan}`;
  const vlanGateway =
    conf.vlan > 0 && addressing.gateways.length > 0
      ? { name: vlanName, exists: linkExists(vlanName), peer: randomVethName((n) => n === hostVeth || linkExists(n)), mac: randomMac(), peerMac: randomMac() }
      : undefined;
  const gwDev = vlanGateway ? vlanGateway.name : conf.bridge;
  let vlanLink: IpLink | undefined;
  const gateway = addressing.gateways.length && !(vlanGateway === undefined && gatewaysInPlace(conf.bridge, addressing.gateways.map(gatewayKey)))
    ? log.step("gateway", async () => {
        let gwPlan = planGateway({ conf, gateways: addressing.gateways, ...(vlanGateway ? { vlanGateway } : {}) });
        let r = await runBatch(gwPlan.lines, { json: true, details: true });
        if (!r.ok && vlanGateway && r.failedLine !== undefined && r.failedLine === gwPlan.vlanAddLine && isExists(r.stderr)) {
          // A concurrent first ADD created <bridge>.<vlan> (and its peer) first: use theirs.
          vlanGateway.exists = true;
          gwPlan = planGateway({ conf, gateways: addressing.gateways, vlanGateway });
          r = await runBatch(gwPlan.lines, { json: true, details: true });
        }
        if (!r.ok) throw new BatchFailedError(`putting the gateway on ${gwDev} failed`, r, gwPlan.lines);
        const blocks = showBlocks(gwPlan.shows, r.stdout);
        vlanLink = blocks.get("vlan-gateway")?.[0] as IpLink | undefined;
        const before = ((blocks.get("gateway-addrs-before")?.[0] as IpLink | undefined)?.addr_info ?? []) as IpAddrInfo[];
        await reconcileGateway(conf, gwDev, addressing.gateways, before, undo);
      })
    : Promise.resolve();

  const podPlan = planPod({
    ifname: inv.ifname,
    addresses: addressing.addresses,
    ips: addressing.ips,
    routes: addressing.routes,
    enabledad: conf.enabledad,
    linkDown: conf.disableContainerInterface,
  });
  const tasks: Promise<unknown>[] = [gateway];
  if (podPlan.lines.length) tasks.push(log.step("pod", async () => log.note(await applyPodOrThrow(inv.netns, podPlan))));
  if (conf.ipMasq && addressing.addresses.length > 0) {
    const backend = conf.ipMasqBackend ?? detectBackend();
    const target = { network: conf.name, containerId: inv.containerId, ifname: inv.ifname, addresses: addressing.addresses, nonMasqueradeCidrs: conf.nonMasqueradeCidrs };
    undo.push("masquerade", () => teardownMasq(target, backend));
    tasks.push(log.step("masq", () => setupMasq(backend, target)));
  }
  if (conf.macspoofchk) {
    const id = spoofId(inv.containerId, inv.ifname);
    undo.push("spoof check", () => teardownSpoofcheck(id));
    tasks.push(log.step("spoofcheck", () => setupSpoofcheck(id, hostVeth, podMac)));
  }
  if (conf.vlan > 0 || conf.vlanTrunk.length > 0) {
    const pvid = Number(bridgeLink.linkinfo?.info_data?.vlan_default_pvid ?? 1);
    // The VLAN gateway's peer is created by the gateway batch (unless another ADD made it first).
    const ports = (): string[] => [hostVeth, ...(vlanGateway && !vlanGateway.exists ? [vlanGateway.peer] : [])];
    // Only after the gateway batch; when that failed, its own task reports it (once).
    tasks.push(gateway.then(() => log.step("vlan", () => applyVlan(planVlan(conf, ports(), pvid))), () => undefined));
  }
  await settleAll(tasks);

  if (!conf.disableContainerInterface) await log.step("port-up", () => waitPortUp(sysfsShows(conf.bridge, bridgeLink.ifindex), hostVeth));

  const interfaces: CniInterface[] = [
    { name: conf.bridge, mac: bridgeLink.address ?? "" },
    { name: hostVeth, mac: links.hostMac },
    { name: inv.ifname, mac: podMac, sandbox: inv.netns },
  ];
  if (vlanLink) interfaces.push({ name: vlanLink.ifname, mac: vlanLink.address ?? "" });
  const result: Result = { cniVersion: "1.1.0", interfaces };
  if (p.ipam) {
    result.ips = addressing.ips;
    result.routes = addressing.routes;
  }
  if (dns) result.dns = dns;
  return result;
}

/** The forms observe.ts compares with /proc. */
function gatewayKey(g: Cidr): { v4?: string; v4Subnet?: string; v6?: string } {
  if (g.ip.family === 4) return { v4: formatIp(g.ip), v4Subnet: formatCidr(subnetOf(g)) };
  const hex = g.ip.value.toString(16).padStart(32, "0");
  return { v6: `${hex.match(/.{4}/g)!.join(":")}/${g.prefix}` };
}

function showBlocks(shows: readonly ShowKind[], stdout: string): Map<ShowKind, unknown[]> {
  const shown = parseJsonStream(stdout);
  const blocks = new Map<ShowKind, unknown[]>();
  shows.forEach((kind, i) => blocks.set(kind, shown[i] ?? []));
  return blocks;
}

/** Runs the links batch; retries once without the bridge creation when another ADD created it first. */
async function applyLinks(input: LinksPlanInput, undo: UndoStack, onInput?: () => void): Promise<IpLink> {
  let plan = planLinks(input);
  let r = await runBatch(plan.lines, { json: true, details: true, ...(onInput ? { onInput } : {}) });
  const vethMade = (): void => undo.push(`veth ${input.hostVeth}`, () => deleteHostLink(input.hostVeth));
  if (!r.ok && r.failedLine !== undefined && r.failedLine === plan.bridgeAddLine && isExists(r.stderr)) {
    vethMade();
    plan = planLinks({ ...input, bridgeExists: true, vethCreated: true });
    r = await runBatch(plan.lines, { json: true, details: true });
    if (!r.ok) throw new BatchFailedError("setting up the host side failed", r, plan.lines);
  } else if (!r.ok) {
    if (plan.vethLine !== undefined && r.failedLine === plan.vethLine) {
      if (isExists(r.stderr)) throw new IfnameTakenError(CniCode.Internal, `interface "${input.ifname}" already exists in the network namespace ${input.netnsPath}`);
      throw new BatchFailedError("creating the veth pair failed", r, plan.lines);
    }
    vethMade();
    throw new BatchFailedError("setting up the host side failed", r, plan.lines);
  } else if (plan.vethLine !== undefined) {
    vethMade();
  }
  const bridge = showBlocks(plan.shows, r.stdout).get("bridge")?.[0] as IpLink | undefined;
  if (!bridge) throw new CniError(CniCode.Internal, `bridge "${input.conf.bridge}" not found after creating it`);
  return bridge;
}

/**
 * The reference's forceAddress rule, checked after the fact from the addresses the
 * batch saw before it added ours: another IPv4 address (or an overlapping IPv6 one)
 * is an error, or with forceAddress is removed.
 */
async function reconcileGateway(conf: BridgeConfig, dev: string, gateways: readonly Cidr[], before: readonly IpAddrInfo[], undo: UndoStack): Promise<void> {
  const conflicts: string[] = [];
  const ours = new Set(gateways.map(formatCidr));
  for (const gw of gateways) {
    for (const a of before) {
      const c = parseCidr(`${a.local}/${a.prefixlen}`);
      if (!c || c.ip.family !== gw.ip.family || ours.has(formatCidr(c))) continue;
      if (a.scope === "link" && c.ip.family === 6) continue;
      const overlap = gw.ip.family === 4 || cidrContains(c, gw) || cidrContains(gw, c);
      if (overlap && !conflicts.includes(formatCidr(c))) conflicts.push(formatCidr(c));
    }
  }
  if (conflicts.length === 0) return;
  if (conf.forceAddress) {
    // Deleting a primary address takes its secondaries along: put ours back after.
    await replaceAddrs(dev, conflicts, gateways);
    return;
  }
  const added = gateways.map(formatCidr).filter((g) => !before.some((a) => `${a.local}/${a.prefixlen}` === g));
  undo.push(`gateway address on ${dev}`, () => deleteAddrs(dev, added));
  throw new CniError(CniCode.Internal, `"${dev}" already has an IP address different from ${gateways.map(formatCidr).join(", ")}: ${conflicts.join(", ")}`, "set forceAddress to replace it");
}

function cidrContains(net: Cidr, other: Cidr): boolean {
  const bits = BigInt((net.ip.family === 4 ? 32 : 128) - net.prefix);
  return net.ip.family === other.ip.family && net.ip.value >> bits === other.ip.value >> bits;
}

function hostSysctls(conf: BridgeConfig, gateways: readonly Cidr[]): void {
  writeSysctl(ifKey(6, conf.bridge, "accept_ra"), "0");
  if (gateways.some((g) => g.ip.family === 4)) writeSysctl(IPV4_FORWARD, "1");
  if (gateways.some((g) => g.ip.family === 6)) writeSysctl(IPV6_FORWARD, "1");
}

/**
 * The reference waits for the host end to be operationally up before returning; so do
 * we, reading sysfs (no spawn) when it shows this namespace.
 */
async function waitPortUp(sysfs: boolean, name: string): Promise<void> {
  if (!sysfs) return;
  const delays = [0, 2, 5, 10, 50, 500, 1000, 1000];
  let state: string | undefined;
  for (const d of delays) {
    if (d) await new Promise((r) => setTimeout(r, d));
    state = operstate({ links: new Set(), sysfs }, name);
    if (state === undefined || state === "up") return;
  }
  throw new CniError(CniCode.Internal, `bridge port ${name} is not up (operstate ${state})`);
}
