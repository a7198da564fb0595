#!/usr/bin/env node
// Where do one invocation's milliseconds go? Runs a plugin command under
//   strace -f --seccomp-bpf -ttt -e trace=execve,clone,clone3,vfork,exit_group,read,write,openat,flock,rename
// inside a throwaway node netns (tscni-b-…) with N pods already on it, and prints a timeline per
// run: when the plugin read its stdin (start-up done), each spawned tool (start → exit), the
// IPAM files, the result write, the exit. Also times the same command without strace.
//
// --cpu instead: CPU time per command by process name (the plugin, each tool it spawned,
// kernel workers), from `perf record -e cpu-clock -a` (Debian package linux-perf) around
// --runs commands, minus the same harness running /bin/true instead of the plugin.
//
//   node scripts/bench/profile.mjs --contender tscni-nftables --pods 20 --runs 5 [--command ADD]
//   node scripts/bench/profile.mjs --contender reference
//   node scripts/bench/profile.mjs --contender tscni-iptables --cpu --runs 30
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { benchNetConf } from "./netconf.mjs";
import { forgetNftMarkers } from "./nft-markers.mjs";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { values: opt } = parseArgs({
  options: {
    contender: { type: "string", default: "tscni-nftables" },
    pods: { type: "string", default: "20" },
    runs: { type: "string", default: "5" },
    command: { type: "string", default: "ADD" },
    subnet: { type: "string", default: "10.85.0.0/16" },
    "tscni-dir": { type: "string" },
    raw: { type: "boolean", default: false },
    cpu: { type: "boolean", default: false },
  },
});
if (process.getuid?.() !== 0) throw new Error("run as root");
const ref = opt.contender === "reference";
const dir = ref ? "/usr/lib/cni" : resolve(opt["tscni-dir"] ?? join(REPO, "dist", "bin"));
const backend = opt.contender.endsWith("nftables") ? "nftables" : "iptables";
const PODS = Number(opt.pods);
const RUNS = Number(opt.runs);
const CMD = opt.command;
const RUN = randomBytes(2).toString("hex");
const NODE = `tscni-b-${RUN}-prof`;
const TMP = mkdtempSync(join(os.tmpdir(), `tscni-b-${RUN}-prof-`));
const PATHV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const made = [];

function sh(argv, input) {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
function cleanup() {
  forgetNftMarkers(NODE);
  if (made.length) sh(["ip", "-force", "-batch", "-"], made.map((n) => `netns del ${n}\n`).join(""));
  made.length = 0;
  rmSync(TMP, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(s, () => process.exit(130));

const conf = (prev) =>
  JSON.stringify({
    ...benchNetConf({ backend, subnet: opt.subnet, dataDir: join(TMP, "data"), logFile: ref ? undefined : join(TMP, "steps.jsonl") }),
    ...(prev ? { prevResult: prev } : {}),
  });
let seq = 0;
function pod() {
  const name = `${NODE}-p${seq++}`;
  sh(["ip", "netns", "add", name]);
  made.push(name);
  return { name, id: createHash("sha256").update(name).digest("hex") };
}
function envArgs(cmd, p) {
  return ["env", "-i", `PATH=${PATHV}`, `CNI_COMMAND=${cmd}`, `CNI_CONTAINERID=${p.id}`, `CNI_NETNS=/var/run/netns/${p.name}`, "CNI_IFNAME=eth0", `CNI_PATH=${dir}`];
}
function plugin(cmd, p, prev, wrap = [], exe = join(dir, "bridge")) {
  const t0 = process.hrtime.bigint();
  const r = sh(["ip", "netns", "exec", NODE, ...wrap, ...envArgs(cmd, p), exe], conf(prev));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.code !== 0) throw new Error(`${cmd} failed: ${r.stdout} ${r.stderr}`);
  return { ms, result: r.stdout ? JSON.parse(r.stdout) : null };
}

/** Parse strace -f -ttt output into a timeline (ms relative to the plugin's execve). */
function timeline(file) {
  const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
  const ev = [];
  const procs = new Map(); // pid → {exec, argv, exit}
  let t0 = null;
  let root = null;
  for (const line of lines) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const t = Number(m[2]) * 1000;
    const rest = m[3];
    if (rest.startsWith("execve(") && !/= -1/.test(rest)) {
      const bin = /^execve\("([^"]+)"/.exec(rest)?.[1] ?? "?";
      if (t0 === null && bin.endsWith("/bridge")) {
        t0 = t;
        root = pid;
      }
      const args = [...rest.matchAll(/"((?:[^"\\]|\\.)*)"/g)].slice(1, 8).map((x) => x[1]);
      const prev = procs.get(pid);
      // env -i execs the plugin: keep only the last execve of a pid
      procs.set(pid, { pid, exec: t, bin, args: args.slice(1).join(" "), exit: prev?.exit ?? null });
    } else if (rest.startsWith("+++ exited") || rest.startsWith("exit_group(")) {
      const p = procs.get(pid) ?? { pid, exec: null, bin: "(thread/fork)", args: "" };
      if (rest.startsWith("+++") || p.exit === undefined || p.exit === null) p.exit = t;
      procs.set(pid, p);
    }
    if (t0 === null) continue;
    if (pid === root || procs.get(pid)?.bin?.endsWith("/bridge") || procs.get(pid)?.bin?.endsWith("/host-local")) {
      if (/^read\(0,/.test(rest)) ev.push([t - t0, pid, "read stdin"]);
      else if (/^write\(1,/.test(rest)) ev.push([t - t0, pid, "write result"]);
      else if (/^openat\(.*(\/data\/|lock)/.test(rest) && !/ENOENT/.test(rest)) ev.push([t - t0, pid, rest.slice(0, 110)]);
      else if (/^(flock|rename)\(/.test(rest)) ev.push([t - t0, pid, rest.slice(0, 110)]);
      else if (/^exit_group/.test(rest)) ev.push([t - t0, pid, "exit_group"]);
    }
  }
  const spawned = [...procs.values()]
    .filter((p) => p.exec !== null && t0 !== null && p.exec >= t0 && !p.bin.endsWith("/bridge"))
    .map((p) => ({ start: p.exec - t0, end: p.exit !== null ? p.exit - t0 : null, what: `${p.bin.split("/").pop()} ${p.args}`.slice(0, 100) }));
  const total = procs.get(root)?.exit !== undefined ? procs.get(root).exit - t0 : null;
  // fold runs of read-only opens in the data dir into one line
  const folded = [];
  for (const e of ev.sort((a, b) => a[0] - b[0])) {
    const ro = /^openat\(.*O_RDONLY\|O_CLOEXEC\)/.test(e[2]) && !/lock/.test(e[2]);
    const last = folded[folded.length - 1];
    if (ro && last && last.ro && last[1] === e[1]) {
      last.n++;
      last.end = e[0];
      last[2] = `read ${last.n} files in the data dir (until ${e[0].toFixed(1)} ms)`;
    } else {
      const x = [e[0], e[1], e[2]];
      if (ro) Object.assign(x, { ro, n: 1 });
      folded.push(x);
    }
  }
  return { total, ev: folded, spawned };
}

const PERF_HZ = 10000;

/** Samples per process name while `work` runs, from a system-wide `perf record`. */
async function perfSamples(work) {
  const file = join(TMP, `perf-${randomBytes(3).toString("hex")}.data`);
  const perf = spawn("perf", ["record", "-q", "-e", "cpu-clock", "-F", String(PERF_HZ), "-a", "-o", file], { stdio: "ignore" });
  const exited = new Promise((r) => perf.on("exit", r));
  perf.on("error", (e) => {
    throw new Error(`perf: ${e.message} (Debian package linux-perf)`);
  });
  await new Promise((r) => setTimeout(r, 500)); // let it start recording
  work();
  perf.kill("SIGINT");
  await exited;
  const rep = sh(["perf", "report", "-i", file, "--sort", "comm", "-F", "sample,comm", "-q"]);
  if (rep.code !== 0) throw new Error(`perf report: ${rep.stderr}`);
  const out = new Map();
  for (const line of rep.stdout.split("\n")) {
    const m = /^\s*(\d+)\s+(.+?)\s*$/.exec(line);
    if (m) out.set(m[2], (out.get(m[2]) ?? 0) + Number(m[1]));
  }
  return out;
}

/** --cpu: ms of CPU per command, by process name, the harness's own subtracted. */
async function cpuProfile() {
  const pods = Array.from({ length: RUNS }, () => pod());
  const prevs = CMD === "ADD" ? pods.map(() => null) : pods.map((p) => plugin("ADD", p).result);
  const spare = Array.from({ length: RUNS }, () => pod());
  const base = await perfSamples(() => spare.forEach((p) => plugin(CMD, p, null, [], "/bin/true")));
  const real = await perfSamples(() => pods.forEach((p, i) => plugin(CMD, p, prevs[i])));
  const per = (n) => n / (PERF_HZ / 1000) / RUNS;
  const rows = [...new Set([...real.keys(), ...base.keys()])]
    .map((comm) => [comm, per((real.get(comm) ?? 0) - (base.get(comm) ?? 0))])
    // perf, the idle task and the harness itself (node, and /bin/true standing in for the plugin) are not the command's
    .filter(([comm, ms]) => Math.abs(ms) >= 0.05 && !["perf", "swapper", "node", "true"].includes(comm))
    .sort((a, b) => b[1] - a[1]);
  console.log(`CPU per ${CMD} (${opt.contender}, ${PODS} pods on the node, ${RUNS} commands), ms, by process name, minus the harness (ip netns exec + env) running /bin/true:`);
  for (const [comm, ms] of rows) console.log(`  ${ms.toFixed(2).padStart(7)}  ${comm}`);
  console.log(`  ${rows.reduce((a, [, ms]) => a + ms, 0).toFixed(2).padStart(7)}  total`);
}

try {
  sh(["ip", "netns", "add", NODE]);
  made.push(NODE);
  forgetNftMarkers(NODE); // left by an earlier namespace with this inode
  sh(["ip", "-n", NODE, "link", "set", "lo", "up"]);
  for (let i = 0; i < PODS; i++) plugin("ADD", pod());
  if (opt.cpu) {
    await cpuProfile();
    process.exit(0);
  }
  const plain = [];
  for (let i = 0; i < RUNS; i++) {
    const p = pod();
    const file = join(TMP, `trace-${i}`);
    const wrap = ["strace", "-f", "--seccomp-bpf", "-ttt", "-qq", "-e", process.env.PROFILE_TRACE ?? "trace=execve,exit_group,read,write,openat,flock,rename", "-e", "signal=none", "-s", "60", "-o", file];
    let prev = null;
    if (CMD === "ADD") {
      plugin(CMD, p, null, wrap);
    } else {
      prev = plugin("ADD", p).result;
      plugin(CMD, p, prev, wrap);
    }
    const tl = timeline(file);
    console.log(`\n=== run ${i}: ${opt.contender} ${CMD}, ${PODS} pods — ${tl.total?.toFixed(1)} ms under strace`);
    for (const [t, pid, what] of tl.ev) console.log(`  ${t.toFixed(1).padStart(7)} ms  [${pid}] ${what}`);
    for (const s of tl.spawned) console.log(`  ${s.start.toFixed(1).padStart(7)} → ${s.end === null ? "?" : s.end.toFixed(1).padStart(6)} ms  (${s.end === null ? "?" : (s.end - s.start).toFixed(1)} ms) ${s.what}`);
    if (opt.raw) console.log(readFileSync(file, "utf8"));
    if (!ref && existsSync(join(TMP, "steps.jsonl"))) {
      const recs = readFileSync(join(TMP, "steps.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      const rec = recs.filter((r) => r.command === CMD).pop();
      if (rec) console.log(`  logFile: handler ${rec.durationMs} ms, steps ${JSON.stringify(rec.steps)}`);
    }
    // the same command without strace, for scale (ip netns exec + env included)
    const q = pod();
    if (CMD === "ADD") plain.push(plugin("ADD", q).ms);
    else plain.push(plugin(CMD, q, plugin("ADD", q).result).ms);
  }
  plain.sort((a, b) => a - b);
  console.log(`\nwithout strace (incl. ip netns exec + env): median ${plain[Math.floor(plain.length / 2)].toFixed(1)} ms of ${plain.map((x) => x.toFixed(1)).join(", ")}`);
} finally {
  cleanup();
}
if (!existsSync(TMP)) process.exitCode ??= 0;
