/**
 * CHECK (spec ≥ 0.4.0): the state prevResult describes is still there — bridge, the
 * veth pair (peers of each other, host end on the bridge), pod addresses and routes,
 * the gateway on the bridge, the masquerade — and IPAM agrees. Two `ip -json` reads
 * (host, pod) and the masquerade check run in parallel. Only a configured promiscMode
 * is checked (tcpdump's promiscuity is not a failure); L2 mode has nothing to route.
 */
import { formatCidr, parseCidr, subnetOf } from "../../pkg/ip.js";
import { line, parseFailedLines, parseJsonStream, runBatch, type IpLink, type IpRoute } from "../../pkg/iproute2.js";
import { ipamCall, resolveIpam } from "../../pkg/ipam.js";
import { checkMasq, detectBackend } from "../../pkg/masq/index.js";
import { requireNetns } from "../../pkg/netns.js";
import { settleAll } from "../../pkg/settle.js";
import { CniCode, CniError, ConfigError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import type { Result } from "../../pkg/types/result.js";
import { parseBridgeConfig, type BridgeConfig } from "./config.js";
import type { StepLog } from "./log.js";
import { gatewaysOnDev, sysfsShows, sysLink, type SysLink } from "./observe.js";
import { addressesOf, interfaceRoles, prevResultOf, type Roles } from "./prev-result.js";

/** Runs show lines with -force; returns one entry per line (undefined where the line failed). */
async function show(lines: string[], netns?: string, onInput?: () => void): Promise<(unknown[] | undefined)[]> {
  const r = await runBatch(lines, { json: true, details: true, force: true, ...(netns ? { netns } : {}), ...(onInput ? { onInput } : {}) });
  const failed = new Set(parseFailedLines(r.stderr));
  const blocks = parseJsonStream(r.stdout);
  let k = 0;
  return lines.map((_, i) => (failed.has(i + 1) ? undefined : blocks[k++]));
}

export async function cmdCheck(inv: Invocation, log: StepLog): Promise<void> {
  const conf = parseBridgeConfig(inv);
  requireNetns(inv.netns);
  const prev = prevResultOf(inv.config);
  if (!prev) throw new ConfigError("CHECK needs a prevResult");
  const roles = interfaceRoles(prev, conf.bridge, inv.ifname, inv.netns);
  const gwDev = conf.vlan > 0 ? `${conf.bridge}.${conf.vlan}` : conf.bridge;
  const expectGateways = conf.isGateway ? gatewaysOf(prev) : [];

  // `addr show` only: after a `link show`, ip 6.1's batch drops addr_info.
  const hostLines = [line("addr", "show", "dev", conf.bridge), line("addr", "show", "dev", roles.hostVeth?.name ?? conf.bridge)];
  if (expectGateways.length && gwDev !== conf.bridge) hostLines.push(line("addr", "show", "dev", gwDev));
  const hasV4 = (prev.ips ?? []).some((i) => !i.address.includes(":")) || (prev.routes ?? []).some((r) => !r.dst.includes(":"));
  const hasV6 = (prev.ips ?? []).some((i) => i.address.includes(":")) || (prev.routes ?? []).some((r) => r.dst.includes(":"));
  const podLines = [line("addr", "show", "dev", inv.ifname), line("route", "show", "table", "all"), line("route", "show", "table", "all", "root", "::/0")];

  const problems: string[] = [];
  let podInputWritten: () => void = () => {};
  const podInput = new Promise<void>((r) => (podInputWritten = r));
  const podView = log.step("pod", async () => {
    const [addr, r4, r6] = await show(podLines, inv.netns, podInputWritten);
    const routes = { 4: hasV4 ? ((r4 ?? []) as IpRoute[]) : [], 6: hasV6 ? ((r6 ?? []) as IpRoute[]) : [] };
    return [addr?.[0] as IpLink | undefined, routes] as const;
  });
  // The masquerade spawns go before the host side's synchronous sysfs reads (~1–3 ms of
  // event-loop time), so the children run while those are read.
  const tasks: Promise<unknown>[] = [];
  const addresses = addressesOf(prev);
  if (conf.ipMasq && addresses) {
    tasks.push(
      log.step("masq", async () => {
        const c = await checkMasq(conf.ipMasqBackend ?? detectBackend(), { network: conf.name, containerId: inv.containerId, ifname: inv.ifname, addresses, nonMasqueradeCidrs: conf.nonMasqueradeCidrs });
        problems.push(...c.problems);
      }),
    );
  }
  // O(1): sysfs is read only when it shows this namespace (judged on the bridge's ifindex).
  const view = { sysfs: sysfsShows(conf.bridge) };
  tasks.push(
    log.step("host", async () => {
      let br: IpLink | undefined;
      let veth: IpLink | undefined;
      let gwLink: IpLink | undefined;
      if (view.sysfs) {
        // sysfs shows this namespace: read the host side in-process, no spawn.
        br = asIpLink(sysLink(conf.bridge));
        veth = roles.hostVeth ? asIpLink(sysLink(roles.hostVeth.name)) : undefined;
      } else {
        const [b, v, g] = await show(hostLines);
        br = b?.[0] as IpLink | undefined;
        veth = roles.hostVeth ? (v?.[0] as IpLink | undefined) : undefined;
        gwLink = ((gwDev !== conf.bridge ? g : b)?.[0] as IpLink | undefined);
      }
      const pod = (await podView)[0];
      checkLinks(conf, inv.ifname, roles, br, veth, pod, problems);
      if (expectGateways.length) {
        const missing = view.sysfs
          ? gatewaysOnDev(gwDev, expectGateways)
          : expectGateways.filter((g) => !(gwLink?.addr_info ?? []).some((a) => `${a.local}/${a.prefixlen}` === g));
        for (const g of missing) problems.push(`gateway ${g} is not on ${gwDev}`);
      }
    }),
  );
  tasks.push(
    podView.then(([pod, routes]) => {
      if (pod) checkPodAddressing(prev, pod, routes, problems);
    }),
  );
  if (conf.ipam) {
    const type = conf.ipam.type;
    // In-process IPAM blocks the event loop: start it once the pod read has its input (a
    // pipe write is asynchronous; the pod's ip would otherwise wait for IPAM to finish).
    const podStarted = Promise.race([podInput, podView.then(() => undefined, () => undefined)]);
    tasks.push(podStarted.then(() => log.step("ipam", () => ipamCall(resolveIpam(type, inv), "CHECK", inv))));
  }
  await settleAll(tasks);
  if (problems.length) throw new CniError(CniCode.Internal, `CHECK failed: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ""}`, problems.join("\n"));
}

/** sysfs facts in the shape of `ip -json -details` output, so one checker serves both. */
function asIpLink(l: SysLink | undefined): IpLink | undefined {
  if (!l) return undefined;
  // sysfs does not name the kind; a non-bridge is taken as the veth (its peer and master are checked).
  const kind = l.isBridge ? "bridge" : "veth";
  return {
    ifindex: l.ifindex,
    ifname: l.ifname,
    address: l.address,
    link_index: l.iflink,
    flags: l.flags & 0x100 ? ["PROMISC"] : [],
    ...(l.master ? { master: l.master } : {}),
    linkinfo: { info_kind: kind },
  };
}

function gatewaysOf(prev: Result): string[] {
  const out: string[] = [];
  for (const ip of prev.ips ?? []) {
    const a = parseCidr(ip.address);
    if (a && ip.gateway) out.push(`${ip.gateway}/${a.prefix}`);
  }
  return [...new Set(out)];
}

export function checkLinks(conf: BridgeConfig, ifname: string, roles: Roles, br: IpLink | undefined, veth: IpLink | undefined, pod: IpLink | undefined, problems: string[]): void {
  if (!roles.bridge) problems.push(`bridge ${conf.bridge} is not in prevResult`);
  if (!br) problems.push(`bridge ${conf.bridge} not found`);
  else {
    if (br.linkinfo?.info_kind !== "bridge") problems.push(`${conf.bridge} is not a bridge`);
    if (roles.bridge?.mac && br.address !== roles.bridge.mac) problems.push(`bridge ${conf.bridge} MAC is ${br.address}, prevResult says ${roles.bridge.mac}`);
    if (conf.promiscMode && !(br.flags ?? []).includes("PROMISC")) problems.push(`bridge ${conf.bridge} is not in promiscuous mode`);
  }
  if (!roles.pod) problems.push(`no interface ${ifname} with the sandbox of CNI_NETNS in prevResult`);
  if (!pod) problems.push(`interface ${ifname} not found in the pod`);
  else {
    if (pod.linkinfo?.info_kind !== "veth") problems.push(`pod interface ${pod.ifname} is not a veth`);
    if (roles.pod?.mac && pod.address !== roles.pod.mac) problems.push(`pod interface MAC is ${pod.address}, prevResult says ${roles.pod.mac}`);
  }
  if (!roles.hostVeth || !veth) problems.push(`the host end of the veth${roles.hostVeth ? ` ${roles.hostVeth.name}` : ""} was not found`);
  else {
    if (veth.linkinfo?.info_kind !== "veth") problems.push(`${veth.ifname} is not a veth`);
    if (veth.master !== conf.bridge) problems.push(`${veth.ifname} is not attached to ${conf.bridge}`);
    if (roles.hostVeth.mac && veth.address !== roles.hostVeth.mac) problems.push(`${veth.ifname} MAC is ${veth.address}, prevResult says ${roles.hostVeth.mac}`);
    if (pod && (pod.link_index !== veth.ifindex || veth.link_index !== pod.ifindex)) problems.push(`${veth.ifname} and the pod interface are not peers`);
  }
}

function routeKey(dst: string): string {
  if (dst === "default") return "default";
  const c = parseCidr(dst.includes("/") ? dst : `${dst}/${dst.includes(":") ? 128 : 32}`);
  if (!c) return dst;
  return c.prefix === 0 ? "default" : formatCidr(subnetOf(c));
}

function checkPodAddressing(prev: Result, pod: IpLink, routes: Record<4 | 6, IpRoute[]>, problems: string[]): void {
  const have = new Set((pod.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
  for (const ip of prev.ips ?? []) {
    const a = parseCidr(ip.address);
    if (a && !have.has(`${formatCidr(a)}`) && !have.has(ip.address)) problems.push(`address ${ip.address} is not on ${pod.ifname}`);
  }
  for (const r of prev.routes ?? []) {
    const key = routeKey(r.dst);
    const found = routes[r.dst.includes(":") ? 6 : 4].some((x) => routeKey(x.dst) === key && (!r.gw || x.gateway === r.gw));
    if (!found) problems.push(`route to ${r.dst}${r.gw ? ` via ${r.gw}` : ""} is missing in the pod`);
  }
}
