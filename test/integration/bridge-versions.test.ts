// Spec versions: end to end through libcni (the library cnitool, containerd, CRI-O and podman
// use) for cniVersion 0.3.1, 0.4.0 and 1.0.0; raw exec for 0.2.0 and 1.1.0; VERSION.
import { describe, expect, it } from "vitest";
import { runDriver, writeNetConf, createCniNode } from "../helpers/cni.js";
import type { CniNode, DriverCommand } from "../helpers/cni.js";
import { createPodNetns } from "../helpers/netns.js";
import { autoCleanup } from "../helpers/vitest.js";
import {
  IS_REFERENCE,
  PLUGIN_DIR,
  addPod,
  callBridge,
  cniNatLines,
  delPod,
  globalCidrs,
  hostVethOf,
  itOurs,
  linkIn,
  netConf,
  pingEventually,
  reservations,
  vethsIn,
} from "../helpers/bridge-fixtures.js";
import type { CniResult } from "../helpers/bridge-fixtures.js";

autoCleanup();

function conflist(node: CniNode, cniVersion: string): Record<string, unknown> {
  const plugin = netConf(node, { cniVersion });
  delete plugin["cniVersion"];
  delete plugin["name"];
  return { cniVersion, name: "tscni-bridge", plugins: [plugin] };
}

function driver(node: CniNode, command: DriverCommand, netnsPath: string, containerId: string) {
  return runDriver({
    node: node.netns.name,
    command,
    network: "tscni-bridge",
    netnsPath,
    confDir: node.confDir,
    cniPath: PLUGIN_DIR,
    cacheDir: node.cacheDir,
    containerId,
  });
}

describe("through libcni", () => {
  for (const v of ["0.3.1", "0.4.0", "1.0.0"]) {
    it(`cniVersion ${v}: ADD${v === "0.3.1" ? "" : ", CHECK"}, DEL, DEL again`, () => {
      const node = createCniNode();
      writeNetConf(node.confDir, conflist(node, v));
      const pod = createPodNetns();
      const other = createPodNetns();
      const add = driver(node, "add", pod.path, "e2e-a");
      expect(add.code, add.stderr).toBe(0);
      const res = add.json as CniResult;
      expect(res.cniVersion).toBe(v);
      const ip = res.ips?.[0];
      expect(ip?.address).toMatch(/^10\.85\.\d+\.\d+\/16$/);
      if (v === "1.0.0") expect(ip && "version" in ip).toBe(false);
      else expect(ip?.version).toBe("4");
      expect(ip?.gateway).toBe("10.85.0.1");
      expect(res.interfaces?.map((i) => i.name)).toEqual(["cni0", expect.stringMatching(/^veth/), "eth0"]);
      expect(res.interfaces?.[2]?.sandbox).toBe(pod.path);
      expect(globalCidrs(pod.name, "eth0")).toEqual([ip?.address]);

      expect(driver(node, "add", other.path, "e2e-b").code).toBe(0);
      const otherIp = globalCidrs(other.name, "eth0")[0]?.split("/")[0] ?? "";
      expect(pingEventually(pod.name, otherIp)).toBe(true);

      if (v !== "0.3.1") {
        const chk = driver(node, "check", pod.path, "e2e-a");
        expect(chk.code, chk.stderr).toBe(0);
      }
      const del = driver(node, "del", pod.path, "e2e-a");
      expect(del.code, del.stderr).toBe(0);
      expect(linkIn(pod.name, "eth0")).toBeUndefined();
      expect(driver(node, "del", pod.path, "e2e-a").code).toBe(0);
      expect(driver(node, "del", other.path, "e2e-b").code).toBe(0);
      expect(vethsIn(node.netns.name)).toEqual([]);
      expect(reservations(node.dataDir)).toEqual([]);
      expect(cniNatLines(node.netns.name)).toEqual([]);
    });
  }
});

describe("raw exec", () => {
  it("cniVersion 0.2.0: the old result shape (ip4 with gateway, no interfaces)", () => {
    const node = createCniNode();
    const pod = addPod(node, netConf(node, { cniVersion: "0.2.0" }));
    const r = pod.result;
    expect(r.cniVersion).toBe("0.2.0");
    expect(r.interfaces).toBeUndefined();
    expect(r.ips).toBeUndefined();
    expect(r.ip4?.ip).toMatch(/^10\.85\.\d+\.\d+\/16$/);
    expect(r.ip4?.gateway).toBe("10.85.0.1");
    expect(globalCidrs(pod.netns.name, "eth0")).toEqual([r.ip4?.ip]);
    expect(delPod(node, pod).code).toBe(0);
    expect(reservations(node.dataDir)).toEqual([]);
  });

  itOurs("cniVersion 1.1.0: ADD, CHECK, DEL", () => {
    const node = createCniNode();
    const conf = netConf(node, { cniVersion: "1.1.0" });
    const pod = addPod(node, conf);
    expect(pod.result.cniVersion).toBe("1.1.0");
    expect(pod.result.interfaces?.[2]?.sandbox).toBe(pod.netns.path);
    expect(pod.result.interfaces?.[1]?.name).toBe(hostVethOf(node, pod).ifname);
    const chk = callBridge(node, "CHECK", { ...conf, prevResult: pod.result }, { containerId: pod.containerId, netns: pod.netns.path });
    expect(chk.code, chk.stdout).toBe(0);
    expect(delPod(node, pod).code).toBe(0);
    expect(reservations(node.dataDir)).toEqual([]);
  });

  it("VERSION lists every spec version from 0.1.0 on", () => {
    const node = createCniNode();
    const r = callBridge(node, "VERSION", { cniVersion: "1.0.0" }, {});
    expect(r.code, r.stdout).toBe(0);
    const info = r.json as { cniVersion: string; supportedVersions: string[] };
    const expected = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", ...(IS_REFERENCE ? [] : ["1.1.0"])];
    expect(info.supportedVersions).toEqual(expect.arrayContaining(expected));
  });
});
