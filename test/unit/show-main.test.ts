// Argument parsing and error paths of `tscni show`. Nothing here reaches the spawns of
// collect.ts (which must only run inside a test netns): every case fails or answers first.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nftChainComments, parseNftTable, readCache } from "../../plugins/show/collect.js";
import { DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, parseShowArgs, runShow, USAGE } from "../../plugins/show/main.js";

async function show(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runShow(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe("parseShowArgs", () => {
  it("defaults", () => {
    expect(parseShowArgs([])).toEqual({ dataDir: DEFAULT_DATA_DIR, cacheDir: DEFAULT_CACHE_DIR, json: false, noTrunc: false, help: false });
  });
  it("every option, both spellings of a value", () => {
    expect(parseShowArgs(["--data-dir", "/d", "--network=mynet", "--json", "--no-trunc", "--cache-dir", "/c"])).toEqual({
      dataDir: "/d", network: "mynet", cacheDir: "/c", json: true, noTrunc: true, help: false,
    });
  });
  it.each([
    [["--bogus"], /^unknown option '--bogus'$/],
    [["extra"], /positional/i],
    [["--data-dir"], /argument missing/i],
    [["--data-dir="], /must not be empty/],
    [["--network", "../etc"], /not a network name/],
  ])("%j is a usage error", (argv, msg) => {
    expect(() => parseShowArgs(argv)).toThrow(msg);
  });
});

describe("runShow", () => {
  it("--help prints the usage on stdout, exit 0", async () => {
    expect(await show(["--help"])).toEqual({ code: 0, stdout: USAGE, stderr: "" });
    expect((await show(["-h"])).stdout).toMatch(/^usage: tscni show /);
  });
  it("a bad option: one message and a pointer to --help on stderr, exit 1", async () => {
    expect(await show(["--jsn"])).toEqual({ code: 1, stdout: "", stderr: "tscni show: unknown option '--jsn'\n(see tscni show --help)\n" });
  });
  it("a missing data dir, exit 1", async () => {
    const r = await show(["--data-dir", "/nonexistent/tscni-show-test"]);
    expect(r).toEqual({ code: 1, stdout: "", stderr: "tscni show: data dir /nonexistent/tscni-show-test does not exist (host-local's dataDir; set it with --data-dir)\n" });
  });
  it("a data dir that is a file, exit 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tscni-show-unit-"));
    try {
      writeFileSync(join(dir, "f"), "");
      const r = await show(["--data-dir", join(dir, "f")]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/is not a directory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("nft listing parsers", () => {
  const chain = "pod-a5855bd82c6a57c4-a4b813520bd6a3fb";
  it("parseNftTable: chains and map elements with their jump target", () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6" } },
        { table: { family: "inet", name: "tscni_masq" } },
        { map: { name: "pods4-a5855bd82c6a57c4", type: "ipv4_addr", map: "verdict", elem: [["10.86.0.2", { jump: { target: chain } }]] } },
        { map: { name: "pods6-a5855bd82c6a57c4", type: "ipv6_addr", map: "verdict" } },
        { chain: { name: "nat-a5855bd82c6a57c4", type: "nat", hook: "postrouting" } },
        { chain: { name: chain } },
        { rule: { chain } },
      ],
    });
    expect(parseNftTable(json)).toEqual({
      chains: [{ name: "nat-a5855bd82c6a57c4" }, { name: chain }],
      elements: [{ map: "pods4-a5855bd82c6a57c4", ip: "10.86.0.2", target: chain }],
    });
  });
  it("nftChainComments: comments from the text listing (nft's JSON omits them)", () => {
    const text = `table inet tscni_masq {
\tchain nat-a5855bd82c6a57c4 {
\t\tcomment "net: net2"
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t}

\tchain ${chain} {
\t\tcomment "net: net2, if: eth0, id: ctr-cccc"
\t\tip daddr 10.86.0.0/16 return
\t}

\tchain bare {
\t\tip daddr 10.0.0.0/8 return
\t}
}
`;
    expect([...nftChainComments(text)]).toEqual([
      ["nat-a5855bd82c6a57c4", "net: net2"],
      [chain, "net: net2, if: eth0, id: ctr-cccc"],
    ]);
  });
});

describe("readCache", () => {
  it("reads libcni's cached result, and never a path a reservation's content leads outside results/ to", () => {
    const dir = mkdtempSync(join(tmpdir(), "tscni-show-cache-"));
    try {
      mkdirSync(join(dir, "results"));
      const cached = JSON.stringify({ result: { interfaces: [{ name: "veth1" }, { name: "eth0", sandbox: "/run/netns/x" }] } });
      writeFileSync(join(dir, "results", "net-c1-eth0"), cached);
      writeFileSync(join(dir, "outside"), cached);
      writeFileSync(join(dir, "outside-eth0"), cached);
      mkdirSync(join(dir, "results", "net-x-")); // Linux resolves ".." only through directories that exist
      expect(readCache(dir, [
        { network: "net", ip: "10.0.0.2", containerId: "c1", ifname: "eth0" },
        // "net-x-" + "/../../outside" resolves to <dir>/outside
        { network: "net", ip: "10.0.0.3", containerId: "x", ifname: "/../../outside" },
        { network: "net", ip: "10.0.0.4", containerId: "x-/../../outside", ifname: "eth0" },
      ])).toEqual([{ network: "net", containerId: "c1", ifname: "eth0", hostInterfaces: ["veth1"] }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
