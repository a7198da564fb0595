/**
 * Masquerade for the bridge plugin: backend choice, and setup / teardown / check / GC
 * across the iptables and nftables backends. Plans are pure (iptables-plan.ts,
 * nftables-plan.ts); this module only picks and applies them.
 */
import { accessSync, constants, existsSync, mkdirSync, readlinkSync, writeFileSync } from "node:fs";
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

/**
 * Where the nftables backend leaves a hint that a network may hold nftables state: DEL
 * with the iptables backend then tears down nftables too (a config switched backends).
 * Only a hint: a marker may cause a needless `nft` call, never a missed one — absent
 * marker, absent state, as long as /run is where this node's ADDs wrote it (tmpfs: emptied
 * at boot, with the nftables ruleset). Saves an `nft` spawn (~3–10 ms) on every iptables DEL.
 */
export const NFT_MARKER_DIR = "/run/tscni";

/**
 * `<dir>/nft-masq.<network>.<netns inode>`: keyed by this process's network namespace too,
 * so that nodes sharing /run (netns on one test machine) do not send each other's DELs to
 * nftables. An inode reused by a later namespace only makes the hint stale (a needless
 * teardown), never wrong the other way.
 */
export function nftMarker(network: string, dir: string = NFT_MARKER_DIR): string {
  let ns = "";
  try {
    ns = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))?.[1] ?? "";
  } catch {
    /* no /proc: one marker per network */
  }
  return `${dir}/nft-masq.${network}${ns ? `.${ns}` : ""}`;
}

function markNft(network: string): void {
  const f = nftMarker(network);
  if (existsSync(f)) return;
  try {
    mkdirSync(NFT_MARKER_DIR, { recursive: true, mode: 0o755 });
    writeFileSync(f, "");
  } catch {
    /* the marker cannot be written: teardown then always includes nftables (see below) */
  }
}

function nftMayHoldState(network: string): boolean {
  if (existsSync(nftMarker(network))) return true;
  // No marker, and nowhere an ADD could have put one: we cannot tell, so assume it may.
  return !canWrite(NFT_MARKER_DIR);
}

/** Whether markers can be written in `dir` (made if missing). */
function canWrite(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export async function setupMasq(backend: MasqBackend, t: MasqTarget): Promise<void> {
  if (t.addresses.length === 0) return;
  if (backend === "iptables") await setupIptables(t);
  else {
    // Before the rules: a crash in between leaves a marker (a needless DEL call), never rules without one.
    markNft(t.network);
    await setupNftables(t);
  }
}

/**
 * Removes the attachment's masquerade. The configured (or detected) backend always; with
 * nftables also iptables (the reference, or an earlier config, may have made state there);
 * with iptables also nftables when this node's marker says the network used it. Absent
 * state is success; errors count only from backends this node has. `backend` undefined:
 * both, unconditionally.
 */
export async function teardownMasq(ref: MasqRef, backend?: MasqBackend): Promise<void> {
  const nft = backend === undefined || backend === "nftables" || nftMayHoldState(ref.network);
  await both(
    "teardown",
    () => (iptablesAvailable() ? teardownIptables(ref) : Promise.resolve()),
    () => (nft && nftAvailable() ? teardownNftables(ref) : Promise.resolve()),
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
