#!/usr/bin/env node
// tscni vs the reference Go bridge + host-local, side by side (issue 5).
//
//   npm run bench                      # the full run (20 / 100 / 1000 pods, 100-ADD bursts)
//   npm run bench -- --quick           # a few minutes
//   npm run bench -- --only reference  # the Go plugins alone
//   npm run bench -- --pods 5 --big-pods 10 --iterations 3 --concurrency 5   # smoke (CI)
//
// Every contender gets its own throwaway node netns (tscni-b-<run>-…) with a runner inside it
// (scripts/bench/runner.mjs) that spawns the plugin as a runtime does (env + stdin) and times
// spawn → exit. Samples alternate between contenders (rotating the order) so machine drift
// hits all of them. Pod netns are created in batches before a phase and deleted after it;
// a node is deleted only once the kernel has removed all of its pods' veths. Every netns is
// removed on exit, pass or fail, and on SIGINT/SIGTERM/SIGHUP.
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { benchNetConf } from "./bench/netconf.mjs";
import { forgetNftMarkers } from "./bench/nft-markers.mjs";
import { markdownReport, round, stats } from "./bench/report.mjs";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RUNNER = join(REPO, "scripts", "bench", "runner.mjs");
const PREFIX = "tscni-b-";
/** What a runtime's environment typically has; root's PATH here starts with dirs that hold no tools. */
const STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim()) || 100;
const IP = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].find((p) => existsSync(p)) ?? "ip";

// ---------------------------------------------------------------------------------------------
// Options

const USAGE = `usage: node scripts/bench.mjs [options]
  --pods N              pods on the node for ADD/DEL/CHECK (default 20)
  --mid-pods N          the "100 pods" point of the scale figure (default 100)
  --big-pods N          pods on the node for the big ADD figure (default 1000; 0 skips the scale phase)
  --iterations N        samples per figure and contender (default 21)
  --concurrency N       concurrent ADDs then DELs on a fresh node (default 100; 0 skips)
  --burst-iterations N  how many bursts per contender (default 3)
  --rss-iterations N    invocations under /usr/bin/time per command (default 3)
  --fill-parallel N     concurrent ADDs while filling a node with pods (default 4)
  --only reference|tscni
  --backends LIST       tscni masquerade backends, comma-separated (default iptables,nftables)
  --quick               --iterations 7 --mid-pods 50 --big-pods 200 --concurrency 50 --burst-iterations 1 --rss-iterations 1
  --json PATH           where to write the JSON (default dist/bench.json)
  --md PATH             also write the markdown report there
  --tscni-dir DIR       CNI_PATH of tscni (default dist/bin)
  --reference-dir DIR   CNI_PATH of the Go plugins (default /usr/lib/cni)
  --subnet CIDR         the pod subnet (default 10.85.0.0/16)
  --variant LABEL=DIR   also measure another tscni build (CNI_PATH DIR) as "tscni-LABEL"; repeatable
                        (A/B of build flags, same alternation)
  --steps               give tscni a logFile and report its per-step times (median) for ADD/DEL/CHECK
  --inherit-path        give the plugins this process's PATH instead of ${STD_PATH}`;

const { values: opt } = parseArgs({
  options: {
    pods: { type: "string" },
    "mid-pods": { type: "string" },
    "big-pods": { type: "string" },
    iterations: { type: "string" },
    concurrency: { type: "string" },
    "burst-iterations": { type: "string" },
    "rss-iterations": { type: "string" },
    "fill-parallel": { type: "string" },
    only: { type: "string" },
    backends: { type: "string" },
    quick: { type: "boolean", default: false },
    json: { type: "string" },
    md: { type: "string" },
    "tscni-dir": { type: "string" },
    "reference-dir": { type: "string" },
    subnet: { type: "string" },
    "inherit-path": { type: "boolean", default: false },
    steps: { type: "boolean", default: false },
    variant: { type: "string", multiple: true },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

function int(name, dflt, quick) {
  const raw = opt[name];
  if (raw === undefined) return opt.quick && quick !== undefined ? quick : dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) die(`--${name} must be a non-negative integer, got ${raw}`);
  return n;
}

function die(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

const P = {
  pods: int("pods", 20),
  midPods: int("mid-pods", 100, 50),
  bigPods: int("big-pods", 1000, 200),
  iterations: Math.max(1, int("iterations", 21, 7)),
  concurrency: int("concurrency", 100, 50),
  burstIterations: Math.max(1, int("burst-iterations", 3, 1)),
  rssIterations: int("rss-iterations", 3, 1),
  fillParallel: Math.max(1, int("fill-parallel", 4)),
  subnet: opt.subnet ?? "10.85.0.0/16",
  jsonPath: resolve(opt.json ?? join(REPO, "dist", "bench.json")),
};
if (P.bigPods > 0) {
  if (P.bigPods < P.pods) die("--big-pods must be at least --pods");
  if (P.midPods >= P.bigPods || P.midPods < P.pods) P.midPods = Math.max(P.pods, Math.floor(P.bigPods / 2));
}
if (opt.only && opt.only !== "reference" && opt.only !== "tscni") die("--only takes reference or tscni");
const backends = (opt.backends ?? "iptables,nftables").split(",").map((s) => s.trim()).filter(Boolean);
for (const b of backends) if (b !== "iptables" && b !== "nftables") die(`unknown backend ${b}`);

const refDir = resolve(opt["reference-dir"] ?? "/usr/lib/cni");
const tsDir = resolve(opt["tscni-dir"] ?? join(REPO, "dist", "bin"));
const contenders = [];
if (opt.only !== "tscni") {
  contenders.push({ key: "reference", short: "r", label: "reference (Go, iptables)", reference: true, dir: refDir, backend: "iptables" });
}
if (opt.only !== "reference") {
  for (const b of backends) {
    contenders.push({ key: `tscni-${b}`, short: b === "iptables" ? "ti" : "tn", label: `tscni (${b})`, reference: false, dir: tsDir, backend: b });
  }
}
for (const v of opt.variant ?? []) {
  const m = /^([\w.-]+)=(.+)$/.exec(v);
  if (!m) die(`--variant takes LABEL=DIR, got ${v}`);
  for (const b of backends) {
    const short = `v${contenders.length}`;
    contenders.push({ key: `tscni-${m[1]}-${b}`, short, label: `tscni ${m[1]} (${b})`, reference: false, dir: resolve(m[2]), backend: b });
  }
}
if (contenders.length === 0) die("nothing to measure");

if (process.getuid?.() !== 0) die("must run as root (it creates network namespaces)");
for (const c of contenders) {
  for (const f of ["bridge", "host-local"]) {
    if (!existsSync(join(c.dir, f))) die(`${join(c.dir, f)} not found${c.reference ? "" : " (run npm run build first)"}`);
  }
}
if (P.rssIterations > 0 && !existsSync("/usr/bin/time")) die("/usr/bin/time not found (apt-get install time), or pass --rss-iterations 0");

// ---------------------------------------------------------------------------------------------
// Namespaces, temp dirs, runners — and their cleanup, pass or fail

const RUN = randomBytes(2).toString("hex");
const liveNetns = new Set();
const liveRunners = new Map(); // pid → child
const LOADAVG_START = os.loadavg().map((x) => Math.round(x * 100) / 100);
const HOST_NETNS = readlinkSync("/proc/self/ns/net");
const TMP = mkdtempSync(join(os.tmpdir(), `${PREFIX}${RUN}-`));

const nsName = (...parts) => `${PREFIX}${RUN}-${parts.join("-")}`;

function ipSync(args, input) {
  const r = spawnSync(IP, args, { input, encoding: "utf8" });
  return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function ipAsync(args, input) {
  return new Promise((res) => {
    const child = spawn(IP, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (b) => out.push(b));
    child.stderr.on("data", (b) => err.push(b));
    child.on("error", (e) => res({ code: 127, stdout: "", stderr: e.message }));
    child.on("close", (code) => res({ code: code ?? 128, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}

function assertOurs(name) {
  if (!name.startsWith(`${PREFIX}${RUN}-`)) throw new Error(`refusing to touch netns ${name}`);
}

async function addNetns(names) {
  for (let i = 0; i < names.length; i += 500) {
    const chunk = names.slice(i, i + 500);
    chunk.forEach(assertOurs);
    chunk.forEach((n) => liveNetns.add(n));
    const r = await ipAsync(["-batch", "-"], chunk.map((n) => `netns add ${n}\n`).join(""));
    if (r.code !== 0) throw new Error(`ip netns add: ${r.stderr.trim()}`);
  }
}

async function delNetns(names) {
  for (let i = 0; i < names.length; i += 500) {
    const chunk = names.slice(i, i + 500);
    chunk.forEach(assertOurs);
    await ipAsync(["-force", "-batch", "-"], chunk.map((n) => `netns del ${n}\n`).join(""));
    chunk.forEach((n) => liveNetns.delete(n));
  }
}

function listOurNetns() {
  const r = ipSync(["netns", "list"]);
  return r.stdout
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((n) => n && n.startsWith(`${PREFIX}${RUN}-`));
}

let cleanedUp = false;
/** Synchronous last-resort cleanup: kill our runners by PID, delete every netns we made. */
function emergencyCleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const pid of liveRunners.keys()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  const names = new Set([...liveNetns, ...listOurNetns()]);
  for (const n of names) if (!/-p\d+$/.test(n)) forgetNftMarkers(n);
  if (names.size > 0) {
    ipSync(["-force", "-batch", "-"], [...names].filter((n) => n.startsWith(`${PREFIX}${RUN}-`)).map((n) => `netns del ${n}\n`).join(""));
  }
  rmSync(TMP, { recursive: true, force: true });
}
process.on("exit", emergencyCleanup);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
    emergencyCleanup();
    process.exit(130);
  });
}

/** Number of veth interfaces in a node netns. */
async function vethCount(node) {
  const r = await ipAsync(["-n", node, "-o", "link", "show", "type", "veth"]);
  if (r.code !== 0) return -1;
  return r.stdout.split("\n").filter((l) => l.trim() !== "").length;
}

/** Wait until the kernel has removed the node's veths down to `want` (pod netns teardown is asynchronous). */
async function waitVeths(node, want, timeoutMs = 180_000) {
  const t0 = Date.now();
  let n = await vethCount(node);
  while (n > want) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${node}: still ${n} veths after ${timeoutMs / 1000}s (want ${want})`);
    await sleep(n - want > 50 ? 200 : 25);
    n = await vethCount(node);
  }
  return Date.now() - t0;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Runner {
  constructor(node) {
    this.node = node;
    this.seq = 1;
    this.pending = new Map();
    this.child = spawn(IP, ["netns", "exec", node, process.execPath, RUNNER], {
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...process.env, TSCNI_BENCH_HOST_NETNS: HOST_NETNS },
    });
    this.pid = this.child.pid;
    liveRunners.set(this.pid, this.child);
    this.exited = new Promise((res) => this.child.on("exit", res));
    this.child.on("exit", (code) => {
      liveRunners.delete(this.pid);
      for (const { reject } of this.pending.values()) reject(new Error(`runner in ${node} exited (${code})`));
      this.pending.clear();
    });
    this.ready = new Promise((res, rej) => this.pending.set(0, { resolve: res, reject: rej }));
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      const msg = JSON.parse(line);
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`runner: ${msg.error}`));
      else p.resolve(msg);
    });
  }
  send(msg) {
    const id = this.seq++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(JSON.stringify({ ...msg, id }) + "\n");
    });
  }
  async run(job) {
    return (await this.send({ type: "run", job })).result;
  }
  async stop() {
    if (!liveRunners.has(this.pid)) return;
    this.child.stdin.end(JSON.stringify({ id: this.seq++, type: "exit" }) + "\n");
    const t = setTimeout(() => {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }, 5000);
    await this.exited;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------------------------------------
// Nodes, pods and plugin invocations

const PLUGIN_PATH = opt["inherit-path"] ? process.env.PATH ?? STD_PATH : STD_PATH;

function netConf(node, extra = {}) {
  return { ...benchNetConf({ backend: node.c.backend, subnet: P.subnet, dataDir: node.dataDir, logFile: node.logFile }), ...extra };
}

function pluginJob(node, command, pod, prevResult, rss = false) {
  const env = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod ? pod.id : "",
    CNI_NETNS: pod ? `/var/run/netns/${pod.name}` : "",
    CNI_IFNAME: "eth0",
    CNI_PATH: node.c.dir,
    PATH: PLUGIN_PATH,
  };
  if (command === "VERSION") {
    for (const k of ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]) delete env[k];
    return { argv: [join(node.c.dir, "bridge")], env, stdin: JSON.stringify({ cniVersion: "1.0.0" }), rss };
  }
  const conf = netConf(node, prevResult ? { prevResult } : {});
  return { argv: [join(node.c.dir, "bridge")], env, stdin: JSON.stringify(conf), rss };
}

function containerId(node, n) {
  return createHash("sha256").update(`${RUN}/${node.name}/${n}`).digest("hex");
}

async function createNode(c, phase) {
  const name = nsName(c.short, phase);
  await addNetns([name]);
  forgetNftMarkers(name); // left by an earlier namespace with this inode
  const lo = await ipAsync(["-n", name, "link", "set", "lo", "up"]);
  if (lo.code !== 0) throw new Error(`lo up in ${name}: ${lo.stderr}`);
  const dataDir = join(TMP, `${c.short}-${phase}`);
  mkdirSync(dataDir, { recursive: true });
  const runner = new Runner(name);
  await runner.ready;
  const logFile = opt.steps && !c.reference ? join(TMP, `${c.short}-${phase}.steps.jsonl`) : undefined;
  return { c, name, phase, dataDir, runner, pods: [], seq: 0, active: 0, logFile };
}

/** New pod sandboxes (netns made in one batch), not yet attached. */
async function newPods(node, count) {
  const pods = [];
  for (let i = 0; i < count; i++) {
    const n = node.seq++;
    pods.push({ name: `${node.name}-p${n}`, id: containerId(node, n), result: null });
  }
  await addNetns(pods.map((p) => p.name));
  node.pods.push(...pods);
  return pods;
}

function failure(node, command, r) {
  const msg = (r.stdout.trim() || r.stderr.trim()).slice(0, 600);
  return `${node.c.key} ${command} exit ${r.code}${r.signal ? ` (${r.signal})` : ""}: ${msg}`;
}

function parseResult(r) {
  try {
    return JSON.parse(r.stdout);
  } catch {
    return null;
  }
}

/** ADD `target - active` pods with the plugin itself, `fillParallel` at a time. */
async function fill(node, target) {
  const count = target - node.active;
  if (count <= 0) return 0;
  const pods = await newPods(node, count);
  const jobs = pods.map((p) => pluginJob(node, "ADD", p));
  const reply = await node.runner.send({ type: "parallel", jobs, limit: P.fillParallel });
  reply.results.forEach((r, i) => {
    if (r.code !== 0) throw new Error(`filling ${node.name}: ${failure(node, "ADD", r)}`);
    pods[i].result = parseResult(r);
  });
  node.active += count;
  await sleep(300); // let the kernel settle before samples
  return reply.wallMs;
}

/** Measured invocations: "<containerId>/<command>" → {fig, ms}, to match the plugin's logFile records. */
const measured = new Map();
const stepSamples = {}; // figure → contender → step → number[]

function collectSteps(node) {
  if (!node.logFile || !existsSync(node.logFile)) return;
  for (const line of readFileSync(node.logFile, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    const m = measured.get(`${node.c.key}/${rec.containerId}/${rec.command}`);
    if (!m || rec.outcome !== "ok") continue;
    const by = ((stepSamples[m.fig] ??= {})[node.c.key] ??= {});
    const push = (k, v) => typeof v === "number" && (by[k] ??= []).push(v);
    push("wall (runner)", m.ms);
    push("handler (logFile durationMs)", rec.durationMs);
    push("outside handler: start-up + exit", m.ms - rec.durationMs);
    push("CPU of the plugin process before the handler (logFile cpuMs.startup)", rec.cpuMs?.startup);
    push("CPU of the plugin process in the handler (logFile cpuMs.handler)", rec.cpuMs?.handler);
    for (const [k, v] of Object.entries(rec.steps ?? {})) push(`step ${k}`, v);
  }
}

async function destroyNode(node) {
  collectSteps(node);
  await node.runner.stop();
  await delNetns(node.pods.map((p) => p.name));
  const waited = await waitVeths(node.name, 0);
  forgetNftMarkers(node.name);
  await delNetns([node.name]);
  rmSync(node.dataDir, { recursive: true, force: true });
  return waited;
}

function rotate(arr, i) {
  const k = i % arr.length;
  return [...arr.slice(k), ...arr.slice(0, k)];
}

function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// Samples

const samples = {}; // figure → contender key → number[]
const errors = {}; // figure → contender key → string[]
function record(fig, c, value) {
  ((samples[fig] ??= {})[c.key] ??= []).push(value);
}
function recordError(fig, c, msg) {
  ((errors[fig] ??= {})[c.key] ??= []).push(msg);
  log(`error in ${fig}: ${msg}`);
}

/**
 * One interleaved round on every node: ADD a fresh pod, CHECK it, DEL it (so the node's pod
 * count is unchanged), each step run for every contender (in a rotated order) before the next.
 */
async function roundAddCheckDel(nodes, round, figsOrFn) {
  const figsOf = typeof figsOrFn === "function" ? figsOrFn : () => figsOrFn;
  const order = rotate(nodes, round);
  const pods = new Map();
  for (const node of order) pods.set(node, (await newPods(node, 1))[0]);
  const ok = new Map();
  for (const node of order) {
    const figs = figsOf(node);
    const pod = pods.get(node);
    const r = await node.runner.run(pluginJob(node, "ADD", pod));
    if (r.code === 0 && (pod.result = parseResult(r))) {
      record(figs.add, node.c, r.ms);
      record(`${figs.add}Cpu`, node.c, (r.cpuTicks * 1000) / CLK_TCK);
      measured.set(`${node.c.key}/${pod.id}/ADD`, { fig: figs.add, ms: r.ms });
      ok.set(node, true);
    } else recordError(figs.add, node.c, failure(node, "ADD", r));
  }
  {
    for (const node of order) {
      const figs = figsOf(node);
      if (!figs.check || !ok.get(node)) continue;
      const pod = pods.get(node);
      const r = await node.runner.run(pluginJob(node, "CHECK", pod, pod.result));
      if (r.code === 0) {
        record(figs.check, node.c, r.ms);
        record(`${figs.check}Cpu`, node.c, (r.cpuTicks * 1000) / CLK_TCK);
        measured.set(`${node.c.key}/${pod.id}/CHECK`, { fig: figs.check, ms: r.ms });
      }
      else recordError(figs.check, node.c, failure(node, "CHECK", r));
    }
  }
  for (const node of order) {
    const figs = figsOf(node);
    const pod = pods.get(node);
    const r = await node.runner.run(pluginJob(node, "DEL", pod, pod.result ?? undefined));
    if (r.code === 0) {
      if (ok.get(node) && figs.del) {
        record(figs.del, node.c, r.ms);
        record(`${figs.del}Cpu`, node.c, (r.cpuTicks * 1000) / CLK_TCK);
        measured.set(`${node.c.key}/${pod.id}/DEL`, { fig: figs.del, ms: r.ms });
      }
    } else recordError(figs.del ?? figs.add, node.c, failure(node, "DEL", r));
  }
  {
    for (const node of order) {
      const figs = figsOf(node);
      if (!figs.version) continue;
      const r = await node.runner.run(pluginJob(node, "VERSION"));
      if (r.code === 0) record(figs.version, node.c, r.ms);
      else recordError(figs.version, node.c, failure(node, "VERSION", r));
      const t = await node.runner.run({ argv: ["/bin/true"], env: {}, stdin: "" });
      if (t.code === 0) record("spawnFloor", node.c, t.ms);
    }
  }
}

async function rssPass(nodes) {
  for (let i = 0; i < P.rssIterations; i++) {
    for (const node of rotate(nodes, i)) {
      const [pod] = await newPods(node, 1);
      const add = await node.runner.run(pluginJob(node, "ADD", pod, undefined, true));
      if (add.code !== 0 || !(pod.result = parseResult(add))) {
        recordError("rss", node.c, failure(node, "ADD", add));
        continue;
      }
      if (add.rssKb) record("rss", node.c, add.rssKb / 1024);
      const chk = await node.runner.run(pluginJob(node, "CHECK", pod, pod.result, true));
      if (chk.code === 0 && chk.rssKb) record("rssCheck", node.c, chk.rssKb / 1024);
      const del = await node.runner.run(pluginJob(node, "DEL", pod, pod.result, true));
      if (del.code === 0 && del.rssKb) record("rssDel", node.c, del.rssKb / 1024);
      else if (del.code !== 0) recordError("rss", node.c, failure(node, "DEL", del));
    }
  }
}

const fillTimes = [];

async function phaseSteady() {
  log(`steady phase: ${P.pods} pods per node, ${P.iterations} rounds`);
  const nodes = [];
  try {
    for (const c of contenders) nodes.push(await createNode(c, "s"));
    for (const node of nodes) {
      const ms = await fill(node, P.pods);
      fillTimes.push({ contender: node.c.key, from: 0, to: P.pods, seconds: round(ms / 1000) });
    }
    for (let i = 0; i < P.iterations; i++) {
      await roundAddCheckDel(nodes, i, { add: "add", check: "check", del: "del", version: "version" });
    }
    for (const node of nodes) {
      const n = await vethCount(node.name);
      if (n !== node.active) recordError("del", node.c, `${node.name}: ${n} veths after the DEL samples, expected ${node.active}`);
    }
    if (P.rssIterations > 0) {
      log("peak RSS pass (/usr/bin/time)");
      await rssPass(nodes);
    }
  } finally {
    for (const node of nodes) await destroyNode(node);
  }
}

async function phaseScale() {
  if (P.bigPods <= 0) return;
  log(`scale phase: one node with ${P.midPods} and one with ${P.bigPods} pods per contender, sampled in alternation`);
  const nodes = [];
  try {
    for (const c of contenders) {
      const mid = await createNode(c, "m");
      mid.figs = { add: "addMid", del: "delMid", floor: "spawnFloorMid" };
      nodes.push(mid);
      const big = await createNode(c, "g");
      big.figs = { add: "addBig", del: "delBig", floor: "spawnFloorBig" };
      nodes.push(big);
    }
    for (const node of nodes) {
      const target = node.phase === "m" ? P.midPods : P.bigPods;
      const t0 = Date.now();
      const ms = await fill(node, target);
      fillTimes.push({ contender: node.c.key, from: 0, to: target, seconds: round(ms / 1000) });
      log(`  ${node.c.key}: 0 → ${target} pods in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    await sleep(2000); // the last pods' IPv6 DAD/RS floods through the bridge
    for (let i = 0; i < P.iterations; i++) {
      await roundAddCheckDel(nodes, i, (node) => node.figs);
      for (const node of rotate(nodes, i)) {
        const t = await node.runner.run({ argv: ["/bin/true"], env: {}, stdin: "" });
        if (t.code === 0) record(node.figs.floor, node.c, t.ms);
      }
    }
  } finally {
    for (const node of nodes) {
      const t0 = Date.now();
      await destroyNode(node);
      log(`  ${node.c.key}: node with ${node.active} pods removed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
}

async function phaseBurst() {
  if (P.concurrency <= 0) return;
  log(`burst phase: ${P.concurrency} concurrent ADDs then DELs on a fresh node, ${P.burstIterations}×`);
  for (let i = 0; i < P.burstIterations; i++) {
    for (const c of rotate(contenders, i)) {
      const node = await createNode(c, `b${i}`);
      try {
        const pods = await newPods(node, P.concurrency);
        const add = await node.runner.send({ type: "burst", jobs: pods.map((p) => pluginJob(node, "ADD", p)) });
        const addErrs = [];
        add.results.forEach((r, k) => {
          if (r.code === 0) measured.set(`${c.key}/${pods[k].id}/ADD`, { fig: "burstAdd", ms: r.ms });
          if (r.code === 0) pods[k].result = parseResult(r);
          else addErrs.push(failure(node, "ADD", r));
        });
        if (addErrs.length === 0) {
          record("burstAdd", c, add.wallMs);
          record("burstAddCpu", c, (add.cpuTicks * 1000) / CLK_TCK / pods.length);
        }
        else recordError("burstAdd", c, `${addErrs.length}/${pods.length} failed; first: ${addErrs[0]}`);
        const del = await node.runner.send({
          type: "burst",
          jobs: pods.map((p) => pluginJob(node, "DEL", p, p.result ?? undefined)),
        });
        del.results.forEach((r, k) => {
          if (r.code === 0) measured.set(`${c.key}/${pods[k].id}/DEL`, { fig: "burstDel", ms: r.ms });
        });
        const delErrs = del.results.filter((r) => r.code !== 0).map((r) => failure(node, "DEL", r));
        const left = await vethCount(node.name);
        if (delErrs.length === 0 && left === 0) {
          record("burstDel", c, del.wallMs);
          record("burstDelCpu", c, (del.cpuTicks * 1000) / CLK_TCK / pods.length);
        }
        else recordError("burstDel", c, `${delErrs.length}/${pods.length} failed, ${left} veths left${delErrs[0] ? `; first: ${delErrs[0]}` : ""}`);
      } finally {
        await destroyNode(node);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  const ver = (argv) => {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
    return (r.stdout || r.stderr || "").trim().split("\n")[0];
  };
  const dpkg = spawnSync("dpkg-query", ["-W", "-f", "${Version}", "containernetworking-plugins"], { encoding: "utf8" });
  const git = spawnSync("git", ["-C", REPO, "rev-parse", "--short", "HEAD"], { encoding: "utf8" });
  return {
    cpu: model,
    cores: os.cpus().length,
    memMB: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    node: process.versions.node,
    iptables: ver(["iptables", "--version"]),
    iproute2: ver([IP, "-V"]).replace(/^ip utility, /, ""),
    nft: ver(["nft", "--version"]),
    reference: `containernetworking-plugins ${dpkg.stdout?.trim() || "?"} (${refDir})`,
    tscni: `${tsDir} @ ${git.stdout?.trim() || "?"}`,
    loadavgStart: LOADAVG_START,
    loadavgEnd: os.loadavg().map((x) => round(x)),
  };
}

function buildReport(startedAt) {
  const mid = P.midPods;
  const big = P.bigPods;
  const figures = [
    { key: "add", title: `ADD (ipMasq, IPv4), ${P.pods} pods on the node`, unit: "ms", goal: "≤ 0.7×", goalRatio: 0.7 },
    { key: "del", title: `DEL (prevResult), ${P.pods} pods`, unit: "ms", goal: "≤ 0.4×", goalRatio: 0.4 },
    { key: "check", title: `CHECK (1.0.0, prevResult), ${P.pods} pods`, unit: "ms", goal: "≤ 1.5×", goalRatio: 1.5 },
  ];
  if (big > 0) {
    figures.push(
      { key: "addMid", title: `ADD, ${mid} pods on the node`, unit: "ms", goal: "—" },
      { key: "addBig", title: `ADD, ${big} pods on the node`, unit: "ms", goal: "≤ 0.2×", goalRatio: 0.2 },
      { key: "scale", title: `ADD ${big} pods / ADD ${mid} pods (own)`, unit: "×", goal: "tscni ≤ 1.1", goalAbsolute: 1.1 },
      { key: "delMid", title: `DEL, ${mid} pods on the node`, unit: "ms", goal: "—" },
      { key: "delBig", title: `DEL, ${big} pods on the node`, unit: "ms", goal: "—" },
    );
  }
  if (P.concurrency > 0) {
    figures.push(
      { key: "burstAdd", title: `${P.concurrency} concurrent ADDs, fresh node (wall)`, unit: "ms", goal: "≤ 0.5×", goalRatio: 0.5 },
      { key: "burstDel", title: `then ${P.concurrency} concurrent DELs (wall)`, unit: "ms", goal: "≤ 0.5×", goalRatio: 0.5 },
    );
  }
  if (P.rssIterations > 0) {
    figures.push(
      { key: "rss", title: "peak RSS of one ADD", unit: "MB", goal: "≤ 40 MB", goalAbsolute: 40 },
      { key: "rssCheck", title: "peak RSS of one CHECK", unit: "MB", goal: "—" },
      { key: "rssDel", title: "peak RSS of one DEL", unit: "MB", goal: "—" },
    );
  }
  figures.push(
    { key: "addCpu", title: `CPU time of one ADD (user+sys, mean), ${P.pods} pods`, unit: "ms", goal: "—", mean: true },
    { key: "delCpu", title: `CPU time of one DEL (mean)`, unit: "ms", goal: "—", mean: true },
    { key: "checkCpu", title: `CPU time of one CHECK (mean)`, unit: "ms", goal: "—", mean: true },
  );
  if (big > 0) figures.push({ key: "addBigCpu", title: `CPU time of one ADD (mean), ${big} pods`, unit: "ms", goal: "—", mean: true });
  if (P.concurrency > 0) {
    figures.push(
      { key: "burstAddCpu", title: `CPU time per ADD in the burst (mean)`, unit: "ms", goal: "—", mean: true },
      { key: "burstDelCpu", title: `CPU time per DEL in the burst (mean)`, unit: "ms", goal: "—", mean: true },
    );
  }
  figures.push(
    { key: "version", title: "VERSION (start-up floor)", unit: "ms", goal: "—" },
    { key: "spawnFloor", title: "`/bin/true` from the runner (timing overhead)", unit: "ms", goal: "—" },
  );
  if (big > 0) {
    figures.push(
      { key: "spawnFloorMid", title: `\`/bin/true\` from the runner, ${mid}-pod node`, unit: "ms", goal: "—" },
      { key: "spawnFloorBig", title: `\`/bin/true\` from the runner, ${big}-pod node`, unit: "ms", goal: "—" },
    );
  }

  const ref = contenders.find((c) => c.reference);
  for (const fig of figures) {
    fig.results = {};
    for (const c of contenders) {
      let r;
      if (fig.key === "scale") {
        const a = stats(samples.addBig?.[c.key] ?? []).median;
        const b = stats(samples.addMid?.[c.key] ?? []).median;
        r = { median: a !== null && b ? round(a / b) : null, min: null, max: null, n: 1 };
      } else {
        r = stats(samples[fig.key]?.[c.key] ?? []);
        if (fig.mean) r = { ...r, median: r.mean, min: r.min, max: r.max };
        r.samples = (samples[fig.key]?.[c.key] ?? []).map((x) => round(x, 3));
      }
      const errs = errors[fig.key]?.[c.key] ?? [];
      r.errors = errs.length;
      if (errs.length) r.errorMessages = errs.slice(0, 5);
      fig.results[c.key] = r;
    }
    if (ref) {
      const base = fig.results[ref.key].median;
      for (const c of contenders) {
        const r = fig.results[c.key];
        r.ratio = !c.reference && base && r.median !== null && fig.key !== "scale" ? round(r.median / base, 3) : null;
      }
    }
  }
  const totalErrors = Object.values(errors).reduce((n, byC) => n + Object.values(byC).reduce((m, a) => m + a.length, 0), 0);
  return {
    version: 1,
    runId: RUN,
    date: startedAt.toISOString(),
    durationSeconds: round((Date.now() - startedAt.getTime()) / 1000, 1),
    command: `node scripts/bench.mjs${process.argv.length > 2 ? " " + process.argv.slice(2).join(" ") : ""}`,
    machine: machine(),
    params: { ...P, jsonPath: undefined, backends, only: opt.only ?? null, pluginPath: PLUGIN_PATH },
    contenders: contenders.map(({ key, label, reference, dir, backend }) => ({ key, label, reference, dir, backend })),
    fills: fillTimes,
    steps: Object.fromEntries(
      Object.entries(stepSamples).map(([fig, byC]) => [
        fig,
        Object.fromEntries(Object.entries(byC).map(([c, bySteps]) => [c, Object.fromEntries(Object.entries(bySteps).map(([k, v]) => [k, stats(v)]))])),
      ]),
    ),
    figures,
    errors: totalErrors,
    notes: [
      "Each contender runs in its own node netns; rounds rotate the contender order.",
      `Filler pods are created by each contender's own plugins (${P.fillParallel} at a time).`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const startedAt = new Date();
  log(`run ${RUN}: ${contenders.map((c) => c.key).join(", ")}; temp ${TMP}`);
  await phaseSteady();
  await phaseScale();
  await phaseBurst();
  const left = listOurNetns();
  if (left.length) throw new Error(`netns left behind: ${left.join(" ")}`);
  const report = buildReport(startedAt);
  mkdirSync(dirname(P.jsonPath), { recursive: true });
  writeFileSync(P.jsonPath, JSON.stringify(report, null, 2) + "\n");
  if (opt.md) writeFileSync(resolve(opt.md), markdownReport(report) + "\n");
  process.stdout.write(markdownReport(report) + "\n");
  log(`JSON written to ${P.jsonPath}; ${report.errors} errors; ${report.durationSeconds} s`);
  return report.errors === 0 ? 0 : 1;
}

main().then(
  (code) => {
    emergencyCleanup();
    process.exit(code);
  },
  (e) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.stack : e}\n`);
    emergencyCleanup();
    process.exit(1);
  },
);
