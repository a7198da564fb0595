/**
 * Gathers what `tscni show` reports, in the current network namespace: host-local
 * reservation files, links (sysfs in-process when it shows this netns, else one
 * `ip -d -j link show`), one `iptables-save -t nat` per family, one
 * `nft -j list table inet tscni_masq`, and libcni cache entries. Reads only.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { findTool, run } from "../../pkg/exec.js";
import { formatIp } from "../../pkg/ip.js";
import { NFT_FAMILY, NFT_TABLE } from "../../pkg/masq/nftables-plan.js";
import { DiskStore } from "../../ipam/host-local/store.js";
import { observeHost } from "../bridge/observe.js";
import { ShowError } from "./show-error.js";
import type { CacheFact, IptablesFact, LinkFact, NftFact, ReservationFact, ShowFacts } from "./types.js";

export interface CollectOptions {
  dataDir: string;
  network?: string;
  /** libcni's cache (results/ inside); missing is fine. */
  cacheDir: string;
}

const errText = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

function listNetworks(dataDir: string): string[] {
  try {
    return readdirSync(dataDir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith("."))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ShowError(`data dir ${dataDir} does not exist (host-local's dataDir; set it with --data-dir)`);
    if (code === "ENOTDIR") throw new ShowError(`data dir ${dataDir} is not a directory`);
    throw new ShowError(`cannot list data dir ${dataDir}: ${errText(err)}`, { cause: err });
  }
}

function readReservations(dataDir: string, networks: readonly string[], problems: string[]): ReservationFact[] {
  const out: ReservationFact[] = [];
  for (const network of networks) {
    let scan;
    try {
      scan = new DiskStore(dataDir, network).scan();
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    problems.push(...scan.problems.map((p) => `unreadable reservation ${p}`));
    for (const r of scan.reservations) {
      out.push({ network, ip: formatIp(r.ip), containerId: r.id, ...(r.ifname !== undefined ? { ifname: r.ifname } : {}) });
    }
  }
  return out;
}

function sysRead(name: string, attr: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/${attr}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/**
 * A link from sysfs. Sysfs has no "kind", so a veth is told by elimination: its iflink is
 * its peer (not itself), it has no parent device, and uevent names no DEVTYPE (vlan,
 * macvlan, vxlan, bridge … all do).
 */
function sysfsLink(name: string): LinkFact {
  const alias = sysRead(name, "ifalias");
  let master: string | undefined;
  try {
    const t = readlinkSync(`/sys/class/net/${name}/master`);
    master = t.slice(t.lastIndexOf("/") + 1);
  } catch {
    master = undefined;
  }
  const ifindex = sysRead(name, "ifindex");
  const iflink = sysRead(name, "iflink");
  const veth = ifindex !== undefined && iflink !== undefined && ifindex !== iflink &&
    !existsSync(`/sys/class/net/${name}/device`) && !/^DEVTYPE=/m.test(sysRead(name, "uevent") ?? "");
  return { name, ...(alias ? { alias } : {}), ...(master ? { master } : {}), veth };
}

interface IpLinkJson {
  ifname: string;
  ifalias?: string;
  master?: string;
  linkinfo?: { info_kind?: string };
}

async function readLinks(problems: string[]): Promise<LinkFact[]> {
  const view = observeHost();
  if (view.sysfs) return [...view.links].sort().map(sysfsLink);
  // /sys is another netns's (nsenter --net without remounting sysfs): ask the kernel.
  const ip = findTool("ip");
  if (!ip) {
    problems.push("/sys/class/net does not show this netns and ip(8) is missing: host veths not listed");
    return [];
  }
  const r = await run([ip, "-d", "-j", "link", "show"], { allowFailure: true });
  if (r.code !== 0) {
    problems.push(`ip -d -j link show failed: ${r.stderr.trim()}`);
    return [];
  }
  return (JSON.parse(r.stdout) as IpLinkJson[]).map((l) => ({
    name: l.ifname,
    ...(l.ifalias ? { alias: l.ifalias } : {}),
    ...(l.master ? { master: l.master } : {}),
    veth: l.linkinfo?.info_kind === "veth",
  }));
}

async function readIptables(family: 4 | 6): Promise<IptablesFact> {
  const name = family === 4 ? "iptables-save" : "ip6tables-save";
  const exe = findTool(name);
  if (!exe) return { family, error: `${name} not found` };
  const r = await run([exe, "-t", "nat"], { allowFailure: true });
  if (r.code !== 0) return { family, error: `${name} -t nat failed (exit ${r.code}): ${r.stderr.trim()}` };
  return { family, saved: r.stdout };
}

interface NftJson {
  nftables?: Array<{
    chain?: { name: string; comment?: string };
    map?: { name: string; elem?: Array<[unknown, { jump?: { target: string } }]> };
  }>;
}

/** The facts in `nft -j list table inet tscni_masq` output. Pure. */
export function parseNftTable(json: string): Pick<NftFact, "chains" | "elements"> {
  const doc = JSON.parse(json) as NftJson;
  const chains: NftFact["chains"] = [];
  const elements: NftFact["elements"] = [];
  for (const o of doc.nftables ?? []) {
    if (o.chain) chains.push({ name: o.chain.name, ...(o.chain.comment ? { comment: o.chain.comment } : {}) });
    for (const [k, v] of o.map?.elem ?? []) {
      if (typeof k === "string" && v?.jump?.target) elements.push({ map: o.map!.name, ip: k, target: v.jump.target });
    }
  }
  return { chains, elements };
}

/** chain name -> comment, from `nft list table` text. Pure. */
export function nftChainComments(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^\s*chain (\S+) \{\s*\n\s*comment "([^"]*)"/gm)) out.set(m[1]!, m[2]!);
  return out;
}

async function readNft(): Promise<NftFact> {
  const exe = findTool("nft");
  if (!exe) return { state: "no-tool", chains: [], elements: [] };
  // nft's JSON leaves chain comments out (nftables 1.0.6), its text keeps them: read both.
  const [r, text] = await Promise.all([
    run([exe, "-j", "list", "table", NFT_FAMILY, NFT_TABLE], { allowFailure: true }),
    run([exe, "list", "table", NFT_FAMILY, NFT_TABLE], { allowFailure: true }),
  ]);
  if (r.code !== 0) {
    if (/No such file or directory/.test(r.stderr)) return { state: "no-table", chains: [], elements: [] };
    return { state: "error", chains: [], elements: [], error: `nft list table ${NFT_FAMILY} ${NFT_TABLE} failed: ${r.stderr.trim()}` };
  }
  try {
    const parsed = parseNftTable(r.stdout);
    const comments = nftChainComments(text.stdout);
    for (const c of parsed.chains) c.comment ??= comments.get(c.name);
    return { state: "table", ...parsed };
  } catch (err) {
    return { state: "error", chains: [], elements: [], error: `cannot parse nft -j output: ${(err as Error).message}` };
  }
}

interface CachedResult {
  result?: { interfaces?: Array<{ name?: string; sandbox?: string }> };
}

/**
 * Host-side interface names of libcni's cached result for each attachment, when cached.
 * The file name is built from reservation file contents: one holding a "/" (never a valid
 * container ID or ifname) names no cache entry, and must not lead outside results/.
 */
export function readCache(cacheDir: string, rs: readonly ReservationFact[]): CacheFact[] {
  const dir = `${cacheDir.replace(/\/+$/, "")}/results`;
  if (!existsSync(dir)) return [];
  const seen = new Set<string>();
  const out: CacheFact[] = [];
  for (const r of rs) {
    if (r.ifname === undefined || r.containerId.includes("/") || r.ifname.includes("/")) continue;
    const file = `${r.network}-${r.containerId}-${r.ifname}`;
    if (seen.has(file)) continue;
    seen.add(file);
    let cached: CachedResult;
    try {
      cached = JSON.parse(readFileSync(`${dir}/${file}`, "utf8")) as CachedResult;
    } catch {
      continue;
    }
    const hostInterfaces = (cached.result?.interfaces ?? []).filter((i) => i.name && !i.sandbox).map((i) => i.name!);
    out.push({ network: r.network, containerId: r.containerId, ifname: r.ifname, hostInterfaces });
  }
  return out;
}

export async function collectFacts(o: CollectOptions): Promise<ShowFacts> {
  const problems: string[] = [];
  const all = listNetworks(o.dataDir);
  let networks = all;
  if (o.network !== undefined) {
    networks = all.includes(o.network) ? [o.network] : [];
    if (networks.length === 0) problems.push(`no directory ${o.dataDir}/${o.network}: network ${JSON.stringify(o.network)} holds no reservation (networks here: ${all.join(", ") || "none"})`);
  }
  const reservations = readReservations(o.dataDir, networks, problems);
  const [links, ipt4, ipt6, nft] = await Promise.all([readLinks(problems), readIptables(4), readIptables(6), readNft()]);
  const iptables = [ipt4, ipt6];
  if (ipt4.error && ipt4.saved === undefined && !/not found$/.test(ipt4.error)) problems.push(ipt4.error);
  if (ipt6.error && ipt6.saved === undefined && !/not found$/.test(ipt6.error)) problems.push(ipt6.error);
  if (nft.error) problems.push(nft.error);
  return {
    dataDir: o.dataDir,
    networks,
    ...(o.network !== undefined ? { only: o.network } : {}),
    reservations,
    links,
    iptables,
    nft,
    cache: readCache(o.cacheDir, reservations),
    problems,
  };
}
