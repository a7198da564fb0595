/**
 * ADD: validate → IPAM → host batch → (pod batch ∥ masquerade ∥ spoof check ∥ VLANs)
 * → result. Every applied step pushes its inverse; a failure unwinds them in reverse
 * and reports undo failures in `details`. The bridge itself, once created, is kept
 * (other pods may be joining it), as the reference does.
 */
import { formatCidr, formatIp, parseCidr, subnetOf, type Cidr } from "../../pkg/ip.js";
import { BatchFailedError, isExists, parseJsonStream, runBatch, type IpAddrInfo, type IpLink } from "../../pkg/iproute2.js";
import { ipamAdd, ipamCall, resolveIpam, validateIpam, type IpamTarget } from "../../pkg/ipam.js";
import { detectBackend, setupMasq, teardownMasq } from "../../pkg/masq/index.js";
import { requireNetns } from "../../pkg/netns.js";
import { ifKey, IPV4_FORWARD, IPV6_FORWARD, writeSysctl } from "../../pkg/sysctl.js";
import { tool } from "../../pkg/exec.js";
import { CniCode, CniError, ConfigError, asCniError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import type { CniInterface, Result } from "../../pkg/types/result.js";
import { UndoStack } from "../../pkg/undo.js";
import { applyPodOrThrow, applyVlan, deleteAddrs, deleteHostLink, replaceAddrs } from "./apply.js";
import { parseBridgeConfig, type BridgeConfig } from "./config.js";
import { computeAddressing, type Addressing } from "./gateways.js";
import type { StepLog } from "./log.js";
import { gatewaysInPlace, linkFacts, observeHost, operstate, randomMac, randomVethName, type HostView } from "./observe.js";
import { planGateway, planLinks, planVlan, type LinksPlanInput, type ShowKind } from "./plan-host.js";
import { planPod } from "./plan-pod.js";
import { setupSpoofcheck, spoofId, teardownSpoofcheck } from "./spoofcheck.js";

/** Ties a host veth to its attachment, for DEL without a netns and for GC. */
export function ownerAlias(network: string, containerId: string, ifname: string): string {
  return `tscni:${network}:${ifname}:${containerId}`.slice(0, 255);
}

interface Prepared {
  conf: BridgeConfig;
  view: HostView;
  ipam: IpamTarget | undefined;
}

/** Everything that can be checked without changing anything. */
function prepare(inv: Invocation): Prepared {
  const conf = parseBridgeConfig(inv);
  if (conf.vlan > 0 && `${conf.bridge}.${conf.vlan}`.length > 15) {
    throw new ConfigError(`bridge name "${conf.bridge}" is too long for its VLAN gateway interface "${conf.bridge}.${conf.vlan}"`);
  }
  requireNetns(inv.netns);
  const view = observeHost();
  const br = linkFacts(view, conf.bridge);
  if (br.exists && br.isBridge === false) throw new CniError(CniCode.Internal, `"${conf.bridge}" already exists but is not a bridge`);
  tool("ip");
  if (conf.ipam) tool("nsenter");
  if (conf.vlan || conf.vlanTrunk.length) tool("bridge");
  if (conf.macspoofchk) tool("nft");
  const ipam = conf.ipam ? resolveIpam(conf.ipam.type, inv) : undefined;
  return { conf, view, ipam };
}

export async function cmdAdd(inv: Invocation, log: StepLog): Promise<Result> {
  const p = prepare(inv);
  if (p.ipam) await validateIpam(p.ipam, inv);
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
  const { conf, view } = p;
  const br = linkFacts(view, conf.bridge);
  const hostVeth = randomVethName(view.links);
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

  // Links first: a taken CNI_IFNAME fails here, before IPAM hands out or releases anything.
  const bridgeLink = await log.step("host", () => applyLinks(links, undo));
  if (bridgeLink.linkinfo && bridgeLink.linkinfo.info_kind !== "bridge") {
    throw new CniError(CniCode.Internal, `"${conf.bridge}" already exists but is not a bridge (it is a ${bridgeLink.linkinfo.info_kind ?? "device of unknown kind"})`);
  }

  let addressing: Addressing = { ips: [], routes: [], addresses: [], gateways: [] };
  let dns = conf.dns;
  if (p.ipam) {
    const ipam = p.ipam;
    const res = await log.step("ipam", () => ipamAdd(ipam, inv));
    undo.push("IPAM reservation", () => ipamCall(ipam, "DEL", inv));
    if (!res.ips || res.ips.length === 0) throw new CniError(CniCode.Internal, `IPAM plugin "${ipam.type}" returned no IP configuration`);
    addressing = computeAddressing(res, conf);
    dns ??= res.dns;
  }

  await log.step("host-sysctl", () => hostSysctls(conf, addressing.gateways));

  const vlanName = `${conf.bridge}.${conf.vlan}`;
  const vlanGateway =
    conf.vlan > 0 && addressing.gateways.length > 0
      ? { name: vlanName, exists: view.links.has(vlanName), peer: randomVethName(new Set([...view.links, hostVeth])), mac: randomMac(), peerMac: randomMac() }
      : undefined;
  const gwDev = vlanGateway ? vlanGateway.name : conf.bridge;
  let vlanLink: IpLink | undefined;
  const gateway = addressing.gateways.length && !(vlanGateway === undefined && gatewaysInPlace(conf.bridge, addressing.gateways.map(gatewayKey)))
    ? log.step("gateway", async () => {
        const gwPlan = planGateway({ conf, gateways: addressing.gateways, ...(vlanGateway ? { vlanGateway } : {}) });
        const r = await runBatch(gwPlan.lines, { json: true, details: true });
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
    undo.push("masquerade", () => teardownMasq(target));
    tasks.push(log.step("masq", () => setupMasq(backend, target)));
  }
  if (conf.macspoofchk) {
    const id = spoofId(inv.containerId, inv.ifname);
    undo.push("spoof check", () => teardownSpoofcheck(id));
    tasks.push(log.step("spoofcheck", () => setupSpoofcheck(id, hostVeth, podMac)));
  }
  if (conf.vlan > 0 || conf.vlanTrunk.length > 0) {
    const pvid = Number(bridgeLink.linkinfo?.info_data?.vlan_default_pvid ?? 1);
    const ports = [hostVeth, ...(vlanGateway && !vlanGateway.exists ? [vlanGateway.peer] : [])];
    // The VLAN gateway's peer is created by the gateway batch.
    tasks.push(gateway.then(() => log.step("vlan", () => applyVlan(planVlan(conf, ports, pvid)))));
  }
  await settleAll(tasks);

  if (!conf.disableContainerInterface) await log.step("port-up", () => waitPortUp(view, hostVeth));

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
async function applyLinks(input: LinksPlanInput, undo: UndoStack): Promise<IpLink> {
  let plan = planLinks(input);
  let r = await runBatch(plan.lines, { json: true, details: true });
  const vethMade = (): void => undo.push(`veth ${input.hostVeth}`, () => deleteHostLink(input.hostVeth));
  if (!r.ok && r.failedLine !== undefined && r.failedLine === plan.bridgeAddLine && isExists(r.stderr)) {
    vethMade();
    plan = planLinks({ ...input, bridgeExists: true, vethCreated: true });
    r = await runBatch(plan.lines, { json: true, details: true });
    if (!r.ok) throw new BatchFailedError("setting up the host side failed", r, plan.lines);
  } else if (!r.ok) {
    if (plan.vethLine !== undefined && r.failedLine === plan.vethLine) {
      if (isExists(r.stderr)) throw new CniError(CniCode.Internal, `interface "${input.ifname}" already exists in the network namespace ${input.netnsPath}`);
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

/** Waits for every task; the first failure is thrown, the others go in its details. */
async function settleAll(tasks: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(tasks);
  const errors = results.flatMap((r) => (r.status === "rejected" ? [asCniError(r.reason)] : []));
  if (errors.length === 0) return;
  const [first, ...rest] = errors;
  if (rest.length === 0) throw first!;
  throw new CniError(first!.code, first!.message, [first!.details, ...rest.map((e) => e.message)].filter(Boolean).join("\n"));
}

/**
 * The reference waits for the host end to be operationally up before returning; so do
 * we, reading sysfs (no spawn) when it shows this namespace.
 */
async function waitPortUp(view: HostView, name: string): Promise<void> {
  const delays = [0, 2, 5, 10, 50, 500, 1000, 1000];
  let state: string | undefined;
  for (const d of delays) {
    if (d) await new Promise((r) => setTimeout(r, d));
    state = operstate(view, name);
    if (state === undefined || state === "up") return;
  }
  throw new CniError(CniCode.Internal, `bridge port ${name} is not up (operstate ${state})`);
}
