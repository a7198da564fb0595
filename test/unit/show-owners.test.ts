import { describe, expect, it } from "vitest";
import { ownerComment } from "../../pkg/masq/names.js";
import { ownerAlias } from "../../plugins/bridge/add.js";
import { parseNftComment, parseOwnerAlias, parseOwnerComment } from "../../plugins/show/owners.js";

describe("parseOwnerAlias", () => {
  it("reads back what the bridge plugin sets", () => {
    expect(parseOwnerAlias(ownerAlias("cbr0", "abc123", "eth0"))).toEqual({ network: "cbr0", ifname: "eth0", containerId: "abc123" });
  });
  it("keeps colons that belong to the container ID", () => {
    expect(parseOwnerAlias("tscni:net:net1:a:b")).toEqual({ network: "net", ifname: "net1", containerId: "a:b" });
  });
  it("flags an alias cut at 255 characters", () => {
    const id = "x".repeat(300);
    const o = parseOwnerAlias(ownerAlias("n", id, "eth0"));
    expect(o?.truncated).toBe(true);
    expect(id.startsWith(o!.containerId)).toBe(true);
  });
  it.each(["", "tscni", "tscni:net", "tscni:net:eth0", "tscni:net:eth0:", "other:net:eth0:id", "TSCNI:n:e:i"])("rejects %j", (a) => {
    expect(parseOwnerAlias(a)).toBeUndefined();
  });
});

describe("parseOwnerComment", () => {
  it.each([
    ["mynet", "0123abcd"],
    ["k8s-pod-network", "with \"quotes\" and \\ backslash"],
    ["n", "tab\there"],
  ])("round-trips %s / %s", (net, id) => {
    expect(parseOwnerComment(ownerComment(net, id))).toEqual({ network: net, containerId: id });
  });
  it.each([
    'dnat name: "mynet" id: "abc"', // portmap
    'name: "mynet" id: "abc" extra',
    'name: mynet id: "abc"',
    "",
  ])("rejects %j", (c) => {
    expect(parseOwnerComment(c)).toBeUndefined();
  });
});

describe("parseNftComment", () => {
  it("reads the attachment chain comment", () => {
    expect(parseNftComment("net: net2, if: eth0, id: ctr-cccc")).toEqual({ network: "net2", ifname: "eth0", containerId: "ctr-cccc" });
  });
  it("flags a comment cut at nft's limit", () => {
    const c = `net: n, if: eth0, id: ${"y".repeat(200)}`.slice(0, 128);
    expect(parseNftComment(c)?.truncated).toBe(true);
  });
  it("rejects the network chain's comment", () => {
    expect(parseNftComment("net: net2")).toBeUndefined();
  });
});
