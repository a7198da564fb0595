/** `tscni show` output: an aligned table for people, JSON for machines. Pure. */
import type { AttachmentRow, Orphan, ShowReport } from "./types.js";

export interface RenderOptions {
  /** Print container IDs in full (the table cuts them to 12 characters otherwise). */
  noTrunc: boolean;
}

export function renderJson(r: ShowReport): string {
  return JSON.stringify(r, null, 2) + "\n";
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [header, ...rows].map(fmt).join("\n") + "\n";
}

function shortId(id: string | null, o: RenderOptions): string {
  if (id === null) return "-";
  return o.noTrunc || id.length <= 13 ? id : `${id.slice(0, 12)}…`;
}

function vethCell(a: AttachmentRow): string {
  if (!a.hostVeth) return a.hostVethNote ?? "-";
  return a.hostVeth.via === "alias" ? a.hostVeth.name : `${a.hostVeth.name} (libcni cache)`;
}

/** Which masquerade state exists for the attachment, naming the chain(s). */
export function masqCell(a: AttachmentRow): string {
  const parts: string[] = [];
  if (a.iptables.state === "present") parts.push(`iptables ${a.iptables.chain}${a.iptables.postroutingJumps === 0 ? " (no POSTROUTING jump)" : ""}`);
  if (a.nftables.state === "present") parts.push(`nft ${a.nftables.chain}${a.nftables.elements.length === 0 ? " (no map element)" : ""}`);
  if (parts.length > 0) return parts.join(" + ");
  return a.iptables.state === "unknown" && a.nftables.state === "unknown" ? "unknown" : "none";
}

function orphanRows(orphans: readonly Orphan[], o: RenderOptions): string[][] {
  return orphans.map((x) => [x.kind, x.network ?? "-", shortId(x.containerId, o), x.ifname ?? "-", x.object, x.detail]);
}

export function renderTable(r: ShowReport, o: RenderOptions = { noTrunc: false }): string {
  const out: string[] = [];
  out.push(`data dir ${r.dataDir}; networks: ${r.networks.join(", ") || "none"}\n\n`);
  if (r.attachments.length === 0) out.push("no attachments (no reservation files)\n");
  else {
    out.push(table(
      ["NETWORK", "CONTAINER", "IFNAME", "ADDRESSES", "HOST VETH", "BRIDGE", "MASQUERADE"],
      r.attachments.map((a) => [
        a.network,
        shortId(a.containerId, o),
        a.ifname ?? "-",
        a.addresses.join(",") || "-",
        vethCell(a),
        a.hostVeth?.bridge ?? "-",
        masqCell(a),
      ]),
    ));
  }
  out.push(`\n${r.orphans.length === 0 ? "no orphans" : `ORPHANS (${r.orphans.length})`}\n`);
  if (r.orphans.length > 0) out.push(table(["KIND", "NETWORK", "CONTAINER", "IFNAME", "OBJECT", "WHY"], orphanRows(r.orphans, o)));
  if (r.unclaimedVeths.length > 0) {
    out.push(`\nveths on a bridge without a tscni alias (the reference plugin's, or another tool's): ${r.unclaimedVeths.map((v) => `${v.name} (${v.bridge ?? "-"})`).join(", ")}\n`);
  }
  if (r.problems.length > 0) out.push(`\nproblems:\n${r.problems.map((p) => `  - ${p}\n`).join("")}`);
  return out.join("");
}
