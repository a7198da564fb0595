import { describe, expect, it } from "vitest";
import { validAttachments } from "../../pkg/attachments.js";
import { ConfigError } from "../../pkg/types/errors.js";

describe("validAttachments", () => {
  it("reads cni.dev/valid-attachments", () => {
    expect(validAttachments({ "cni.dev/valid-attachments": [{ containerID: "a", ifname: "eth0" }] })).toEqual([{ containerId: "a", ifname: "eth0" }]);
  });
  it("accepts cni.dev/attachments too", () => {
    expect(validAttachments({ "cni.dev/attachments": [{ containerID: "b", ifname: "net1" }] })).toEqual([{ containerId: "b", ifname: "net1" }]);
  });
  it("an empty list keeps nothing", () => {
    expect(validAttachments({ "cni.dev/valid-attachments": [] })).toEqual([]);
  });
  it("no list at all is undefined (callers release nothing)", () => {
    expect(validAttachments({})).toBeUndefined();
  });
  it.each([
    ["not a list", { "cni.dev/valid-attachments": "x" }],
    ["an entry without ifname", { "cni.dev/valid-attachments": [{ containerID: "a" }] }],
    ["a null entry", { "cni.dev/valid-attachments": [null] }],
  ])("%s is a config error (7)", (_name, conf) => {
    expect(() => validAttachments(conf)).toThrow(ConfigError);
  });
});
