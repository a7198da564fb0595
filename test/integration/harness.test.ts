// Proves the harness: Go reference bridge + host-local (Debian, /usr/lib/cni) through the
// libcni driver in a throwaway node netns, and that cleanup leaves nothing behind.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  GO_CNI_DIR,
  bridgeConflist,
  bridgePorts,
  cidrs,
  cleanupAll,
  createCniNode,
  createNetns,
  createPodNetns,
  createTmpDir,
  execIn,
  iptablesChains,
  iptablesSave,
  link,
  listNetns,
  pendingCleanups,
  ping,
  routes,
  runDriver,
  runPlugin,
  startIn,
  tool,
  writeNetConf,
} from "../helpers/index.js";
import type { CniNode, DriverCommand } from "../helpers/index.js";
import { autoCleanup } from "../helpers/vitest.js";

autoCleanup();

const NET = "tnet";

function driver(node: CniNode, command: DriverCommand, netnsPath?: string, extra: { containerId?: string } = {}) {
  return runDriver({
    node: node.netns.name,
    command,
    network: NET,
    netnsPath,
    confDir: node.confDir,
    cniPath: GO_CNI_DIR,
    cacheDir: node.cacheDir,
    ...extra,
  });
}

interface IpResult {
  ips: { address: string; gateway?: string }[];
}

describe("harness: netns and cleanup", () => {
  it("creates prefixed netns with lo up, runs commands inside, and removes all of it", () => {
    const ns = createNetns("probe");
    const dir = createTmpDir("probe");
    expect(ns.name).toMatch(/^tscni-t-[0-9a-f]+-probe-[0-9a-f]{6}$/);
    expect(listNetns()).toContain(ns.name);
    expect(link(ns.name, "lo")?.flags).toContain("UP");
    expect(execIn(ns.name, [tool("ip"), "-br", "link"]).stdout).toMatch(/^lo\s/m);
    const bg = startIn(ns.name, [tool("sleep"), "300"]);
    expect(existsSync(`/proc/${bg.pid}`)).toBe(true);

    expect(cleanupAll()).toEqual([]);
    expect(pendingCleanups()).toEqual([]);
    expect(listNetns()).not.toContain(ns.name);
    expect(existsSync(dir)).toBe(false);
    // Killed by PID: gone, or a zombie until node reaps it.
    expect(["", "Z"]).toContain(procState(bg.pid));
  });

  it("refuses to touch a netns it did not make", () => {
    expect(() => execIn("default", ["/bin/true"])).toThrow(/refusing/);
  });

  it("refuses host-local configs without a test dataDir", () => {
    const node = createCniNode();
    const conf = bridgeConflist({ name: NET, cniVersion: "1.0.0", subnet: "10.85.0.0/16", dataDir: "/var/lib/cni/networks" });
    expect(() => writeNetConf(node.confDir, conf)).toThrow(/unsafe/);
  });
});

/** Process state letter from /proc/<pid>/stat, or "" if the process is gone. */
function procState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").charAt(0);
  } catch {
    return "";
  }
}

describe.each(["0.3.1", "0.4.0", "1.0.0"])("Go reference bridge + host-local via libcni, cniVersion %s", (cniVersion) => {
  it("two pods get addresses, ping each other, DEL leaves nothing", () => {
    const node = createCniNode();
    writeNetConf(node.confDir, bridgeConflist({ name: NET, cniVersion, subnet: "10.85.0.0/16", dataDir: node.dataDir }));
    const pods = [createPodNetns(), createPodNetns()];

    const results = pods.map((pod) => {
      const r = driver(node, "add", pod.path);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      return r.json as IpResult & { cniVersion: string };
    });
    for (const [i, pod] of pods.entries()) {
      const res = results[i]!;
      expect(res.cniVersion).toBe(cniVersion);
      expect(res.ips[0]?.gateway).toBe("10.85.0.1");
      expect(cidrs(pod.name, "eth0")).toEqual([res.ips[0]?.address]);
      expect(routes(pod.name, { family: 4 }).find((rt) => rt.dst === "default")?.gateway).toBe("10.85.0.1");
    }
    expect(cidrs(node.netns.name, "cni0")).toEqual(["10.85.0.1/16"]);
    expect(bridgePorts(node.netns.name, "cni0")).toHaveLength(2);
    expect(readdirSync(`${node.dataDir}/${NET}`).filter((f) => f.startsWith("10."))).toHaveLength(2);
    expect(iptablesChains(iptablesSave(node.netns.name, "nat")).filter((c) => c.startsWith("CNI-"))).toHaveLength(2);

    const addrOf = (i: number): string => results[i]!.ips[0]!.address.split("/")[0]!;
    expect(ping(pods[0]!.name, addrOf(1))).toBe(true);
    expect(ping(pods[1]!.name, addrOf(0))).toBe(true);
    expect(ping(pods[0]!.name, "10.85.0.1")).toBe(true);

    for (const pod of pods) {
      const check = driver(node, "check", pod.path);
      if (cniVersion === "0.3.1") {
        expect(check.code).toBe(1); // libcni: CHECK needs >= 0.4.0
        expect(check.stderr).toMatch(/does not support the CHECK command/);
      } else {
        expect(check.stderr).toBe("");
        expect(check.code).toBe(0);
      }
    }

    for (const pod of pods) {
      const del = driver(node, "del", pod.path);
      expect(del.stderr).toBe("");
      expect(del.code).toBe(0);
      expect(driver(node, "del", pod.path).code).toBe(0); // idempotent
      expect(link(pod.name, "eth0")).toBeUndefined();
    }
    expect(bridgePorts(node.netns.name, "cni0")).toHaveLength(0);
    expect(readdirSync(`${node.dataDir}/${NET}`).filter((f) => f.startsWith("10."))).toEqual([]);
    expect(iptablesChains(iptablesSave(node.netns.name, "nat")).filter((c) => c.startsWith("CNI-"))).toEqual([]);
    expect(readdirSync(`${node.cacheDir}/results`)).toEqual([]);
  });
});

describe("harness: errors keep their CNI code", () => {
  it("plugin run directly: VERSION lists versions; bad config gives a CNI error on stdout", () => {
    const node = createCniNode();
    const v = runPlugin({ node: node.netns.name, exe: `${GO_CNI_DIR}/bridge`, command: "VERSION", config: { cniVersion: "1.0.0" } });
    expect(v.code).toBe(0);
    expect((v.json as { supportedVersions: string[] }).supportedVersions).toContain("1.0.0");

    const pod = createPodNetns();
    const bad = runPlugin({
      node: node.netns.name,
      exe: `${GO_CNI_DIR}/bridge`,
      command: "ADD",
      containerId: "c1",
      netns: pod.path,
      config: { cniVersion: "9.9.9", name: NET, type: "bridge" },
    });
    expect(bad.code).not.toBe(0);
    expect(bad.error?.code).toBe(1);
  });

  it("driver: an unsupported cniVersion comes back as the plugin's error JSON (code 1)", () => {
    const node = createCniNode();
    writeNetConf(node.confDir, bridgeConflist({ name: NET, cniVersion: "1.1.0", subnet: "10.85.0.0/16", dataDir: node.dataDir }));
    const pod = createPodNetns();
    const r = driver(node, "add", pod.path);
    expect(r.code).toBe(1);
    expect(r.error).toMatchObject({ code: 1, msg: "incompatible CNI versions" });
  });
});
