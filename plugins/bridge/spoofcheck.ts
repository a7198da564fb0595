/**
 * MAC spoof check (macspoofchk), in the reference's nftables layout so either
 * implementation removes the other's: table `bridge nat`, base chain PREROUTING
 * (filter hook, priority -300), per attachment `cni-br-iface-<cid>-<ifname>` and
 * `…-mac`, every rule commented `macspoofchk-<cid>-<ifname>`. Setup is one
 * transaction (declare, flush, fill); teardown lists the table once. Both repeat an nft
 * call whose netlink dump was interrupted (see retryInterrupted).
 */
import { CommandFailedError, run, tool } from "../../pkg/exec.js";
import { retryInterrupted } from "../../pkg/masq/nftables.js";
import { CniCode, CniError } from "../../pkg/types/errors.js";

export function spoofId(containerId: string, ifname: string): string {
  return `${containerId}-${ifname}`;
}

/** nft takes chain names in rules only unquoted; quote the odd name elsewhere. */
function q(s: string): string {
  return /^[a-zA-Z_][a-zA-Z0-9/_.-]*$/.test(s) ? s : `"${s.replace(/["\\]/g, "")}"`;
}

export function spoofSetupPlan(id: string, hostVeth: string, podMac: string): string {
  const iface = `cni-br-iface-${id}`;
  const mac = `${iface}-mac`;
  const c = `comment "macspoofchk-${id.replace(/["\\]/g, "")}"`;
  return [
    "add table bridge nat",
    "add chain bridge nat PREROUTING { type filter hook prerouting priority -300; policy accept; }",
    `add chain bridge nat ${q(iface)}`,
    `add chain bridge nat ${q(mac)}`,
    `flush chain bridge nat ${q(iface)}`,
    `flush chain bridge nat ${q(mac)}`,
    `add rule bridge nat PREROUTING iifname "${hostVeth}" jump ${q(iface)} ${c}`,
    `add rule bridge nat ${q(iface)} jump ${q(mac)} ${c}`,
    `add rule bridge nat ${q(mac)} ether saddr ${podMac} return ${c}`,
    `add rule bridge nat ${q(mac)} drop ${c}`,
    "",
  ].join("\n");
}

/** From `nft -a list table bridge nat`: the delete transaction for `id`, or undefined when nothing is left. */
export function spoofTeardownPlan(listing: string, id: string): string | undefined {
  const iface = `cni-br-iface-${id}`;
  const mac = `${iface}-mac`;
  const comment = `comment "macspoofchk-${id}"`;
  const out: string[] = [];
  let chain = "";
  const chains = new Set<string>();
  for (const raw of listing.split("\n")) {
    const l = raw.trim();
    const m = /^chain (\S+) \{/.exec(l);
    if (m) {
      chain = m[1]!.replace(/^"|"$/g, "");
      chains.add(chain);
      continue;
    }
    const h = / # handle (\d+)$/.exec(l);
    if (chain === "PREROUTING" && h && l.includes(comment)) out.push(`delete rule bridge nat PREROUTING handle ${h[1]}`);
  }
  if (chains.has(iface)) out.push(`delete chain bridge nat ${q(iface)}`);
  if (chains.has(mac)) out.push(`delete chain bridge nat ${q(mac)}`);
  return out.length ? out.join("\n") + "\n" : undefined;
}

async function nft(args: string[], stdin?: string): Promise<string> {
  const argv = [tool("nft"), ...args];
  const r = await retryInterrupted(() => run(argv, { stdin, allowFailure: true }));
  if (r.code !== 0) throw new CommandFailedError(argv, r.code, r.stderr);
  return r.stdout;
}

export async function setupSpoofcheck(id: string, hostVeth: string, podMac: string): Promise<void> {
  await nft(["-f", "-"], spoofSetupPlan(id, hostVeth, podMac));
}

export async function teardownSpoofcheck(id: string): Promise<void> {
  const argv = [tool("nft"), "-a", "list", "table", "bridge", "nat"];
  const listed = await retryInterrupted(() => run(argv, { allowFailure: true }));
  if (listed.code !== 0) {
    // No table: nothing of ours. Anything else must not pass for a clean teardown.
    if (/No such file or directory/.test(listed.stderr)) return;
    throw new CniError(CniCode.Internal, `nft list table bridge nat failed: ${listed.stderr.trim()}`);
  }
  const plan = spoofTeardownPlan(listed.stdout, id);
  if (plan) await nft(["-f", "-"], plan);
}
