import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, utimesSync } from "node:fs";
import { getPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireLock, parseOwner, withLock } from "../../pkg/lock.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tscni-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A child that takes the lock the same way (link of a full owner record) and sleeps. */
function holder(path: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const script = `
    const fs = require("fs");
    const start = fs.readFileSync("/proc/self/stat", "latin1").split(") ")[1].split(" ")[19];
    const ns = fs.readlinkSync("/proc/self/ns/pid");
    const tmp = ${JSON.stringify(path)} + ".child";
    fs.writeFileSync(tmp, "tscni-lock pid=" + process.pid + " start=" + start + " pidns=" + ns + " nonce=child\\n");
    fs.linkSync(tmp, ${JSON.stringify(path)}); fs.unlinkSync(tmp);
    process.stdout.write("held\\n"); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.stdout.once("data", () =>
      resolve({
        pid: child.pid!,
        kill: () =>
          new Promise<void>((r) => {
            child.once("exit", () => r());
            process.kill(child.pid!, "SIGKILL");
          }),
      }),
    );
  });
}

describe("acquireLock", () => {
  it("is exclusive within a process and released after use", async () => {
    const path = join(dir, "lock.tscni");
    let inside = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        withLock(path, async () => {
          inside++;
          max = Math.max(max, inside);
          await new Promise((r) => setTimeout(r, 2));
          inside--;
        }),
      ),
    );
    expect(max).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("runs a holder that had to wait at holderNice while it holds the lock, and puts it back", async () => {
    const before = getPriority();
    const path = join(dir, "lock");
    const first = await acquireLock(path, { holderNice: before - 5 });
    // Uncontended: nothing to win, no node:os, no change.
    expect(getPriority()).toBe(before);
    const second = acquireLock(path, { holderNice: before - 5 });
    await new Promise((r) => setTimeout(r, 20));
    first.release();
    const held = await second;
    // Lowering one's nice value needs CAP_SYS_NICE; without it the lock works unchanged.
    expect([before - 5, before]).toContain(getPriority());
    if (process.getuid?.() === 0) expect(getPriority()).toBe(before - 5);
    held.release();
    expect(getPriority()).toBe(before);
  });

  it("waits for a live holder in another process and times out with code 11", async () => {
    const path = join(dir, "lock.tscni");
    const h = await holder(path);
    try {
      await expect(acquireLock(path, { timeoutMs: 150 })).rejects.toMatchObject({ code: 11, details: `held by pid ${h.pid}` });
    } finally {
      await h.kill();
    }
  });

  it("takes over at once from a holder killed with SIGKILL", async () => {
    const path = join(dir, "lock.tscni");
    const h = await holder(path);
    const waiting = acquireLock(path, { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    const killedAt = Date.now();
    await h.kill();
    const held = await waiting;
    expect(Date.now() - killedAt).toBeLessThan(500);
    expect(parseOwner(readFileSync(path, "utf8"))?.pid).toBe(process.pid);
    held.release();
    expect(existsSync(path)).toBe(false);
  });

  it("breaks an unparseable lock only once it is old", async () => {
    const path = join(dir, "lock.tscni");
    writeFileSync(path, "garbage");
    await expect(acquireLock(path, { timeoutMs: 50 })).rejects.toMatchObject({ code: 11 });
    const old = new Date(Date.now() - 10_000);
    utimesSync(path, old, old);
    (await acquireLock(path, { timeoutMs: 50 })).release();
  });

  it("an owner in another pid namespace is stale only after foreignStaleMs", async () => {
    const path = join(dir, "lock.tscni");
    writeFileSync(path, "tscni-lock pid=1 start=1 pidns=pid:[1] nonce=x\n");
    await expect(acquireLock(path, { timeoutMs: 50 })).rejects.toMatchObject({ code: 11 });
    (await acquireLock(path, { timeoutMs: 50, foreignStaleMs: 0 })).release();
  });

  it("a recorded pid that was reused (other start time) is dead", async () => {
    const path = join(dir, "lock.tscni");
    const ns = readlinkSync("/proc/self/ns/pid");
    writeFileSync(path, `tscni-lock pid=1 start=99999999999 pidns=${ns} nonce=x\n`);
    (await acquireLock(path, { timeoutMs: 50 })).release();
  });
});
