import { describe, expect, it } from "vitest";
import { pollUntil } from "../../pkg/poll.js";

describe("pollUntil", () => {
  it("resolves once the check is true, checking every ms at first", async () => {
    let calls = 0;
    const t0 = performance.now();
    await pollUntil(() => ++calls >= 5, new Promise(() => {}));
    expect(calls).toBe(5);
    expect(performance.now() - t0).toBeLessThan(30);
  });

  it("backs off after the fast phase: far fewer checks than milliseconds", async () => {
    let calls = 0;
    const t0 = performance.now();
    await pollUntil(() => (++calls, performance.now() - t0 > 300), new Promise(() => {}), 20, 15);
    expect(calls).toBeLessThan(80); // 1 ms polling would be ~300
  });

  it("stops checking once `until` settles, and never resolves", async () => {
    let calls = 0;
    let stop: () => void = () => {};
    const until = new Promise<void>((r) => (stop = r));
    let resolved = false;
    void pollUntil(() => (++calls, false), until).then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 10));
    stop();
    await new Promise((r) => setTimeout(r, 5));
    const seen = calls;
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBeLessThanOrEqual(seen + 1);
    expect(resolved).toBe(false);
  });
});
