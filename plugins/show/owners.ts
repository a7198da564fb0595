/**
 * Reading back the owner marks tscni and the reference leave on host objects: the host
 * veth alias, the iptables rule comment, the nft attachment chain comment. Pure.
 */
import { goUnquote, ownerComment } from "../../pkg/masq/names.js";

export interface Owner {
  network: string;
  containerId: string;
  ifname?: string;
  /** The mark was cut at its length limit: containerId may be a prefix of the real one. */
  truncated?: boolean;
}

const ALIAS_PREFIX = "tscni:";
/** IFALIASZ - 1: the bridge plugin cuts its alias there (plugins/bridge/add.ts ownerAlias). */
const ALIAS_MAX = 255;

/**
 * `tscni:<net>:<ifname>:<containerId>`. Network names (CNI spec) and Linux ifnames hold no
 * ":", so the first two separators are unambiguous; the container ID is the rest.
 */
export function parseOwnerAlias(alias: string): Owner | undefined {
  if (!alias.startsWith(ALIAS_PREFIX)) return undefined;
  const m = /^([^:]+):([^:]+):(.+)$/s.exec(alias.slice(ALIAS_PREFIX.length));
  if (!m) return undefined;
  return { network: m[1]!, ifname: m[2]!, containerId: m[3]!, ...(alias.length >= ALIAS_MAX ? { truncated: true } : {}) };
}

const QUOTED = String.raw`"(?:[^"\\]|\\.)*"`;
const COMMENT_RE = new RegExp(`^name: (${QUOTED}) id: (${QUOTED})$`, "s");

/** The reference's iptables comment `name: "<net>" id: "<cid>"` (exactly, as it formats it). */
export function parseOwnerComment(comment: string): Owner | undefined {
  const m = COMMENT_RE.exec(comment);
  if (!m) return undefined;
  const network = goUnquote(m[1]!);
  const containerId = goUnquote(m[2]!);
  if (network === undefined || containerId === undefined) return undefined;
  return ownerComment(network, containerId) === comment ? { network, containerId } : undefined;
}

/** nft attachment chain comment `net: <net>, if: <ifname>, id: <cid>` (cut at 128 characters). */
export function parseNftComment(comment: string): Owner | undefined {
  const m = /^net: (.*?), if: ([^,]*), id: (.*)$/s.exec(comment);
  if (!m) return undefined;
  return { network: m[1]!, ifname: m[2]!, containerId: m[3]!, ...(comment.length >= 128 ? { truncated: true } : {}) };
}
