import { describe, expect, it } from "vitest";
import { masqCell, renderJson, renderTable, table } from "../../plugins/show/render.js";
import type { AttachmentRow, ShowReport } from "../../plugins/show/types.js";

const ID_A = "3f1c2a9d0e114b7a8c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b";

function row(o: Partial<AttachmentRow>): AttachmentRow {
  return {
    network: "mynet",
    containerId: ID_A,
    ifname: "eth0",
    addresses: ["10.85.0.2"],
    hostVeth: { name: "veth0a1b2c3d", via: "alias", bridge: "cni0" },
    iptables: { chain: "CNI-0123456789abcdef01234567", state: "present", postroutingJumps: 1 },
    nftables: { chain: "pod-aaaa-bbbb", state: "absent", elements: [] },
    ...o,
  };
}

const REPORT: ShowReport = {
  dataDir: "/var/lib/cni/networks",
  networks: ["mynet"],
  attachments: [
    row({}),
    row({ containerId: "go-pod", addresses: ["10.85.0.5", "fd00::5"], hostVeth: null, hostVethNote: "unknown (not made by tscni)", iptables: { chain: "CNI-fedcba9876543210fedcba98", state: "present", postroutingJumps: 2 } }),
  ],
  orphans: [
    { kind: "veth", network: "mynet", containerId: "gone-1234567890abcdef", ifname: "eth0", object: "veth99887766", detail: "host veth on cni0 whose alias names an attachment with no reservation under /var/lib/cni/networks/mynet" },
  ],
  unclaimedVeths: [{ name: "veth5a5a5a5a", bridge: "cni0" }],
  problems: ["unreadable reservation /var/lib/cni/networks/mynet/10.85.0.9: EACCES"],
};

describe("table", () => {
  it("pads every column but the last to its widest cell", () => {
    expect(table(["A", "BB", "C"], [["xxx", "y", "z"], ["", "yyyy", ""]])).toBe("A    BB    C\nxxx  y     z\n     yyyy\n");
  });
});

describe("renderTable", () => {
  it("prints attachments, orphans, unclaimed veths and problems (golden)", () => {
    expect(renderTable(REPORT)).toBe(
      `data dir /var/lib/cni/networks; networks: mynet

NETWORK  CONTAINER      IFNAME  ADDRESSES          HOST VETH                    BRIDGE  MASQUERADE
mynet    3f1c2a9d0e11…  eth0    10.85.0.2          veth0a1b2c3d                 cni0    iptables CNI-0123456789abcdef01234567
mynet    go-pod         eth0    10.85.0.5,fd00::5  unknown (not made by tscni)  -       iptables CNI-fedcba9876543210fedcba98

ORPHANS (1)
KIND  NETWORK  CONTAINER      IFNAME  OBJECT        WHY
veth  mynet    gone-1234567…  eth0    veth99887766  host veth on cni0 whose alias names an attachment with no reservation under /var/lib/cni/networks/mynet

veths on a bridge without a tscni alias (the reference plugin's, or another tool's): veth5a5a5a5a (cni0)

problems:
  - unreadable reservation /var/lib/cni/networks/mynet/10.85.0.9: EACCES
`,
    );
  });

  it("--no-trunc prints whole container IDs", () => {
    expect(renderTable(REPORT, { noTrunc: true })).toContain(`mynet    ${ID_A}  eth0`);
  });

  it("says so when there is nothing", () => {
    const empty: ShowReport = { dataDir: "/d", networks: [], attachments: [], orphans: [], unclaimedVeths: [], problems: [] };
    expect(renderTable(empty)).toBe("data dir /d; networks: none\n\nno attachments (no reservation files)\n\nno orphans\n");
  });
});

describe("masqCell", () => {
  it.each([
    [row({}), "iptables CNI-0123456789abcdef01234567"],
    [row({ iptables: { chain: "CNI-x", state: "present", postroutingJumps: 0 } }), "iptables CNI-x (no POSTROUTING jump)"],
    [row({ iptables: { chain: "CNI-x", state: "absent", postroutingJumps: 0 }, nftables: { chain: "pod-n-a", state: "present", elements: ["10.85.0.2"] } }), "nft pod-n-a"],
    [row({ nftables: { chain: "pod-n-a", state: "present", elements: [] } }), "iptables CNI-0123456789abcdef01234567 + nft pod-n-a (no map element)"],
    [row({ iptables: { chain: "CNI-x", state: "absent", postroutingJumps: 0 } }), "none"],
    [row({ iptables: { chain: "CNI-x", state: "unknown", postroutingJumps: 0 }, nftables: { chain: "p", state: "unknown", elements: [] } }), "unknown"],
  ])("%#", (r, want) => {
    expect(masqCell(r)).toBe(want);
  });
});

describe("renderJson", () => {
  it("is the report itself, full IDs, one trailing newline", () => {
    const text = renderJson(REPORT);
    expect(text.endsWith("}\n")).toBe(true);
    expect(JSON.parse(text)).toEqual(REPORT);
  });
});
