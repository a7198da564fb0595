import { describe, expect, it } from "vitest";
import {
  compareIp, contains, formatCidr, formatIp, hasHostBits, lastOf, maskOf, networkOf, nextIp, overlaps, parseCidr, parseIp, prevIp, subnetOf,
} from "../../pkg/ip.js";

const ip = (s: string) => parseIp(s)!;
const cidr = (s: string) => parseCidr(s)!;

describe("parseIp / formatIp", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["FD00:0:0:1:0:0:0:2", "fd00:0:0:1::2"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0001:0001:0001:0001:0001", "2001:db8:0:1:1:1:1:1"],
    ["2001:db8::", "2001:db8::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"],
    ["::ffff:10.1.2.3", "::ffff:a01:203"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
  ])("%s -> %s (Go net.IP.String())", (input, out) => {
    expect(formatIp(ip(input))).toBe(out);
  });

  it.each(["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-1", " 1.2.3.4", "1:2:3:4:5:6:7:8:9", "1::2::3", ":1::", "1:::2", "12345::", "g::", "fe80::1%eth0", "1:2:3:4:5:6:7:8::", "::1.2.3", "1.2.3.4::"])(
    "rejects %j",
    (s) => {
      expect(parseIp(s)).toBeUndefined();
    },
  );
});

describe("cidr math", () => {
  it("parses and validates prefixes", () => {
    expect(formatCidr(cidr("10.0.0.0/8"))).toBe("10.0.0.0/8");
    for (const bad of ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "fd00::/129", "10.0.0.0", "x/8"]) expect(parseCidr(bad)).toBeUndefined();
  });

  it("network, last, host bits, subnet", () => {
    const c = cidr("10.1.2.3/16");
    expect(formatIp(networkOf(c))).toBe("10.1.0.0");
    expect(formatIp(lastOf(c))).toBe("10.1.255.255");
    expect(hasHostBits(c)).toBe(true);
    expect(formatCidr(subnetOf(c))).toBe("10.1.0.0/16");
    expect(hasHostBits(cidr("10.1.0.0/16"))).toBe(false);
    expect(formatIp(lastOf(cidr("fd00::/64")))).toBe("fd00::ffff:ffff:ffff:ffff");
    expect(formatIp(networkOf(cidr("0.0.0.0/0")))).toBe("0.0.0.0");
    expect(formatIp(lastOf(cidr("::/0")))).toBe("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  });

  it("contains and overlaps respect families", () => {
    expect(contains(cidr("10.0.0.0/8"), ip("10.255.0.1"))).toBe(true);
    expect(contains(cidr("10.0.0.0/8"), ip("11.0.0.0"))).toBe(false);
    expect(contains(cidr("::/0"), ip("10.0.0.1"))).toBe(false);
    expect(contains(cidr("0.0.0.0/0"), ip("::1"))).toBe(false);
    expect(overlaps(cidr("10.0.0.0/8"), cidr("10.1.0.0/16"))).toBe(true);
    expect(overlaps(cidr("10.1.0.0/16"), cidr("10.0.0.0/8"))).toBe(true);
    expect(overlaps(cidr("10.0.0.0/16"), cidr("10.1.0.0/16"))).toBe(false);
  });

  it("next/prev wrap, compare orders families then values", () => {
    expect(formatIp(nextIp(ip("10.0.0.255")))).toBe("10.0.1.0");
    expect(formatIp(nextIp(ip("255.255.255.255")))).toBe("0.0.0.0");
    expect(formatIp(prevIp(ip("0.0.0.0")))).toBe("255.255.255.255");
    expect(formatIp(nextIp(ip("fd00::ffff")))).toBe("fd00::1:0");
    expect(compareIp(ip("10.0.0.2"), ip("10.0.0.10"))).toBeLessThan(0);
    expect(compareIp(ip("255.0.0.0"), ip("::"))).toBeLessThan(0);
  });

  it("maskOf", () => {
    expect(formatIp(maskOf(cidr("10.0.0.0/8")))).toBe("255.0.0.0");
    expect(formatIp(maskOf(cidr("10.0.0.0/0")))).toBe("0.0.0.0");
    expect(formatIp(maskOf(cidr("fd00::/64")))).toBe("ffff:ffff:ffff:ffff::");
  });
});
