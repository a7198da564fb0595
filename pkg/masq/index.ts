/**
 * Masquerade for the bridge plugin: backend choice, and setup / teardown / check / GC
 * across the iptables and nftables backends. Plans are pure (iptables-plan.ts,
 * nftables-plan.ts); this module only picks and applies them.
 */
import { findTool } from "../exec.js";
import { asCniError, CniCode, CniError } from "../types/errors.js";
import { familiesOf, iptablesSetupPlan } from "./iptables-plan.js";
import { checkIptables, gcIptables, iptablesAvailable, setupIptables, teardownIptables } from "./iptables.js";
import { nftSetupPlan } from "./nftables-plan.js";
import { checkNftables, gcNftables, nftAvailable, setupNftables, teardownNftables } from "./nftables.js";
import type { Attachment, MasqBackend, MasqCheck, MasqRef, MasqTarget } from "./types.js";

export type { Attachment, MasqBackend, MasqCheck, MasqRef, MasqTarget } from "./types.js";
export { chainName, ownerComment } from "./names.js";

/** Unset backend: iptables when its binary exists, else nftables (the reference's default). */
export function detectBackend(): MasqBackend {
  return findTool("iptables") ? "iptables" : "nftables";
}

/** The text the common-path ADD feeds its tool(s); for golden tests and `--dry-run` output. */
export function masqPlanText(backend: MasqBackend, t: MasqTarget): string {
  if (backend === "nftables") return `# nft -f -\n${nftSetupPlan(t)}`;
  return familiesOf(t.addresses)
    .map((f) => `# ${f === 4 ? "iptables" : "ip6tables"}-restore --noflush -w\n${iptablesSetupPlan(t, f)}`)
    .join("");
}

export async function setupMasq(backend: MasqBackend, t: MasqTarget): Promise<void> {
  if (t.addresses.length === 0) return;
  if (backend === "iptables") await setupIptables(t);
  else await setupNftables(t);
}

/**
 * Removes the attachment's masquerade from both backends (a DEL may follow a config or
 * version change). Absent state is success; errors count only from backends this node has.
 */
export async function teardownMasq(ref: MasqRef): Promise<void> {
  await both(
    "teardown",
    () => (iptablesAvailable() ? teardownIptables(ref) : Promise.resolve()),
    () => (nftAvailable() ? teardownNftables(ref) : Promise.resolve()),
  );
}

export async function checkMasq(backend: MasqBackend, t: MasqTarget): Promise<MasqCheck> {
  if (t.addresses.length === 0) return { ok: true, problems: [] };
  return backend === "iptables" ? checkIptables(t) : checkNftables(t);
}

/** Removes the network's masquerade state whose attachment is not in `keep`, in both backends. */
export async function gcMasq(network: string, keep: readonly Attachment[]): Promise<void> {
  await both(
    "gc",
    () => (iptablesAvailable() ? gcIptables(network, keep) : Promise.resolve()),
    () => (nftAvailable() ? gcNftables(network, keep) : Promise.resolve()),
  );
}

async function both(what: string, ipt: () => Promise<void>, nft: () => Promise<void>): Promise<void> {
  const results = await Promise.allSettled([ipt(), nft()]);
  const errors = results.flatMap((r, i) => (r.status === "rejected" ? [{ backend: i === 0 ? "iptables" : "nftables", err: asCniError(r.reason) }] : []));
  if (errors.length === 0) return;
  if (errors.length === 1) throw errors[0]!.err;
  throw new CniError(
    CniCode.Internal,
    `masquerade ${what} failed: ${errors.map((e) => `${e.backend}: ${e.err.message}`).join("; ")}`,
    errors.map((e) => e.err.details).filter(Boolean).join("\n"),
  );
}
