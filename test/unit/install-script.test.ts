// scripts/install.sh against a temp dir holding fake plugins: no root, no real /opt/cni/bin.
import { spawnSync } from "node:child_process";
import {
  chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync,
  statSync, symlinkSync, writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "scripts", "install.sh");

let tmp: string;
let dir: string; // the fake /opt/cni/bin
let bin: string; // the fake dist/bin/tscni

function writeExe(path: string, body: string): void {
  writeFileSync(path, `#!/bin/sh\necho ${body}\n`);
  chmodSync(path, 0o755);
}

function run(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync("bash", [SCRIPT, ...args], {
    env: { ...process.env, TSCNI_BIN: bin }, encoding: "utf8",
  });
  return { status: r.status, stderr: r.stderr };
}

function runIn(...args: string[]): void {
  const r = run(...args, dir);
  expect(r.status, r.stderr).toBe(0);
}

const read = (name: string): string => readFileSync(join(dir, name), "utf8");
const ino = (name: string): number => statSync(join(dir, name)).ino;
const ls = (d = dir): string[] => readdirSync(d).sort();

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), "tscni-install-"));
  dir = join(tmp, "cni-bin");
  bin = join(tmp, "tscni");
  writeExe(bin, "tscni-v1");
  // What a node running the Go plugins has: host-local and others, but let bridge be absent.
  mkdirSync(dir);
  writeExe(join(dir, "host-local"), "go-host-local");
  writeExe(join(dir, "loopback"), "go-loopback");
});

afterEach(() => rmSync(tmp, { recursive: true, force: true }));

describe("install.sh", () => {
  it("installs tscni once and hard-links bridge and host-local to it", () => {
    runIn();
    expect(ls()).toEqual([".tscni-backup", "bridge", "host-local", "loopback", "tscni"]);
    expect(ino("bridge")).toBe(ino("tscni"));
    expect(ino("host-local")).toBe(ino("tscni"));
    expect(lstatSync(join(dir, "bridge")).isSymbolicLink()).toBe(false);
    expect(statSync(join(dir, "tscni")).mode & 0o777).toBe(0o755);
    expect(read("host-local")).toContain("tscni-v1");
  });

  it("backs up a plugin it did not install, and leaves other plugins alone", () => {
    runIn();
    expect(readFileSync(join(dir, ".tscni-backup", "host-local"), "utf8")).toContain("go-host-local");
    expect(existsSync(join(dir, ".tscni-backup", "bridge"))).toBe(false);
    expect(read("loopback")).toContain("go-loopback");
  });

  it("is idempotent: a re-install replaces its own files and never backs up its links", () => {
    runIn();
    writeExe(bin, "tscni-v2");
    runIn();
    runIn();
    expect(ls(join(dir, ".tscni-backup"))).toEqual(["host-local", "installed"]);
    expect(readFileSync(join(dir, ".tscni-backup", "host-local"), "utf8")).toContain("go-host-local");
    for (const name of ["tscni", "bridge", "host-local"]) expect(read(name)).toContain("tscni-v2");
    expect(ino("bridge")).toBe(ino("tscni"));
    expect(ls().filter((n) => n.includes("tmp"))).toEqual([]);
  });

  it("uninstall removes only what it installed and restores the backup", () => {
    runIn();
    runIn("--uninstall");
    expect(ls()).toEqual(["host-local", "loopback"]);
    expect(read("host-local")).toContain("go-host-local");
  });

  it("uninstall with nothing installed changes nothing", () => {
    runIn("--uninstall");
    expect(ls()).toEqual(["host-local", "loopback"]);
  });

  it("backs up and restores a plugin that is a symlink", () => {
    const target = join(tmp, "go-bridge");
    writeExe(target, "go-bridge");
    symlinkSync(target, join(dir, "bridge"));
    runIn();
    expect(readlinkSync(join(dir, ".tscni-backup", "bridge"))).toBe(target);
    expect(ino("bridge")).toBe(ino("tscni"));
    runIn("--uninstall");
    expect(readlinkSync(join(dir, "bridge"))).toBe(target);
  });

  it("treats a plugin put back over its link by someone else as foreign", () => {
    runIn();
    rmSync(join(dir, "bridge"));
    writeExe(join(dir, "bridge"), "go-bridge-upgraded"); // e.g. a package upgrade
    runIn();
    expect(readFileSync(join(dir, ".tscni-backup", "bridge"), "utf8")).toContain("go-bridge-upgraded");
    expect(ino("bridge")).toBe(ino("tscni"));

    // And if it happens after install, uninstall leaves that file alone.
    rmSync(join(dir, "host-local"));
    writeExe(join(dir, "host-local"), "go-host-local-upgraded");
    const r = run("--uninstall", dir);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/host-local was replaced/);
    expect(read("host-local")).toContain("go-host-local-upgraded");
    expect(read("bridge")).toContain("go-bridge-upgraded");
    expect(existsSync(join(dir, "tscni"))).toBe(false);
    // The older Go host-local stays in the backup rather than being lost.
    expect(readFileSync(join(dir, ".tscni-backup", "host-local"), "utf8")).toContain("go-host-local");
  });

  it("keeps an older backup instead of overwriting it", () => {
    runIn();
    rmSync(join(dir, "host-local"));
    writeExe(join(dir, "host-local"), "go-host-local-2");
    runIn();
    const backups = ls(join(dir, ".tscni-backup"));
    expect(backups.filter((n) => n.startsWith("host-local."))).toHaveLength(1);
    expect(readFileSync(join(dir, ".tscni-backup", "host-local"), "utf8")).toContain("go-host-local-2");
  });

  it("creates DIR, and fails cleanly without a built executable", () => {
    rmSync(dir, { recursive: true });
    runIn();
    expect(ls()).toEqual([".tscni-backup", "bridge", "host-local", "tscni"]);
    rmSync(bin);
    const r = run(join(tmp, "other"));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/npm run build/);
    expect(existsSync(join(tmp, "other"))).toBe(false);
  });

  it("rejects unknown options", () => {
    expect(run("--frobnicate", dir).status).toBe(2);
  });
});
