/**
 * DEL: idempotent, and it tries every step whatever failed before: the pod
 * interface (in its netns; or the host end, found by prevResult and owner alias,
 * when the netns is gone or not given), then the IPAM reservation (after the link,
 * so the address is not handed out while still configured), and in parallel the
 * masquerade and spoof-check state. Errors are aggregated.
 */
import { parseCidr, type Cidr } from "../../pkg/ip.js";
import { isNoDevice, line, parseJsonStream, runBatch, BatchFailedError, type IpLink } from "../../pkg/iproute2.js";
import { ipamCall, resolveIpam } from "../../pkg/ipam.js";
import { teardownMasq } from "../../pkg/masq/index.js";
import { netnsState } from "../../pkg/netns.js";
import { CniError, asCniError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import { ownerAlias } from "./add.js";
import { deleteHostLink } from "./apply.js";
import { parseBridgeConfig } from "./config.js";
import type { StepLog } from "./log.js";
import { ifalias, observeHost } from "./observe.js";
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
        resolveSeen(await deleteLink(inv, conf.bridge, ns.kind === "ok", known === undefined, prev));
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
        await teardownMasq({ network: conf.name, containerId: inv.containerId, ifname: inv.ifname, ...(addresses ? { addresses } : {}) });
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

/** Deletes the pod interface; returns its addresses when asked to look. */
async function deleteLink(inv: Invocation, bridge: string, inNetns: boolean, wantAddrs: boolean, prev: ReturnType<typeof prevResultOf>): Promise<Cidr[] | undefined> {
  if (inNetns) {
    const lines = [...(wantAddrs ? [line("addr", "show", "dev", inv.ifname)] : []), line("link", "del", "dev", inv.ifname)];
    const r = await runBatch(lines, { netns: inv.netns, json: wantAddrs });
    if (!r.ok && !isNoDevice(r.stderr)) throw new BatchFailedError(`deleting ${inv.ifname} in ${inv.netns} failed`, r, lines);
    if (!wantAddrs) return undefined;
    const link = parseJsonStream(r.stdout)[0]?.[0] as IpLink | undefined;
    const addrs = (link?.addr_info ?? []).filter((a) => a.scope !== "link" && a.scope !== "host").map((a) => parseCidr(`${a.local}/${a.prefixlen}`));
    const found = addrs.filter((c): c is Cidr => c !== undefined);
    return found.length ? found : undefined;
  }
  // No netns: the host end survives only if the netns is still alive somewhere; remove it if it is ours.
  const host = prev ? interfaceRoles(prev, bridge, inv.ifname, inv.netns).hostVeth : undefined;
  if (!host) return undefined;
  const view = observeHost();
  if (!view.links.has(host.name)) return undefined;
  if (ifalias(view, host.name) === ownerAlias(inv.config.name, inv.containerId, inv.ifname)) await deleteHostLink(host.name);
  return undefined;
}
