/**
 * iptables masquerade backend: applies the plans of iptables-plan.ts.
 *
 * Cost on ADD is flat: one `iptables-restore --noflush -w` per family, never a listing.
 * The restore `-N`s the chain, so on a re-ADD (chain exists) it fails atomically and we
 * fall back to `-C` for just the POSTROUTING jumps and a restore that flushes the chain by
 * declaring it and adds only the missing jumps. DEL with known addresses is one restore
 * (`-D` jumps, `-F`, `-X`); if that fails (state partly gone, or the legacy `-s ip/prefix`
 * jump form) or the addresses are unknown, it checks the chain exists (`-S <chain>`; none
 * means nothing can jump to it), then lists POSTROUTING only and deletes what jumps to it.
 */
import { CommandFailedError, findTool, run, tool, type RunResult } from "../exec.js";
import type { Family } from "../ip.js";
import {
  chainRules,
  commentOf,
  familiesOf,
  iptablesCheckPlan,
  iptablesFastTeardownPlan,
  iptablesSetupPlan,
  iptablesTeardownPlan,
  jumpRules,
  jumpsTo,
  ruleLine,
} from "./iptables-plan.js";
import { chainName, containerIdOfComment } from "./names.js";
import type { Attachment, MasqCheck, MasqRef, MasqTarget } from "./types.js";

export * from "./iptables-plan.js";

const NAMES: Record<Family, { ipt: string; restore: string; save: string }> = {
  4: { ipt: "iptables", restore: "iptables-restore", save: "iptables-save" },
  6: { ipt: "ip6tables", restore: "ip6tables-restore", save: "ip6tables-save" },
};

/** The binary for a family, or undefined when this node has none. */
function bin(family: Family, which: "ipt" | "restore" | "save"): string | undefined {
  return findTool(NAMES[family][which]);
}

function need(family: Family, which: "ipt" | "restore" | "save"): string {
  return tool(NAMES[family][which]);
}

export function iptablesAvailable(): boolean {
  return findTool("iptables") !== undefined;
}

/**
 * `deleting`: the text deletes rules or chains, so the tool's exit waits out an RCU grace
 * period: settle before it (RunOptions.settleOnNetlinkClose), once iptables-restore has
 * read past the COMMIT — the input is padded with comment lines for that.
 */
function restore(family: Family, text: string, allowFailure = false, deleting = false): Promise<RunResult> {
  return run([need(family, "restore"), "--noflush", "-w"], { stdin: text, allowFailure, ...(deleting ? { settleOnNetlinkClose: { fillerLine: "#\n" } } : {}) });
}

function ipt(family: Family, args: string[], allowFailure = false): Promise<RunResult> {
  return run([need(family, "ipt"), "-w", "-t", "nat", ...args], { allowFailure });
}

async function setupFamily(t: MasqTarget, family: Family): Promise<void> {
  const first = await restore(family, iptablesSetupPlan(t, family), true);
  if (first.code === 0) return;
  // Chain already there (re-ADD or leftovers): which of our jumps exist? Flat: -C per jump.
  const existing: string[] = [];
  for (const r of jumpRules(t, family)) {
    const c = await ipt(family, ["-C", r.chain, ...r.args], true);
    if (c.code === 0) existing.push(ruleLine("-A", r));
  }
  await restore(family, iptablesSetupPlan(t, family, { mode: "replace", existingJumps: existing }));
}

export async function setupIptables(t: MasqTarget): Promise<void> {
  await Promise.all(familiesOf(t.addresses).map((f) => setupFamily(t, f)));
}

/** Lists POSTROUTING (never the whole table) and removes everything that jumps to `chain`. */
async function slowTeardown(family: Family, chain: string): Promise<void> {
  const own = await ipt(family, ["-S", chain], true);
  if (own.code !== 0) {
    // No chain (or no nat table): nothing can jump to it. iptables-nft 1.8.9 words a missing
    // chain as "chain `X' in table `nat' is incompatible". Anything else is a real failure.
    if (/No chain\/target\/match|does not exist|is incompatible/i.test(own.stderr)) return;
    throw new CommandFailedError([bin(family, "ipt") ?? "iptables", "-t", "nat", "-S", chain], own.code, own.stderr);
  }
  const post = await ipt(family, ["-S", "POSTROUTING"]);
  const jumps = post.stdout.split("\n").filter((l) => l.startsWith("-A POSTROUTING ") && jumpsTo(l, chain));
  await restore(family, iptablesTeardownPlan(jumps, [chain]), false, true);
}

export async function teardownIptables(ref: MasqRef): Promise<void> {
  const chain = chainName(ref.network, ref.containerId);
  const families: Family[] = ref.addresses ? familiesOf(ref.addresses) : [4, 6];
  await Promise.all(
    families
      .filter((f) => bin(f, "ipt") && bin(f, "restore"))
      .map(async (f) => {
        if (ref.addresses) {
          const fast = await restore(f, iptablesFastTeardownPlan({ ...ref, addresses: ref.addresses }, f), true, true);
          if (fast.code === 0) return;
          // No chain means no jump to it can exist either (the kernel refuses dangling jumps).
          if (fast.stderr.includes(`Chain '${chain}' does not exist`)) return;
        }
        await slowTeardown(f, chain);
      }),
  );
}

/**
 * Flat cost: one restore of `-C` lines per family (iptablesCheckPlan) when all is there.
 * When something is missing, `-S <chain>` and `-C` of each jump, in parallel, say what.
 */
export async function checkIptables(t: MasqTarget): Promise<MasqCheck> {
  const chain = chainName(t.network, t.containerId);
  const perFamily = await Promise.all(
    familiesOf(t.addresses).map(async (f) => {
      if ((await restore(f, iptablesCheckPlan(t, f), true)).code === 0) return [];
      const tag = NAMES[f].ipt;
      const jumps = jumpRules(t, f);
      const [listed, ...checked] = await Promise.all([ipt(f, ["-S", chain], true), ...jumps.map((r) => ipt(f, ["-C", r.chain, ...r.args], true))]);
      const problems: string[] = [];
      if (listed!.code !== 0) {
        problems.push(`${tag}: chain ${chain} missing in nat`);
      } else {
        const have = listed!.stdout.split("\n").filter((l) => l.startsWith("-A "));
        const want = chainRules(t, f).map((r) => ruleLine("-A", r));
        if (have.join("\n") !== want.join("\n")) problems.push(`${tag}: chain ${chain} differs: want [${want.join("; ")}], have [${have.join("; ")}]`);
      }
      jumps.forEach((r, i) => {
        if (checked[i]!.code !== 0) problems.push(`${tag}: missing rule ${ruleLine("-A", r)}`);
      });
      return problems;
    }),
  );
  const problems = perFamily.flat();
  return { ok: problems.length === 0, problems };
}

/** Owned chains of `network` in a saved nat table: chain -> containerId. */
export function ownedChains(saved: string, network: string): Map<string, string> {
  const owned = new Map<string, string>();
  for (const line of saved.split("\n")) {
    const m = /^-A (CNI-[0-9a-f]{24}) /.exec(line);
    if (!m || owned.has(m[1]!)) continue;
    const comment = commentOf(line);
    const cid = comment === undefined ? undefined : containerIdOfComment(network, comment);
    if (cid !== undefined && chainName(network, cid) === m[1]) owned.set(m[1]!, cid);
  }
  return owned;
}

/** GC plan for one saved nat table: undefined when nothing is stale. Pure. */
export function iptablesGcPlan(saved: string, network: string, keep: readonly Attachment[]): string | undefined {
  const kept = new Set(keep.map((a) => a.containerId));
  const stale = [...ownedChains(saved, network)].filter(([, cid]) => !kept.has(cid)).map(([c]) => c);
  if (stale.length === 0) return undefined;
  const lines = saved.split("\n");
  const jumps = lines.filter((l) => l.startsWith("-A POSTROUTING ") && stale.some((c) => jumpsTo(l, c)));
  return iptablesTeardownPlan(jumps, stale);
}

/** Removes this network's chains (and their jumps) whose container is not kept. Lists the nat table. */
export async function gcIptables(network: string, keep: readonly Attachment[]): Promise<void> {
  for (const f of [4, 6] as const) {
    const save = bin(f, "save");
    if (!save || !bin(f, "restore")) continue;
    const saved = await run([save, "-t", "nat"]);
    const plan = iptablesGcPlan(saved.stdout, network, keep);
    if (plan) await restore(f, plan);
  }
}
