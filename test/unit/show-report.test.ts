import { describe, expect, it } from "vitest";
import { chainName, ownerComment } from "../../pkg/masq/names.js";
import { nftPodChain } from "../../pkg/masq/nftables-plan.js";
import { ownerAlias } from "../../plugins/bridge/add.js";
import { buildReport, NO_VETH, NOT_TSCNI } from "../../plugins/show/report.js";
import type { LinkFact, ReservationFact, ShowFacts } from "../../plugins/show/types.js";

const DATA = "/tmp/data";

/** iptables-save lines for one attachment, as the reference (and tscni) lay them out. */
function natFor(net: string, id: string, ip: string): string[] {
  const c = chainName(net, id);
  const q = `"${ownerComment(net, id).replace(/"/g, '\\"')}"`;
  return [
    `:${c} - [0:0]`,
    `-A POSTROUTING -s ${ip}/32 -m comment --comment ${q} -j ${c}`,
    `-A ${c} -d 10.85.0.0/16 -m comment --comment ${q} -j ACCEPT`,
    `-A ${c} ! -d 224.0.0.0/4 -m comment --comment ${q} -j MASQUERADE`,
  ];
}

function saved(...blocks: string[][]): string {
  const lines = blocks.flat();
  const decl = lines.filter((l) => l.startsWith(":"));
  const rules = lines.filter((l) => l.startsWith("-A"));
  return ["*nat", ":POSTROUTING ACCEPT [0:0]", ...decl, ...rules, "COMMIT", ""].join("\n");
}

const veth = (name: string, alias?: string, master = "cni0"): LinkFact => ({ name, veth: true, master, ...(alias ? { alias } : {}) });
/** ifname null: a legacy file holding only the container ID. */
const res = (network: string, ip: string, containerId: string, ifname: string | null = "eth0"): ReservationFact =>
  ({ network, ip, containerId, ...(ifname !== null ? { ifname } : {}) });

function facts(o: Partial<ShowFacts>): ShowFacts {
  return {
    dataDir: DATA,
    networks: ["net1"],
    reservations: [],
    links: [{ name: "lo", veth: false }, { name: "cni0", veth: false }],
    iptables: [{ family: 4, saved: saved() }, { family: 6, saved: saved() }],
    nft: { state: "no-table", chains: [], elements: [] },
    cache: [],
    problems: [],
    ...o,
  };
}

describe("buildReport: attachments", () => {
  it("maps each reservation to its aliased veth, bridge and iptables chain", () => {
    const f = facts({
      reservations: [res("net1", "10.85.0.3", "bbb"), res("net1", "10.85.0.2", "aaa")],
      links: [veth("vethA", ownerAlias("net1", "aaa", "eth0")), veth("vethB", ownerAlias("net1", "bbb", "eth0"))],
      iptables: [{ family: 4, saved: saved(natFor("net1", "aaa", "10.85.0.2"), natFor("net1", "bbb", "10.85.0.3")) }],
    });
    const r = buildReport(f);
    expect(r.attachments.map((a) => [a.containerId, a.addresses, a.hostVeth?.name, a.hostVeth?.bridge, a.iptables.state, a.iptables.postroutingJumps])).toEqual([
      ["aaa", ["10.85.0.2"], "vethA", "cni0", "present", 1],
      ["bbb", ["10.85.0.3"], "vethB", "cni0", "present", 1],
    ]);
    expect(r.attachments[0]!.iptables.chain).toBe(chainName("net1", "aaa"));
    expect(r.orphans).toEqual([]);
    expect(r.unclaimedVeths).toEqual([]);
  });

  it("groups a dual-stack attachment's addresses and keeps two ifnames of one container apart", () => {
    const r = buildReport(facts({
      reservations: [res("net1", "10.85.0.2", "aaa"), res("net1", "fd00::2", "aaa"), res("net1", "10.85.0.3", "aaa", "net1")],
      links: [veth("v0", ownerAlias("net1", "aaa", "eth0")), veth("v1", ownerAlias("net1", "aaa", "net1"))],
    }));
    expect(r.attachments.map((a) => [a.ifname, a.addresses, a.hostVeth?.name])).toEqual([
      ["eth0", ["10.85.0.2", "fd00::2"], "v0"],
      ["net1", ["10.85.0.3"], "v1"],
    ]);
  });

  it("a veth without alias: 'unknown (not made by tscni)', listed as unclaimed, not an orphan", () => {
    const r = buildReport(facts({ reservations: [res("net1", "10.85.0.5", "go-pod")], links: [veth("vethGo")] }));
    expect(r.attachments[0]!.hostVeth).toBeNull();
    expect(r.attachments[0]!.hostVethNote).toBe(NOT_TSCNI);
    expect(r.unclaimedVeths).toEqual([{ name: "vethGo", bridge: "cni0" }]);
    expect(r.orphans).toEqual([]);
  });

  it("finds the reference plugin's veth through libcni's cached result", () => {
    const r = buildReport(facts({
      reservations: [res("net1", "10.85.0.5", "go-pod")],
      links: [{ name: "cni0", veth: false }, veth("vethGo"), veth("vethOther")],
      cache: [{ network: "net1", containerId: "go-pod", ifname: "eth0", hostInterfaces: ["cni0", "vethGo"] }],
    }));
    expect(r.attachments[0]!.hostVeth).toEqual({ name: "vethGo", via: "libcni-cache", bridge: "cni0" });
    expect(r.unclaimedVeths.map((v) => v.name)).toEqual(["vethOther"]);
  });

  it("a legacy id-only reservation matches an alias of any ifname", () => {
    const r = buildReport(facts({ reservations: [res("net1", "10.85.0.9", "old", null)], links: [veth("vOld", ownerAlias("net1", "old", "eth0"))] }));
    expect(r.attachments[0]).toMatchObject({ ifname: null, hostVeth: { name: "vOld" } });
  });

  it("a truncated alias matches the container whose ID it starts", () => {
    const id = "c".repeat(300);
    const r = buildReport(facts({ reservations: [res("net1", "10.85.0.2", id)], links: [veth("vLong", ownerAlias("net1", id, "eth0"))] }));
    expect(r.attachments[0]!.hostVeth?.name).toBe("vLong");
  });

  it("masquerade state: unknown without iptables-save, nft chain and elements from tscni's table", () => {
    const chain = nftPodChain("net1", "eth0", "aaa");
    const r = buildReport(facts({
      reservations: [res("net1", "10.85.0.2", "aaa")],
      iptables: [{ family: 4, error: "iptables-save not found" }],
      nft: { state: "table", chains: [{ name: chain }], elements: [{ map: "pods4-x", ip: "10.85.0.2", target: chain }] },
    }));
    expect(r.attachments[0]!.iptables.state).toBe("unknown");
    expect(r.attachments[0]!.nftables).toEqual({ chain, state: "present", elements: ["10.85.0.2"] });
  });
});

describe("buildReport: orphans", () => {
  it("a veth whose alias names an attachment without reservation", () => {
    const r = buildReport(facts({
      reservations: [res("net1", "10.85.0.2", "aaa")],
      links: [veth("vethA", ownerAlias("net1", "aaa", "eth0")), veth("vethB", ownerAlias("net1", "bbb", "eth0"))],
    }));
    expect(r.orphans).toEqual([expect.objectContaining({ kind: "veth", network: "net1", containerId: "bbb", ifname: "eth0", object: "vethB" })]);
  });

  it("a reservation with no veth at all on the node", () => {
    const r = buildReport(facts({ reservations: [res("net1", "10.85.0.7", "gone")] }));
    expect(r.attachments[0]!.hostVethNote).toBe(NO_VETH);
    expect(r.orphans).toEqual([expect.objectContaining({ kind: "reservation", containerId: "gone", object: "10.85.0.7" })]);
  });

  it("a CNI- chain whose comment names a container without reservation (either family, once each)", () => {
    const r = buildReport(facts({
      reservations: [res("net1", "10.85.0.2", "aaa")],
      links: [veth("vethA", ownerAlias("net1", "aaa", "eth0"))],
      iptables: [
        { family: 4, saved: saved(natFor("net1", "aaa", "10.85.0.2"), natFor("net1", "zzz", "10.85.0.9"), natFor("other", "yyy", "10.9.0.2")) },
        { family: 6, saved: saved(natFor("net1", "zzz", "fd00::9")) },
      ],
    }));
    expect(r.orphans.map((o) => [o.kind, o.network, o.containerId, o.object])).toEqual([
      ["iptables-chain", "net1", "zzz", chainName("net1", "zzz")],
      ["iptables-chain", "other", "yyy", chainName("other", "yyy")],
    ]);
  });

  it("ignores CNI- chains that are not the bridge's (portmap, hand-made)", () => {
    const lines = [":CNI-DN-0123456789abcdef01234 - [0:0]", '-A CNI-DN-0123456789abcdef01234 -m comment --comment "dnat name: \\"net1\\" id: \\"q\\"" -j DNAT', `-A ${chainName("net1", "q")} -m comment --comment "something else" -j ACCEPT`];
    expect(buildReport(facts({ iptables: [{ family: 4, saved: saved(lines) }] })).orphans).toEqual([]);
  });

  it("an nft attachment chain of no reservation, network read from its comment", () => {
    const chain = nftPodChain("net2", "eth0", "ccc");
    const r = buildReport(facts({ nft: { state: "table", chains: [{ name: "nat-x" }, { name: chain, comment: "net: net2, if: eth0, id: ccc" }], elements: [] } }));
    expect(r.orphans).toEqual([expect.objectContaining({ kind: "nft-chain", network: "net2", containerId: "ccc", object: chain })]);
  });

  it("--network: other networks' veths and chains are not judged", () => {
    const r = buildReport(facts({
      only: "net1",
      links: [veth("vOther", ownerAlias("net2", "x", "eth0"))],
      iptables: [{ family: 4, saved: saved(natFor("net2", "x", "10.86.0.2")) }],
      nft: { state: "table", chains: [{ name: nftPodChain("net2", "eth0", "x") }], elements: [] },
    }));
    expect(r.orphans).toEqual([]);
  });

  it("carries collection problems through", () => {
    expect(buildReport(facts({ problems: ["unreadable reservation x: EACCES"] })).problems).toEqual(["unreadable reservation x: EACCES"]);
  });
});
