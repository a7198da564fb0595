import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha512Hex } from "../../pkg/masq/sha512.js";

describe("sha512Hex (pure JS, keeps node:crypto off the start-up path)", () => {
  it("matches node:crypto for lengths 0..300 across block boundaries and non-ASCII", () => {
    for (let n = 0; n <= 300; n++) {
      const s = Array.from({ length: n }, (_, i) => String.fromCharCode(32 + ((i * 7 + n) % 900))).join("");
      expect(sha512Hex(s)).toBe(createHash("sha512").update(s, "utf8").digest("hex"));
    }
  });
  it("known vector", () => {
    expect(sha512Hex("abc")).toBe(
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    );
  });
});

describe("nftables marker", () => {
  it("is keyed by network and by this process's network namespace", async () => {
    const { nftMarker } = await import("../../pkg/masq/index.js");
    expect(nftMarker("net1", "/x")).toMatch(/^\/x\/nft-masq\.net1\.\d+$/);
  });
});
