import { describe, expect, it } from "vitest";
import { settleAll } from "../../pkg/settle.js";
import { CniError } from "../../pkg/types/errors.js";

describe("settleAll", () => {
  it("waits for every task and resolves when none failed", async () => {
    let late = false;
    await settleAll([Promise.resolve(1), new Promise((r) => setTimeout(() => r((late = true)), 20))]);
    expect(late).toBe(true);
  });

  it("throws the first failure, with the others' messages in its details", async () => {
    const slow = new Promise((_, rej) => setTimeout(() => rej(new CniError(11, "second", "x")), 10));
    const err = await settleAll([Promise.reject(new CniError(7, "first", "its details")), slow, Promise.resolve()]).catch((e) => e);
    expect(err).toMatchObject({ code: 7, message: "first", details: "its details\nsecond" });
  });

  it("a single failure is thrown as it is", async () => {
    const e = new CniError(4, "only");
    await expect(settleAll([Promise.resolve(), Promise.reject(e)])).rejects.toBe(e);
  });
});
