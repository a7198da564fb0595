/**
 * DEL: idempotent, and it tries every step whatever failed before: the pod
 * interface (in its netns; or the host end, found by prevResult and owner alias,
 * when the netns is gone or not given), then the IPAM reservation (after the link has
 * left the namespaces, so the address is not handed out while still configured), and in
 * parallel the masquerade (the configured backend, see teardownMasq) and spoof-check
 * state. Errors are aggregated.
 */
import { parseCidr, type Cidr } from "../../pkg/ip.js";
import { isNoDevice, line, parseJsonStream, runBatch, BatchFailedError, type IpLink } from "../../pkg/iproute2.js";
import { ipamCall, resolveIpam } from "../../pkg/ipam.js";
import { detectBackend, teardownMasq } from "../../pkg/masq/index.js";
import { netnsState } from "../../pkg/netns.js";
import { pollUntil } from "../../pkg/poll.js";
import { CniError, asCniError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import { ownerAlias } from "./add.js";
import { deleteHostLink } from "./apply.js";
import { parseBridgeConfig } from "./config.js";
import type { StepLog } from "./log.js";
import { ifalias, linkExists, sysfsShows } from "./observe.js";
import { addressesOf, interfaceRoles, prevResultOf } from "./prev-result.js";
import { spoofId, teardownSpoofcheck } from "./spoofcheck.js";

export async function cmdDel(inv: Invocation, log: StepLog): Promise<void> {
  const conf = parseBridgeConfig(inv);
  const prev = prevResultOf(inv.config);
  const known = addressesOf(prev);
  const ns = netnsState(inv.netns);
  if (ns.kind === "invalid") log.note(`CNI_NETNS skipped: ${ns.why}`);
  const errors: CniError[] = [];
  const attempt = async (name: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await log.step(name, fn);
    } catch (err) {
      errors.push(asCniError(err));
    }
  };

  // The link, then IPAM; the addresses it saw feed the masquerade teardown when prevResult has none.
  let resolveSeen: (a: Cidr[] | undefined) => void = () => {};
  const seen = new Promise<Cidr[] | undefined>((r) => (resolveSeen = r));
  const linkThenIpam = (async () => {
    await attempt("link", async () => {
      try {
        resolveSeen(await deleteLink(inv, conf.bridge, ns.kind === "ok", known === undefined, prev, log));
      } finally {
        resolveSeen(known);
      }
    });
    if (conf.ipam) {
      const type = conf.ipam.type;
      await attempt("ipam", () => ipamCall(resolveIpam(type, inv), "DEL", inv));
    }
  })();
  const tasks = [linkThenIpam];
  if (conf.ipMasq && conf.ipam) {
    tasks.push(
      attempt("masq", async () => {
        const addresses = known ?? (await seen);
        await teardownMasq({ network: conf.name, containerId: inv.containerId, ifname: inv.ifname, ...(addresses ? { addresses } : {}) }, conf.ipMasqBackend ?? detectBackend());
      }),
    );
  }
  if (conf.macspoofchk) tasks.push(attempt("spoofcheck", () => teardownSpoofcheck(spoofId(inv.containerId, inv.ifname))));
  await Promise.all(tasks);

  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) {
    throw new CniError(errors[0]!.code, `DEL failed in ${errors.length} steps: ${errors.map((e) => e.message).join("; ")}`, errors.map((e) => e.details).filter(Boolean).join("\n"));
  }
}

/**
 * Deletes the pod interface; returns its addresses when asked to look.
 *
 * Deleting a veth takes the kernel 15–25 ms, nearly all of it in rcu_barrier() after the
 * pair has left both namespaces and RTNL is released (netdev_run_todo; seen in
 * /proc/<pid>/stack of `ip link del`). When the host end is known and present, DEL watches
 * it (O(1): its /proc/sys/net/ipv4/conf entry, always this namespace) and goes on as soon as
 * it is gone: the pair is unregistered, its names are free, and only the memory reclaim is
 * left, which `ip` waits out on its own after this process has exited.
 */
async function deleteLink(inv: Invocation, bridge: string, inNetns: boolean, wantAddrs: boolean, prev: ReturnType<typeof prevResultOf>, log: StepLog): Promise<Cidr[] | undefined> {
  const hostName = prev ? interfaceRoles(prev, bridge, inv.ifname, inv.netns).hostVeth?.name : undefined;
  if (inNetns) {
    const lines = [...(wantAddrs ? [line("addr", "show", "dev", inv.ifname)] : []), line("link", "del", "dev", inv.ifname)];
    const batch = runBatch(lines, { netns: inv.netns, json: wantAddrs });
    if (!wantAddrs && hostName !== undefined && linkExists(hostName)) {
      const first = await Promise.race([batch, unlisted(hostName, batch)]);
      if (first === "unlisted") {
        log.note(`link: ${hostName} unregistered; not waiting for the kernel's RCU barrier`);
        return undefined;
      }
    }
    const r = await batch;
    if (!r.ok && !isNoDevice(r.stderr)) throw new BatchFailedError(`deleting ${inv.ifname} in ${inv.netns} failed`, r, lines);
    if (!wantAddrs) return undefined;
    const link = parseJsonStream(r.stdout)[0]?.[0] as IpLink | undefined;
    const addrs = (link?.addr_info ?? []).filter((a) => a.scope !== "link" && a.scope !== "host").map((a) => parseCidr(`${a.local}/${a.prefixlen}`));
    const found = addrs.filter((c): c is Cidr => c !== undefined);
    return found.length ? found : undefined;
  }
  // No netns: the host end survives only if the netns is still alive somewhere; remove it if it is ours.
  if (!hostName || !linkExists(hostName)) return undefined;
  if (!sysfsShows(hostName)) return undefined;
  if (ifalias({ links: new Set([hostName]), sysfs: true }, hostName) === ownerAlias(inv.config.name, inv.containerId, inv.ifname)) await deleteHostLink(hostName);
  return undefined;
}

/** Resolves "unlisted" once `name` is no longer a link of this namespace; stops when `until` settles. */
function unlisted(name: string, until: Promise<unknown>): Promise<"unlisted"> {
  return pollUntil(() => !linkExists(name), until).then(() => "unlisted" as const);
}
