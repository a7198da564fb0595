// Golden plans of the masquerade backends: the text fed to iptables-restore / nft.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseCidr, type Cidr } from "../../pkg/ip.js";
import { chainName, masqPlanText, ownerComment } from "../../pkg/masq/index.js";
import {
  commentOf,
  iptablesCheckPlan,
  iptablesFastTeardownPlan,
  iptablesGcPlan,
  iptablesSetupPlan,
  jumpsTo,
  ownedChains,
} from "../../pkg/masq/iptables.js";
import { goQuote, goUnquote, containerIdOfComment } from "../../pkg/masq/names.js";
import { addressesInChain, jumpTargetOf, NFT_TRIES, nftClosesOnlyAtEnd, nftComment, nftGcPlan, nftKnownTeardownPlan, nftPodChain, nftSetupPlan, nftTeardownPlan, retryInterrupted } from "../../pkg/masq/nftables.js";
import type { MasqTarget } from "../../pkg/masq/types.js";

const c = (s: string): Cidr => parseCidr(s)!;

function target(addresses: string[], nonMasq: string[] = [], over: Partial<MasqTarget> = {}): MasqTarget {
  return { network: "mynet", containerId: "abc123", ifname: "eth0", addresses: addresses.map(c), nonMasqueradeCidrs: nonMasq.map(c), ...over };
}

describe("chainName / ownerComment", () => {
  // Values read from iptables-save after the Go reference bridge (v1.1.1) ADD, and from
  // `printf %s "$net$id" | sha512sum | cut -c1-24`.
  it.each([
    ["mynet", "abc123", "CNI-70a29d9dc18bc4d652ea5d59"],
    ["cbr0", "a1b2c3d4e5f60718293a4b5c6d7e8f9", "CNI-b166b9d05793442ac0bdb795"],
  ])("chainName(%s, %s)", (net, id, want) => {
    expect(chainName(net, id)).toBe(want);
    expect(chainName(net, id)).toHaveLength(28);
  });

  it("formats the owner comment like Go's %q", () => {
    expect(ownerComment("mynet", "abc123")).toBe('name: "mynet" id: "abc123"');
    expect(goQuote('a"b\\c\n\x01')).toBe('"a\\"b\\\\c\\n\\x01"');
    expect(goUnquote(goQuote('a"b\\c\n\x01'))).toBe('a"b\\c\n\x01');
  });

  it("recognises only exact owner comments of the network", () => {
    expect(containerIdOfComment("mynet", 'name: "mynet" id: "abc123"')).toBe("abc123");
    expect(containerIdOfComment("mynet", 'dnat name: "mynet" id: "abc123"')).toBeUndefined();
    expect(containerIdOfComment("other", 'name: "mynet" id: "abc123"')).toBeUndefined();
  });
});

const CH = "CNI-70a29d9dc18bc4d652ea5d59";
const CM = '"name: \\"mynet\\" id: \\"abc123\\""';

describe("iptables plans", () => {
  it("IPv4: the reference's rules, in iptables-save form, -N for the common ADD", () => {
    expect(iptablesSetupPlan(target(["10.85.0.2/16"]), 4)).toBe(
      [
        "*nat",
        `-N ${CH}`,
        `-A ${CH} -d 10.85.0.0/16 -m comment --comment ${CM} -j ACCEPT`,
        `-A ${CH} ! -d 224.0.0.0/4 -m comment --comment ${CM} -j MASQUERADE`,
        `-A POSTROUTING -s 10.85.0.2/32 -m comment --comment ${CM} -j ${CH}`,
        "COMMIT",
        "",
      ].join("\n"),
    );
  });

  it("IPv6 with nonMasqueradeCidrs of both families (only the family's own are used)", () => {
    expect(iptablesSetupPlan(target(["10.85.0.2/16", "fd00:85::2/64"], ["10.0.0.0/8", "fd00::/16"]), 6)).toBe(
      [
        "*nat",
        `-N ${CH}`,
        `-A ${CH} -d fd00:85::/64 -m comment --comment ${CM} -j ACCEPT`,
        `-A ${CH} -d fd00::/16 -m comment --comment ${CM} -j ACCEPT`,
        `-A ${CH} ! -d ff00::/8 -m comment --comment ${CM} -j MASQUERADE`,
        `-A POSTROUTING -s fd00:85::2/128 -m comment --comment ${CM} -j ${CH}`,
        "COMMIT",
        "",
      ].join("\n"),
    );
  });

  it("replace mode declares (flushes) the chain and skips existing jumps", () => {
    const t = target(["10.85.0.2/16"]);
    const existing = `-A POSTROUTING -s 10.85.0.2/32 -m comment --comment ${CM} -j ${CH}`;
    const plan = iptablesSetupPlan(t, 4, { mode: "replace", existingJumps: [existing] });
    expect(plan.split("\n").slice(0, 2)).toEqual(["*nat", `:${CH} - [0:0]`]);
    expect(plan).not.toContain("-A POSTROUTING");
  });

  it("teardown deletes the jump, flushes and deletes the chain", () => {
    expect(iptablesFastTeardownPlan(target(["10.85.0.2/16"]), 4)).toBe(
      ["*nat", `-D POSTROUTING -s 10.85.0.2/32 -m comment --comment ${CM} -j ${CH}`, `-F ${CH}`, `-X ${CH}`, "COMMIT", ""].join("\n"),
    );
  });

  it("check plan is -C of the chain's rules and the jump, in one restore", () => {
    expect(iptablesCheckPlan(target(["10.85.0.2/16"]), 4)).toBe(
      [
        "*nat",
        `-C ${CH} -d 10.85.0.0/16 -m comment --comment ${CM} -j ACCEPT`,
        `-C ${CH} ! -d 224.0.0.0/4 -m comment --comment ${CM} -j MASQUERADE`,
        `-C POSTROUTING -s 10.85.0.2/32 -m comment --comment ${CM} -j ${CH}`,
        "COMMIT",
        "",
      ].join("\n"),
    );
  });

  it("parses saved lines", () => {
    const line = `-A POSTROUTING -s 10.85.0.2/32 -m comment --comment ${CM} -j ${CH}`;
    expect(commentOf(line)).toBe('name: "mynet" id: "abc123"');
    expect(jumpsTo(line, CH)).toBe(true);
    expect(jumpsTo(line, CH.slice(0, -1))).toBe(false);
  });

  it("gc removes only this network's chains whose container is not kept", () => {
    const other = chainName("mynet", "gone");
    const cmOther = '"name: \\"mynet\\" id: \\"gone\\""';
    const foreign = chainName("othernet", "x");
    const saved = [
      "*nat",
      `-A POSTROUTING -s 10.85.0.2/32 -m comment --comment ${CM} -j ${CH}`,
      `-A POSTROUTING -s 10.85.0.3/16 -m comment --comment ${cmOther} -j ${other}`,
      `-A POSTROUTING -s 10.9.0.3/32 -m comment --comment "name: \\"othernet\\" id: \\"x\\"" -j ${foreign}`,
      `-A ${CH} -d 10.85.0.0/16 -m comment --comment ${CM} -j ACCEPT`,
      `-A ${other} -d 10.85.0.0/16 -m comment --comment ${cmOther} -j ACCEPT`,
      `-A ${foreign} -d 10.9.0.0/16 -m comment --comment "name: \\"othernet\\" id: \\"x\\"" -j ACCEPT`,
      "COMMIT",
    ].join("\n");
    expect([...ownedChains(saved, "mynet").values()].sort()).toEqual(["abc123", "gone"]);
    expect(iptablesGcPlan(saved, "mynet", [{ containerId: "abc123", ifname: "eth0" }])).toBe(
      ["*nat", `-D POSTROUTING -s 10.85.0.3/16 -m comment --comment ${cmOther} -j ${other}`, `-F ${other}`, `-X ${other}`, "COMMIT", ""].join("\n"),
    );
    expect(iptablesGcPlan(saved, "mynet", [{ containerId: "abc123", ifname: "eth0" }, { containerId: "gone", ifname: "eth0" }])).toBeUndefined();
  });
});

describe("nftables plans", () => {
  const N = "d23676b4f2d9fe04"; // printf %s mynet | sha512sum | cut -c1-16
  it("dual stack ADD with nonMasqueradeCidrs: one transaction", () => {
    const pod = nftPodChain("mynet", "eth0", "abc123");
    expect(pod).toMatch(new RegExp(`^pod-${N}-[0-9a-f]{16}$`));
    expect(nftSetupPlan(target(["10.85.0.2/16", "fd00:85::2/64"], ["10.0.0.0/8"]))).toBe(
      [
        "add table inet tscni_masq",
        `add map inet tscni_masq pods4-${N} { type ipv4_addr : verdict; }`,
        `add map inet tscni_masq pods6-${N} { type ipv6_addr : verdict; }`,
        `add chain inet tscni_masq nat-${N} { type nat hook postrouting priority srcnat; policy accept; comment "net: mynet"; }`,
        `flush chain inet tscni_masq nat-${N}`,
        `add rule inet tscni_masq nat-${N} ip saddr vmap @pods4-${N}`,
        `add rule inet tscni_masq nat-${N} ip6 saddr vmap @pods6-${N}`,
        `add chain inet tscni_masq ${pod} { comment "net: mynet, if: eth0, id: abc123"; }`,
        `flush chain inet tscni_masq ${pod}`,
        `add rule inet tscni_masq ${pod} ip daddr 10.85.0.0/16 return`,
        `add rule inet tscni_masq ${pod} ip daddr 10.0.0.0/8 return`,
        `add rule inet tscni_masq ${pod} ip saddr 10.85.0.2 ip daddr != 224.0.0.0/4 masquerade`,
        `add rule inet tscni_masq ${pod} ip6 daddr fd00:85::/64 return`,
        `add rule inet tscni_masq ${pod} ip6 saddr fd00:85::2 ip6 daddr != ff00::/8 masquerade`,
        `add element inet tscni_masq pods4-${N} { 10.85.0.2 : jump ${pod} }`,
        `add element inet tscni_masq pods6-${N} { fd00:85::2 : jump ${pod} }`,
        "",
      ].join("\n"),
    );
  });

  it("replacing a leftover element deletes it first", () => {
    const plan = nftSetupPlan(target(["10.85.0.2/16"]), ["10.85.0.2"]);
    expect(plan).toContain(`delete element inet tscni_masq pods4-${N} { 10.85.0.2 }\nadd element`);
  });

  it("teardown deletes owned elements, then the chain", () => {
    expect(nftTeardownPlan("mynet", ["10.85.0.2", "fd00:85::2"], ["pod-x"])).toBe(
      [
        `delete element inet tscni_masq pods4-${N} { 10.85.0.2 }`,
        `delete element inet tscni_masq pods6-${N} { fd00:85::2 }`,
        "flush chain inet tscni_masq pod-x",
        "delete chain inet tscni_masq pod-x",
        "",
      ].join("\n"),
    );
  });

  it("teardown without a read claims each element for our chain before deleting it (aborts on another owner's)", () => {
    expect(nftKnownTeardownPlan("mynet", ["10.85.0.2", "fd00:85::2"], "pod-x")).toBe(
      [
        `add element inet tscni_masq pods4-${N} { 10.85.0.2 : jump pod-x }`,
        `add element inet tscni_masq pods6-${N} { fd00:85::2 : jump pod-x }`,
        `delete element inet tscni_masq pods4-${N} { 10.85.0.2 }`,
        `delete element inet tscni_masq pods6-${N} { fd00:85::2 }`,
        "flush chain inet tscni_masq pod-x",
        "delete chain inet tscni_masq pod-x",
        "",
      ].join("\n"),
    );
  });

  it("repeats an nft call interrupted by concurrent commits, a bounded number of times", async () => {
    const intr = { code: 1, stdout: "", stderr: "netlink: Error: Interrupted system call\n" };
    const ok = { code: 0, stdout: "x", stderr: "" };
    let calls = 0;
    expect(await retryInterrupted(async () => (++calls < 3 ? intr : ok))).toEqual(ok);
    expect(calls).toBe(3);
    calls = 0;
    expect(await retryInterrupted(async () => (++calls, intr))).toEqual(intr);
    expect(calls).toBe(NFT_TRIES);
    calls = 0;
    const other = { code: 1, stdout: "", stderr: "Error: No such file or directory" };
    expect(await retryInterrupted(async () => (++calls, other))).toEqual(other);
    expect(calls).toBe(1);
  });

  it("reads addresses and verdicts back from nft listings", () => {
    const chain = "table inet tscni_masq {\n\tchain pod-a {\n\t\tip daddr 10.85.0.0/16 return\n\t\tip saddr 10.85.0.2 ip daddr != 224.0.0.0/4 masquerade\n\t\tip6 saddr fd00::2 ip6 daddr != ff00::/8 masquerade\n\t}\n}\n";
    expect(addressesInChain(chain)).toEqual(["10.85.0.2", "fd00::2"]);
    expect(jumpTargetOf("map pods4-x {\n\t\telements = { 10.85.0.2 : jump pod-a-b }\n")).toBe("pod-a-b");
  });

  it("comments lose double quotes and stop at 128 characters", () => {
    expect(nftComment('a"b')).toBe("ab");
    expect(nftComment("x".repeat(300))).toHaveLength(128);
  });

  it("gc keeps listed attachments only", () => {
    const keep = nftPodChain("mynet", "eth0", "abc123");
    const stale = nftPodChain("mynet", "eth0", "gone");
    const foreign = nftPodChain("othernet", "eth0", "gone");
    const listing = {
      nftables: [
        { map: { name: `pods4-${N}`, elem: [["10.85.0.2", { jump: { target: keep } }], ["10.85.0.3", { jump: { target: stale } }]] as Array<[unknown, { jump?: { target: string } }]> } },
        { chain: { name: `nat-${N}` } },
        { chain: { name: keep } },
        { chain: { name: stale } },
        { chain: { name: foreign } },
      ],
    };
    expect(nftGcPlan(listing, "mynet", [{ containerId: "abc123", ifname: "eth0" }])).toBe(
      [`delete element inet tscni_masq pods4-${N} { 10.85.0.3 }`, `flush chain inet tscni_masq ${stale}`, `delete chain inet tscni_masq ${stale}`, ""].join("\n"),
    );
  });
});

describe("masqPlanText", () => {
  it("iptables: one restore text per family present", () => {
    const text = masqPlanText("iptables", target(["10.85.0.2/16", "fd00:85::2/64"]));
    expect(text.match(/^# \S+ --noflush -w$/gm)).toEqual(["# iptables-restore --noflush -w", "# ip6tables-restore --noflush -w"]);
  });
  it("nftables: one transaction", () => {
    expect(masqPlanText("nftables", target(["10.85.0.2/16"]))).toMatch(/^# nft -f -\nadd table inet tscni_masq\n/);
  });
});

describe("nftClosesOnlyAtEnd (whether DEL may settle when nft closes its socket)", () => {
  it("reads the version string out of the executable: 0.9.9 and later only", () => {
    const dir = mkdtempSync(join(tmpdir(), "tscni-nftv-"));
    try {
      const exe = (name: string, body: string): string => {
        const f = join(dir, name);
        writeFileSync(f, `\x7fELF\0GLIBC_2.2.5\0${body}\0more\0`, "latin1");
        return f;
      };
      expect(nftClosesOnlyAtEnd(exe("a", "1.0.6"))).toBe(true);
      expect(nftClosesOnlyAtEnd(exe("b", "0.9.9"))).toBe(true);
      expect(nftClosesOnlyAtEnd(exe("c", "0.9.8"))).toBe(false);
      expect(nftClosesOnlyAtEnd(exe("d", "no version here"))).toBe(false);
      expect(nftClosesOnlyAtEnd(join(dir, "missing"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says yes for this machine's nft, where there is one", () => {
    const nft = ["/usr/sbin/nft", "/sbin/nft"].find((p) => existsSync(p));
    if (nft) expect(nftClosesOnlyAtEnd(nft)).toBe(true);
  });
});
