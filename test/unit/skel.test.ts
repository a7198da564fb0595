import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig, parseEnv, runPlugin } from "../../pkg/skel.js";
import type { Handlers } from "../../pkg/skel.js";
import { readStdin } from "../../pkg/stdin.js";
import { CniError, ConfigError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";

const ENV = { CNI_CONTAINERID: "c1", CNI_NETNS: "/var/run/netns/p", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" };
const CONF = { cniVersion: "1.0.0", name: "n", type: "t" };

function handlers(over: Partial<Handlers> = {}, seen: Invocation[] = []): Handlers {
  const rec = (inv: Invocation) => void seen.push(inv);
  return {
    add: async (inv) => (rec(inv), { cniVersion: "1.1.0", ips: [{ address: "10.0.0.2/24" }] }),
    del: async (inv) => rec(inv),
    check: async (inv) => rec(inv),
    status: async (inv) => rec(inv),
    gc: async (inv) => rec(inv),
    ...over,
  };
}

async function run(env: Record<string, string | undefined>, stdin: string | object = CONF, h = handlers()) {
  let out = "";
  let err = "";
  let reads = 0;
  const code = await runPlugin("about line", h, {
    env,
    readStdin: async () => (reads++, typeof stdin === "string" ? stdin : JSON.stringify(stdin)),
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
  });
  return { code, out, err, reads, json: out ? JSON.parse(out) : undefined };
}

describe("runPlugin", () => {
  it("without CNI_COMMAND prints the about line and versions to stderr", async () => {
    const r = await run({});
    expect(r).toMatchObject({ code: 0, out: "" });
    expect(r.err).toMatch(/^about line; CNI protocol versions supported: 0\.1\.0, .*1\.1\.0\n$/);
  });

  it("VERSION answers without env; echoes a supported version, else the latest", async () => {
    expect((await run({ CNI_COMMAND: "VERSION" }, { cniVersion: "0.4.0" })).json).toEqual({
      cniVersion: "0.4.0",
      supportedVersions: ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
    expect((await run({ CNI_COMMAND: "VERSION" }, "")).json.cniVersion).toBe("1.1.0");
    expect((await run({ CNI_COMMAND: "VERSION" }, { cniVersion: "9.9.9" })).json.cniVersion).toBe("1.1.0");
  });

  it("unknown command is code 4", async () => {
    expect((await run({ ...ENV, CNI_COMMAND: "FROB" })).json).toMatchObject({ code: 4 });
  });

  it("collects every missing variable in one code-4 error, before reading stdin", async () => {
    const r = await run({ CNI_COMMAND: "ADD" });
    expect(r.json).toMatchObject({ code: 4, msg: "required environment variables missing: CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH" });
    expect(r.reads).toBe(0);
  });

  it.each([
    ["DEL", ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"]],
    ["CHECK", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]],
    ["STATUS", ["CNI_PATH"]],
    ["GC", ["CNI_PATH"]],
  ])("%s requires %j", async (command, vars) => {
    expect(() => parseEnv(command as never, {})).toThrow(`required environment variables missing: ${vars.join(", ")}`);
  });

  it.each([
    [{ CNI_CONTAINERID: "-bad" }, /CNI_CONTAINERID/],
    [{ CNI_CONTAINERID: "a/b" }, /CNI_CONTAINERID/],
    [{ CNI_NETNS: "relative" }, /CNI_NETNS/],
    [{ CNI_IFNAME: "a-very-long-interface" }, /CNI_IFNAME.*15/],
    [{ CNI_IFNAME: "ééééééééé" }, /CNI_IFNAME.*15 bytes/],
    [{ CNI_IFNAME: "a/b" }, /CNI_IFNAME/],
    [{ CNI_IFNAME: ".." }, /CNI_IFNAME/],
  ])("rejects invalid %j with code 4", async (bad, re) => {
    const r = await run({ ...ENV, CNI_COMMAND: "ADD", ...bad });
    expect(r.json.code).toBe(4);
    expect(r.json.msg).toMatch(re);
  });

  it("parses the invocation", async () => {
    const seen: Invocation[] = [];
    await run({ ...ENV, CNI_COMMAND: "ADD", CNI_ARGS: "A=1", CNI_PATH: "/a::/b" }, CONF, handlers({}, seen));
    expect(seen[0]).toMatchObject({ command: "ADD", containerId: "c1", netns: "/var/run/netns/p", ifname: "eth0", args: "A=1", path: ["/a", "/b"], config: CONF });
  });

  it("prints the ADD result in the config's version", async () => {
    const r = await run({ ...ENV, CNI_COMMAND: "ADD" }, { ...CONF, cniVersion: "0.4.0" });
    expect(r.json).toEqual({ cniVersion: "0.4.0", ips: [{ version: "4", address: "10.0.0.2/24" }] });
  });

  it.each([
    ["not json", "{", 6],
    ["not an object", "[1]", 6],
    ["unsupported version", { ...CONF, cniVersion: "0.5.0" }, 1],
    ["cniVersion not a string", { ...CONF, cniVersion: 1 }, 6],
    ["no name", { cniVersion: "1.0.0", type: "t" }, 7],
    ["bad name", { ...CONF, name: "a b" }, 7],
  ])("%s -> its code", async (_n, stdin, code) => {
    expect((await run({ ...ENV, CNI_COMMAND: "ADD" }, stdin as object)).json.code).toBe(code);
  });

  it("CHECK needs 0.4.0, STATUS and GC need 1.1.0 (code 1)", async () => {
    expect((await run({ ...ENV, CNI_COMMAND: "CHECK" }, { ...CONF, cniVersion: "0.3.1" })).json.code).toBe(1);
    expect((await run({ ...ENV, CNI_COMMAND: "STATUS" }, { ...CONF, cniVersion: "1.0.0" })).json.code).toBe(1);
    expect((await run({ ...ENV, CNI_COMMAND: "GC" }, { ...CONF, cniVersion: "1.1.0" })).code).toBe(0);
  });

  it("missing cniVersion means 0.1.0", () => {
    expect(parseConfig("ADD", '{"name":"n","type":"t"}').cniVersion).toBe("0.1.0");
  });

  it("passes CNI errors through, wraps others as 999", async () => {
    const e1 = await run({ ...ENV, CNI_COMMAND: "DEL" }, CONF, handlers({ del: async () => Promise.reject(new ConfigError("bad", "why")) }));
    expect(e1.json).toEqual({ cniVersion: "1.0.0", code: 7, msg: "bad", details: "why" });
    const e2 = await run({ ...ENV, CNI_COMMAND: "DEL" }, CONF, handlers({ del: async () => Promise.reject(new Error("boom")) }));
    expect(e2.json).toMatchObject({ code: 999, msg: "boom" });
    expect(e2.code).toBe(1);
    const e3 = await run({ ...ENV, CNI_COMMAND: "DEL" }, CONF, handlers({ del: async () => Promise.reject(new CniError(11, "later")) }));
    expect(e3.json.code).toBe(11);
  });
});

describe("readStdin", () => {
  it("reads a file to its end and refuses more than the limit (code 5)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tscni-stdin-"));
    try {
      const f = join(dir, "big");
      writeFileSync(f, "x".repeat(200_000));
      let fd = openSync(f, "r");
      await expect(readStdin(fd)).resolves.toHaveLength(200_000);
      closeSync(fd);
      fd = openSync(f, "r");
      await expect(readStdin(fd, 100_000)).rejects.toMatchObject({ code: 5 });
      closeSync(fd);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A FIFO whose writer runs `script` (sh) with stdout on the FIFO; returns the read end. */
  function fifoFrom(dir: string, script: string): number {
    const f = join(dir, "fifo");
    spawnSync("mkfifo", [f]);
    spawn("sh", ["-c", `exec > ${f}; ${script}`], { stdio: "ignore" });
    return openSync(f, "r"); // blocks until the writer has opened it
  }

  it("reads a pipe the writer already closed, and one it is still writing to", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tscni-stdin-"));
    try {
      let fd = fifoFrom(dir, "printf '{\"a\":1}'");
      await new Promise((r) => setTimeout(r, 100)); // the writer is gone: all of it is there
      await expect(readStdin(fd)).resolves.toBe('{"a":1}');
      closeSync(fd);
      rmSync(join(dir, "fifo"));
      fd = fifoFrom(dir, "printf 'first '; sleep 0.2; printf second");
      await expect(readStdin(fd)).resolves.toBe("first second");
      closeSync(fd);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives up on a writer that never closes (code 5)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tscni-stdin-"));
    try {
      const fd = fifoFrom(dir, "printf partial; sleep 1");
      await expect(readStdin(fd, 1000, 200)).rejects.toMatchObject({ code: 5, message: expect.stringContaining("did not end") });
      closeSync(fd);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
