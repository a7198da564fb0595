import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHandlers, reservedBefore } from "../../ipam/host-local/commands.js";
import { runPlugin } from "../../pkg/skel.js";
import type { Command, Invocation, NetConf } from "../../pkg/types/netconf.js";

let dataDir: string;
let logs: string[];
let h: ReturnType<typeof createHandlers>;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "tscni-hl-cmd-"));
  logs = [];
  h = createHandlers({ log: (l) => logs.push(l) });
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

function conf(ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): NetConf {
  return { cniVersion: "1.1.0", name: "net1", type: "bridge", ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "fd00:0:0:1::/64" }]], ...ipam }, ...extra } as NetConf;
}

function inv(command: Command, config: NetConf, containerId = "c1", ifname = "eth0", args = ""): Invocation {
  return { command, containerId, netns: "/var/run/netns/x", ifname, args, path: [], stdin: JSON.stringify(config), config };
}

const files = () => readdirSync(join(dataDir, "net1")).sort();

async function codeOf(p: Promise<unknown>): Promise<{ code: number; msg: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: number; message: string };
    return { code: err.code, msg: err.message };
  }
  throw new Error("expected failure");
}

describe("ADD", () => {
  it("returns one address per range set, with routes and dns", async () => {
    const resolv = join(dataDir, "resolv.conf");
    writeFileSync(resolv, "# c\nnameserver 10.0.0.53\nnameserver fd00::53\ndomain example.test\nsearch a.test b.test\noptions ndots:2 rotate\n");
    const r = await h.add(inv("ADD", conf({ resolvConf: resolv, routes: [{ dst: "0.0.0.0/0" }] })));
    expect(r).toEqual({
      cniVersion: "1.1.0",
      ips: [
        { address: "10.10.0.2/24", gateway: "10.10.0.1" },
        { address: "fd00:0:0:1::2/64", gateway: "fd00:0:0:1::1" },
      ],
      routes: [{ dst: "0.0.0.0/0" }],
      dns: { nameservers: ["10.0.0.53", "fd00::53"], domain: "example.test", search: ["a.test", "b.test"], options: ["ndots:2", "rotate"] },
    });
    expect(files()).toEqual(["10.10.0.2", "fd00:0:0:1::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
  });

  it("re-ADD of the same attachment returns the same addresses", async () => {
    const a = await h.add(inv("ADD", conf()));
    const b = await h.add(inv("ADD", conf()));
    expect(b).toEqual(a);
    // The bridge's rollback keeps a reservation only when the ADD found all of it in place.
    expect([reservedBefore(a), reservedBefore(b)]).toEqual([false, true]);
    const c = await h.add(inv("ADD", conf(), "c1", "eth1"));
    expect(c.ips![0]!.address).toBe("10.10.0.3/24");
  });

  it("a failure in a later range set releases what was reserved, nothing stays", async () => {
    await h.add(inv("ADD", conf(), "other", "eth0", "IP=fd00:0:0:1::9"));
    const e = await codeOf(h.add(inv("ADD", conf(), "c1", "eth0", "IP=fd00:0:0:1::9")));
    expect(e.code).toBe(11);
    expect(e.msg).toMatch(/range set 1: requested IP fd00:0:0:1::9 is already reserved by other\/eth0/);
    expect(files()).toEqual(["10.10.0.2", "fd00:0:0:1::9", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
  });

  it("requested IP outside every set is code 7 before anything is touched", async () => {
    const e = await codeOf(h.add(inv("ADD", conf(), "c1", "eth0", "IP=192.0.2.1")));
    expect(e.code).toBe(7);
    expect(existsSync(join(dataDir, "net1"))).toBe(false);
  });

  it("missing resolvConf is code 7", async () => {
    expect((await codeOf(h.add(inv("ADD", conf({ resolvConf: join(dataDir, "nope") }))))).code).toBe(7);
  });

  it("100 concurrent ADDs in one process get distinct addresses", async () => {
    const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => h.add(inv("ADD", conf({ ranges: [[{ subnet: "10.20.0.0/24" }]] }), `c${i}`))));
    expect(new Set(rs.map((r) => r.ips![0]!.address)).size).toBe(100);
  });
});

describe("DEL", () => {
  it("releases by containerID+ifname, is idempotent, leaves others", async () => {
    await h.add(inv("ADD", conf()));
    await h.add(inv("ADD", conf(), "c2"));
    await h.del(inv("DEL", conf()));
    await h.del(inv("DEL", conf()));
    expect(files()).toEqual(["10.10.0.3", "fd00:0:0:1::3", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
  });

  it("succeeds when nothing was ever reserved, without creating the directory", async () => {
    await h.del(inv("DEL", conf()));
    expect(existsSync(join(dataDir, "net1"))).toBe(false);
  });

  it("works even when the ranges no longer validate", async () => {
    await h.add(inv("ADD", conf()));
    await h.del(inv("DEL", conf({ ranges: [[{ subnet: "10.10.0.1/24" }]] })));
    expect(files()).toEqual(["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
  });

  it("releases legacy id-only files", async () => {
    await h.add(inv("ADD", conf({ ranges: [[{ subnet: "10.10.0.0/24" }]] }), "other"));
    writeFileSync(join(dataDir, "net1", "10.10.0.77"), "c1");
    await h.del(inv("DEL", conf()));
    expect(files()).toEqual(["10.10.0.2", "last_reserved_ip.0", "lock"]);
  });
});

describe("CHECK", () => {
  it("passes when reserved, code 3 otherwise", async () => {
    const r = await h.add(inv("ADD", conf()));
    await h.check(inv("CHECK", conf({}, { prevResult: r })));
    expect((await codeOf(h.check(inv("CHECK", conf(), "c2")))).code).toBe(3);
    const wrong = { ...r, ips: [{ address: "10.10.0.99/24" }] };
    expect((await codeOf(h.check(inv("CHECK", conf({}, { prevResult: wrong }))))).msg).toMatch(/10\.10\.0\.99 from prevResult/);
  });
});

describe("GC", () => {
  it("releases every reservation not in cni.dev/valid-attachments", async () => {
    await h.add(inv("ADD", conf(), "keep"));
    await h.add(inv("ADD", conf(), "gone"));
    await h.add(inv("ADD", conf(), "keep", "eth1"));
    writeFileSync(join(dataDir, "net1", "10.10.0.100"), "legacy-keep");
    writeFileSync(join(dataDir, "net1", "10.10.0.101"), "legacy-gone");
    await h.gc(inv("GC", conf({}, { "cni.dev/valid-attachments": [{ containerID: "keep", ifname: "eth0" }, { containerID: "legacy-keep", ifname: "eth0" }] }), "", ""));
    expect(files()).toEqual(["10.10.0.100", "10.10.0.2", "fd00:0:0:1::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
  });

  it("accepts cni.dev/attachments; an empty list releases all", async () => {
    await h.add(inv("ADD", conf()));
    await h.gc(inv("GC", conf({}, { "cni.dev/attachments": [] }), "", ""));
    expect(files()).toEqual(["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
  });

  it("without a list releases nothing and says so on the log", async () => {
    await h.add(inv("ADD", conf()));
    await h.gc(inv("GC", conf(), "", ""));
    expect(files()).toHaveLength(5);
    expect(logs.join("\n")).toMatch(/nothing released/);
  });
});

describe("STATUS", () => {
  it("succeeds when ADD can work", async () => {
    await h.status(inv("STATUS", conf(), "", ""));
    expect(existsSync(join(dataDir, "net1"))).toBe(false);
  });

  it("code 50 when a range set is full", async () => {
    const small = conf({ ranges: [[{ subnet: "10.30.0.0/30" }]] });
    await h.add(inv("ADD", small));
    const e = await codeOf(h.status(inv("STATUS", small, "", "")));
    expect(e.code).toBe(50);
    expect(e.msg).toMatch(/range set 0 has no free address \(1 of 1 reserved\)/);
  });

  it("code 50 when the data directory is not writable", async () => {
    if (process.getuid?.() === 0) return; // root can write a 0500 directory
    chmodSync(dataDir, 0o500);
    try {
      expect((await codeOf(h.status(inv("STATUS", conf(), "", "")))).code).toBe(50);
    } finally {
      chmodSync(dataDir, 0o755);
    }
  });

  it("code 7 on a bad config", async () => {
    expect((await codeOf(h.status(inv("STATUS", conf({ ranges: [[{ subnet: "10.0.0.1/24" }]] }), "", "")))).code).toBe(7);
  });
});

describe("through the skeleton", () => {
  async function call(command: string, config: NetConf, env: Record<string, string> = {}) {
    let out = "";
    const code = await runPlugin("host-local test", h, {
      env: { CNI_COMMAND: command, CNI_CONTAINERID: "c1", CNI_NETNS: "/var/run/netns/x", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin", ...env },
      readStdin: async () => JSON.stringify(config),
      stdout: (t) => (out += t),
      stderr: () => {},
    });
    return { code, out: JSON.parse(out || "null") };
  }

  it.each(["0.1.0", "0.2.0"])("ADD %s prints ip4/ip6", async (v) => {
    const { code, out } = await call("ADD", { ...conf(), cniVersion: v });
    expect(code).toBe(0);
    expect(out).toEqual({ cniVersion: v, ip4: { ip: "10.10.0.2/24", gateway: "10.10.0.1" }, ip6: { ip: "fd00:0:0:1::2/64", gateway: "fd00:0:0:1::1" } });
  });

  it.each(["0.3.0", "0.3.1", "0.4.0"])("ADD %s adds ips[].version", async (v) => {
    const { out } = await call("ADD", { ...conf(), cniVersion: v });
    expect(out.ips).toEqual([
      { version: "4", address: "10.10.0.2/24", gateway: "10.10.0.1" },
      { version: "6", address: "fd00:0:0:1::2/64", gateway: "fd00:0:0:1::1" },
    ]);
  });

  it("errors print as CNI error JSON with their code", async () => {
    const { code, out } = await call("ADD", conf(), { CNI_ARGS: "IP=10.99.0.1" });
    expect(code).toBe(1);
    expect(out).toMatchObject({ code: 7, msg: "requested IP 10.99.0.1 is not in any range set" });
  });
});
