import { describe, expect, it } from "vitest";
import { loadConfig, parseCniArgs } from "../../ipam/host-local/config.js";
import { canonicalizeRangeSet, capacity } from "../../ipam/host-local/range-set.js";
import { formatIp } from "../../pkg/ip.js";
import type { NetConf } from "../../pkg/types/netconf.js";
import { CniError } from "../../pkg/types/errors.js";

const conf = (ipam: Record<string, unknown>, extra: Partial<NetConf> = {}): NetConf =>
  ({ cniVersion: "1.0.0", name: "net", type: "bridge", ipam: { type: "host-local", ...ipam }, ...extra }) as NetConf;

function codeOf(fn: () => unknown): { code: number; msg: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return { code: err.code, msg: err.message };
    throw err;
  }
  throw new Error("expected an error");
}

describe("canonicalizeRangeSet", () => {
  it("fills in gateway, start and end (IPv4 end skips broadcast)", () => {
    const [r] = canonicalizeRangeSet([{ subnet: "10.85.0.0/16" }], 0);
    expect(formatIp(r!.gateway)).toBe("10.85.0.1");
    expect(formatIp(r!.start)).toBe("10.85.0.1");
    expect(formatIp(r!.end)).toBe("10.85.255.254");
  });

  it("IPv6 end is the last address", () => {
    const [r] = canonicalizeRangeSet([{ subnet: "fd00::/64" }], 0);
    expect(formatIp(r!.end)).toBe("fd00::ffff:ffff:ffff:ffff");
    expect(formatIp(r!.gateway)).toBe("fd00::1");
  });

  it("keeps explicit values", () => {
    const [r] = canonicalizeRangeSet([{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20", gateway: "10.0.0.254" }], 0);
    expect([r!.start, r!.end, r!.gateway].map(formatIp)).toEqual(["10.0.0.10", "10.0.0.20", "10.0.0.254"]);
  });

  it("/30 is the smallest IPv4 subnet; capacity counts usable addresses", () => {
    expect(capacity(canonicalizeRangeSet([{ subnet: "10.0.0.0/30" }], 0))).toBe(1n);
    expect(capacity(canonicalizeRangeSet([{ subnet: "10.0.0.0/24" }], 0))).toBe(253n);
    expect(capacity(canonicalizeRangeSet([{ subnet: "fd00::/64" }], 0))).toBe((1n << 64n) - 2n);
  });

  const bad: [string, unknown, RegExp][] = [
    ["host bits", [{ subnet: "10.0.0.1/24" }], /range set 3: .*host bits.*10\.0\.0\.0\/24/],
    ["/31", [{ subnet: "10.0.0.0/31" }], /range set 3: .*too small/],
    ["/32", [{ subnet: "10.0.0.1/32" }], /range set 3/],
    ["/127", [{ subnet: "fd00::/127" }], /too small/],
    ["not a cidr", [{ subnet: "10.0.0.0" }], /not a CIDR/],
    ["no subnet", [{}], /"subnet" is missing/],
    ["start outside", [{ subnet: "10.0.0.0/24", rangeStart: "10.0.1.5" }], /rangeStart 10\.0\.1\.5 is not in subnet/],
    ["end outside", [{ subnet: "10.0.0.0/24", rangeEnd: "10.0.1.5" }], /rangeEnd/],
    ["reversed", [{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.50", rangeEnd: "10.0.0.40" }], /is after rangeEnd/],
    ["gateway outside", [{ subnet: "10.0.0.0/24", gateway: "10.0.1.1" }], /gateway 10\.0\.1\.1 is not in subnet/],
    ["gateway = network", [{ subnet: "10.0.0.0/24", gateway: "10.0.0.0" }], /network address/],
    ["gateway = broadcast", [{ subnet: "10.0.0.0/24", gateway: "10.0.0.255" }], /broadcast address/],
    ["gateway other family", [{ subnet: "10.0.0.0/24", gateway: "fd00::1" }], /address family/],
    ["bad ip", [{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.300" }], /not an IP address/],
    ["empty set", [], /empty range set/],
    ["not an array", { subnet: "10.0.0.0/24" }, /must be an array/],
    ["mixed families", [{ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }], /mixed address families/],
    ["overlap within set", [{ subnet: "10.0.0.0/24" }, { subnet: "10.0.0.0/25" }], /overlap/],
  ];
  it.each(bad)("rejects %s with code 7 naming the set", (_name, raw, re) => {
    const e = codeOf(() => canonicalizeRangeSet(raw, 3));
    expect(e.code).toBe(7);
    expect(e.msg).toMatch(re);
  });

  it("allows disjoint windows of one subnet in a set", () => {
    expect(
      canonicalizeRangeSet(
        [
          { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" },
          { subnet: "10.0.0.0/24", rangeStart: "10.0.0.20", rangeEnd: "10.0.0.29" },
        ],
        0,
      ),
    ).toHaveLength(2);
  });
});

describe("loadConfig", () => {
  it("folds the legacy single range in front of ranges", () => {
    const c = loadConfig(conf({ subnet: "10.1.0.0/24", gateway: "10.1.0.254", ranges: [[{ subnet: "fd00::/64" }]] }), "");
    expect(c.rangeSets).toHaveLength(2);
    expect(formatIp(c.rangeSets[0]![0]!.gateway)).toBe("10.1.0.254");
    expect(c.dataDir).toBe("/var/lib/cni/networks");
    expect(c.network).toBe("net");
  });

  it("runtimeConfig.ipRanges replaces the configured ranges", () => {
    const c = loadConfig(conf({ ranges: [[{ subnet: "10.1.0.0/24" }]] }, { runtimeConfig: { ipRanges: [[{ subnet: "10.9.0.0/24" }]] } }), "");
    expect(c.rangeSets.map((s) => formatIp(s[0]!.subnet.ip))).toEqual(["10.9.0.0"]);
  });

  it("rejects missing ipam, missing ranges, overlapping sets", () => {
    expect(codeOf(() => loadConfig({ cniVersion: "1.0.0", name: "n", type: "x" }, "")).code).toBe(7);
    expect(codeOf(() => loadConfig(conf({}), "")).msg).toMatch(/no IP ranges/);
    const e = codeOf(() => loadConfig(conf({ ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.0.0.0/16" }]] }), ""));
    expect(e).toEqual({ code: 7, msg: "range set 0 overlaps with range set 1" });
  });

  it("cniVersion < 0.3.0 allows one address per family", () => {
    const two = { ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.1.0.0/24" }]] };
    expect(codeOf(() => loadConfig(conf(two, { cniVersion: "0.2.0" }), "")).msg).toMatch(/more than one address per family/);
    expect(loadConfig(conf(two, { cniVersion: "0.3.1" }), "").rangeSets).toHaveLength(2);
  });

  it("merges requested IPs from CNI_ARGS, args.cni.ips and runtimeConfig.ips", () => {
    const c = loadConfig(
      conf({ ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }], [{ subnet: "10.1.0.0/24" }]] }, { args: { cni: { ips: ["fd00::5"] } }, runtimeConfig: { ips: ["10.1.0.7/24"] } }),
      "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.0.0.9",
    );
    expect(c.requested.map((a) => a && formatIp(a))).toEqual(["10.0.0.9", "fd00::5", "10.1.0.7"]);
  });

  it("CNI_ARGS IP takes a comma list", () => {
    const c = loadConfig(conf({ ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }]] }), "IP=10.0.0.9,fd00::9");
    expect(c.requested.map((a) => a && formatIp(a))).toEqual(["10.0.0.9", "fd00::9"]);
  });

  const badRequests: [string, string, Partial<NetConf>, number, RegExp][] = [
    ["outside every set", "IP=10.9.9.9", {}, 7, /not in any range set/],
    ["the gateway", "IP=10.0.0.1", {}, 7, /is the gateway of range set 0/],
    ["the broadcast", "IP=10.0.0.255", {}, 7, /not in any range set/],
    ["two in one set", "IP=10.0.0.5,10.0.0.6", {}, 7, /both in range set 0/],
    ["garbage", "IP=nope", {}, 7, /not an IP address/],
    ["unknown CNI_ARGS key", "FOO=1", {}, 4, /unknown args "FOO"/],
    ["bad pair", "IP", {}, 4, /invalid pair/],
    ["bad IgnoreUnknown", "IgnoreUnknown=maybe", {}, 4, /not a boolean/],
    ["args.cni.ips not array", "", { args: { cni: { ips: "10.0.0.5" } } }, 7, /must be an array/],
  ];
  it.each(badRequests)("requested IP %s -> code", (_n, args, extra, code, re) => {
    const e = codeOf(() => loadConfig(conf({ ranges: [[{ subnet: "10.0.0.0/24" }]] }, extra), args));
    expect(e.code).toBe(code);
    expect(e.msg).toMatch(re);
  });

  it("validates routes", () => {
    expect(loadConfig(conf({ subnet: "10.0.0.0/24", routes: [{ dst: "0.0.0.0/0" }] }), "").routes).toEqual([{ dst: "0.0.0.0/0" }]);
    expect(codeOf(() => loadConfig(conf({ subnet: "10.0.0.0/24", routes: [{ dst: "x" }] }), "")).code).toBe(7);
    expect(codeOf(() => loadConfig(conf({ subnet: "10.0.0.0/24", routes: [{ dst: "0.0.0.0/0", gw: "x" }] }), "")).code).toBe(7);
  });
});

describe("parseCniArgs", () => {
  it("IgnoreUnknown lets unknown keys pass, tolerates empty pairs", () => {
    const m = parseCniArgs("IgnoreUnknown=true;K8S_POD_NAMESPACE=ns;;IP=10.0.0.2;", ["IP"]);
    expect(m.get("IP")).toBe("10.0.0.2");
    expect(m.get("K8S_POD_NAMESPACE")).toBe("ns");
  });
});
