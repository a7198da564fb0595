import { sha512Hex as sha512Uncached } from "./sha512.js";

const digests = new Map<string, string>();

/**
 * Hex sha512 of a string, as the reference's hash helpers compute it (pure JS: node:crypto
 * costs ~2.5 ms of start-up). Remembered per process: one ADD names the same chain, map
 * and base chain several times, and each digest costs ~0.15 ms in the executable's
 * interpreter.
 */
export function sha512Hex(s: string): string {
  let d = digests.get(s);
  if (d === undefined) digests.set(s, (d = sha512Uncached(s)));
  return d;
}

/**
 * The per-attachment iptables chain: "CNI-" + the first 24 hex characters of
 * sha512(network + containerId). Byte-identical to the reference's FormatChainName,
 * so either implementation's DEL finds the other's chain.
 */
export function chainName(network: string, containerId: string): string {
  return `CNI-${sha512Hex(network + containerId).slice(0, 24)}`;
}

const GO_ESCAPES: Record<string, string> = {
  "\x07": "\\a",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\v": "\\v",
  '"': '\\"',
  "\\": "\\\\",
};

/** Go's %q for the strings CNI names are made of (printable runes kept, controls escaped). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const esc = GO_ESCAPES[ch];
    if (esc) out += esc;
    else if (ch < " " || ch === "\x7f") out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + '"';
}

/** The reference's FormatComment: `name: "<net>" id: "<cid>"`. */
export function ownerComment(network: string, containerId: string): string {
  return `name: ${goQuote(network)} id: ${goQuote(containerId)}`;
}

/** 16 hex characters naming a network in our nftables objects. */
export function networkHash(network: string): string {
  return sha512Hex(network).slice(0, 16);
}

/** 16 hex characters naming one attachment (ifname + container) within a network. */
export function attachmentHash(ifname: string, containerId: string): string {
  return sha512Hex(`${ifname}:${containerId}`).slice(0, 16);
}

/** Inverse of goQuote for the escapes it produces; undefined when `q` is not such a string. */
export function goUnquote(q: string): string | undefined {
  if (q.length < 2 || !q.startsWith('"') || !q.endsWith('"')) return undefined;
  const back: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", '"': '"', "\\": "\\" };
  let out = "";
  const body = q.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === '"') return undefined;
    if (ch !== "\\") {
      out += ch;
      continue;
    }
    const e = body[++i];
    if (e === undefined) return undefined;
    if (e === "x") {
      const hex = body.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/i.test(hex)) return undefined;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (back[e] !== undefined) out += back[e];
    else return undefined;
  }
  return out;
}

/**
 * The containerId of a reference owner comment of `network`, or undefined when the
 * comment is not exactly `name: "<network>" id: "<cid>"` (portmap's "dnat name: …" is not).
 */
export function containerIdOfComment(network: string, comment: string): string | undefined {
  const prefix = `name: ${goQuote(network)} id: `;
  if (!comment.startsWith(prefix)) return undefined;
  const cid = goUnquote(comment.slice(prefix.length));
  return cid !== undefined && ownerComment(network, cid) === comment ? cid : undefined;
}
