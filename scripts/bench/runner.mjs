// The benchmark's in-netns runner: started once per node netns as
//   ip netns exec tscni-b-… node scripts/bench/runner.mjs
// it plays the container runtime: it receives jobs as JSON lines on stdin, spawns the plugin
// (env + stdin, as containerd/CRI-O do) and times spawn → exit with process.hrtime, so the
// figures hold the plugin's own wall time and none of `ip netns exec`'s.
//
// Jobs (one JSON object per line; every reply carries the job's id):
//   {id, type:"run",      job}               → {id, result}
//   {id, type:"burst",    jobs}              → {id, wallMs, results}   all spawned at once
//   {id, type:"parallel", jobs, limit}       → {id, wallMs, results}   at most `limit` in flight
//   {id, type:"exit"}                        → the runner exits
// Every result has cpuTicks: the CPU time (user + sys, clock ticks) the job's process tree used,
// from the runner's cutime/cstime; jobs run one at a time, so it is the job's own.
// job = {argv, env, stdin, rss?}: with rss, the plugin runs under /usr/bin/time -f %M and the
// result has rssKb (peak RSS of the process tree's largest member, in KiB).
import { spawn } from "node:child_process";
import { readFileSync, readlinkSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Safety: never act in the machine's own network namespace.
// The orchestrator passes its own (the host's) netns in TSCNI_BENCH_HOST_NETNS.
const self = readlinkSync("/proc/self/ns/net");
const host = process.env.TSCNI_BENCH_HOST_NETNS;
if (!host || self === host) {
  process.stderr.write("bench runner: refusing to run in the host network namespace\n");
  process.exit(3);
}

let rssSeq = 0;

/** CPU time (clock ticks) of this process's waited-for children, from /proc/self/stat (cutime + cstime). */
function childTicks() {
  const st = readFileSync("/proc/self/stat", "utf8");
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return Number(f[13]) + Number(f[14]);
}

/** Spawn one plugin; resolves when it has exited and its stdio is closed. */
function runOne(job) {
  return new Promise((resolve) => {
    let argv = job.argv;
    let rssFile;
    if (job.rss) {
      rssFile = join(tmpdir(), `tscni-b-rss-${process.pid}-${rssSeq++}`);
      argv = ["/usr/bin/time", "-f", "%M", "-o", rssFile, ...argv];
    }
    const out = [];
    const err = [];
    let exitNs;
    let code = null;
    let signal = null;
    let spawnError;
    const ticks0 = childTicks();
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { env: job.env ?? {}, stdio: ["pipe", "pipe", "pipe"] });
    child.stdout.on("data", (b) => out.push(b));
    child.stderr.on("data", (b) => err.push(b));
    child.stdin.on("error", () => {}); // a plugin may exit without reading stdin (VERSION)
    child.on("exit", (c, s) => {
      exitNs = process.hrtime.bigint();
      code = c;
      signal = s;
    });
    child.on("error", (e) => {
      spawnError = e.message;
    });
    child.on("close", () => {
      const end = exitNs ?? process.hrtime.bigint();
      const result = {
        ms: Number(end - t0) / 1e6,
        startNs: String(t0),
        endNs: String(end),
        cpuTicks: childTicks() - ticks0,
        code: spawnError ? 127 : code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8") + (spawnError ? `spawn: ${spawnError}` : ""),
      };
      if (rssFile) {
        try {
          const lines = readFileSync(rssFile, "utf8").trim().split("\n");
          result.rssKb = Number(lines[lines.length - 1]);
        } catch {
          result.rssKb = null;
        }
        rmSync(rssFile, { force: true });
      }
      resolve(result);
    });
    child.stdin.end(job.stdin ?? "");
  });
}

async function burst(jobs) {
  const ticks0 = childTicks();
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(jobs.map((j) => runOne(j)));
  let last = t0;
  for (const r of results) if (BigInt(r.endNs) > last) last = BigInt(r.endNs);
  return { wallMs: Number(last - t0) / 1e6, cpuTicks: childTicks() - ticks0, results };
}

async function parallel(jobs, limit) {
  const t0 = process.hrtime.bigint();
  const results = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await runOne(jobs[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, worker));
  return { wallMs: Number(process.hrtime.bigint() - t0) / 1e6, results };
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// Jobs are handled one at a time, in order: a job's timing is never disturbed by another's.
let queue = Promise.resolve();
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (line.trim() === "") return;
  const msg = JSON.parse(line);
  queue = queue.then(async () => {
    try {
      if (msg.type === "run") reply({ id: msg.id, result: await runOne(msg.job) });
      else if (msg.type === "burst") reply({ id: msg.id, ...(await burst(msg.jobs)) });
      else if (msg.type === "parallel") reply({ id: msg.id, ...(await parallel(msg.jobs, msg.limit ?? 4)) });
      else if (msg.type === "exit") process.exit(0);
      else reply({ id: msg.id, error: `unknown job type ${msg.type}` });
    } catch (e) {
      reply({ id: msg.id, error: e instanceof Error ? e.stack : String(e) });
    }
  });
});
rl.on("close", () => process.exit(0));
reply({ id: 0, ready: true, pid: process.pid, netns: self });
