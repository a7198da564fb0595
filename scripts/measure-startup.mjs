#!/usr/bin/env node
// How long does one invocation of the tscni executable take, and how much memory, next to
// an empty bun-compiled program and the Go reference host-local? And what does each runtime
// dependency add to every start?
//
//   npm run measure-startup -- [--runs 200] [--exe dist/bin/host-local] [--no-write]
//                              [--variants [--entry plugins/main.ts]]
//
// Wall time: every target is spawned N times, in interleaved rounds (so drift from other load
// on the machine hits all of them alike), from this Node process; medians and p90s include
// the ~1 ms that spawnSync itself costs. Peak RSS: /usr/bin/time -f %M (Debian package
// `time`), on fewer runs. The results table goes into docs/startup.md, between the
// measure-startup markers; the prose around it is kept.
//
// --variants also rebuilds plugins/main.ts the other ways considered (ESM bundle, no
// bytecode, Node SEA when node_modules has postject) and measures those: the numbers behind
// the choice in scripts/build.mjs.

import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import {
  copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync,
} from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { bunCompileArgs, esbuildOptions, findBun } from "./build.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const GO_HOST_LOCAL = "/usr/lib/cni/host-local";
const TIME = "/usr/bin/time";
const DOC = join(ROOT, "docs", "startup.md");
const BEGIN = "<!-- measure-startup:begin -->";
const END = "<!-- measure-startup:end -->";

const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "200" },
    "rss-runs": { type: "string", default: "20" },
    exe: { type: "string", default: "dist/bin/host-local" },
    "no-write": { type: "boolean", default: false },
    variants: { type: "boolean", default: false },
    entry: { type: "string", default: "plugins/main.ts" },
  },
});
const RUNS = Number(opts.runs);
const RSS_RUNS = Math.min(Number(opts["rss-runs"]), RUNS);
const EXE = resolve(ROOT, opts.exe);
if (!existsSync(EXE)) {
  console.error(`measure-startup: ${relative(ROOT, EXE)} not found: run npm run build first`);
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), "tscni-measure-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
const bun = findBun();

// ---- probes: tiny programs compiled exactly like the real one --------------------------

/** Bundle SOURCE (resolved from the repo, so it sees node_modules) and compile it. */
async function compileProbe(name, source, { format = "cjs", bytecode = true } = {}) {
  const bundle = join(work, `${name}.${format === "cjs" ? "cjs" : "mjs"}`);
  await build({
    ...esbuildOptions(format),
    stdin: { contents: source, resolveDir: ROOT, loader: "ts", sourcefile: `${name}.ts` },
    outfile: bundle,
    logLevel: "error",
  });
  return compileBundle(name, bundle, { format, bytecode });
}

function compileBundle(name, bundle, { format = "cjs", bytecode = true } = {}) {
  const exe = join(work, name);
  const r = spawnSync(bun.path, bunCompileArgs(bundle, exe, format, { bytecode }), {
    cwd: work, encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`compiling ${name}: ${r.stdout}${r.stderr}`);
  return exe;
}

/** Import a module and touch it, so neither esbuild nor bun can drop the import. */
function importProbe(specifier) {
  return `import * as m from ${JSON.stringify(specifier)};
if (process.env.TSCNI_PROBE_PRINT) console.log(Object.keys(m).length);\n`;
}

/** Node's own single executable (node 20 --experimental-sea-config + postject). */
function nodeSea(name, cjsBundle) {
  // postject is not a dependency (nothing ships it); POSTJECT=/path/to/postject/dist/cli.js
  const postject = process.env.POSTJECT ?? join(ROOT, "node_modules", "postject", "dist", "cli.js");
  if (!existsSync(postject)) return undefined;
  const blob = join(work, `${name}.blob`);
  const config = join(work, `${name}.sea.json`);
  writeFileSync(config, JSON.stringify({
    main: cjsBundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true,
  }));
  const exe = join(work, name);
  const fuse = /NODE_SEA_FUSE_[0-9a-f]+/.exec(readFileSync(process.execPath, "latin1"))?.[0];
  if (!fuse) return undefined;
  copyFileSync(process.execPath, exe);
  for (const [cmd, args] of [
    [process.execPath, ["--experimental-sea-config", config]],
    [process.execPath, [postject, exe, "NODE_SEA_BLOB", blob, "--sentinel-fuse", fuse]],
  ]) {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`node SEA ${name}: ${r.stdout}${r.stderr}`);
  }
  return exe;
}

// ---- measuring ---------------------------------------------------------------------------

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function envFor(command) {
  const env = { ...process.env };
  delete env.CNI_COMMAND;
  // Set on these dev machines, not in a container runtime's environment; a Node SEA would
  // load the whole CA file on every start (+40-60 ms), bun ignores it.
  delete env.NODE_EXTRA_CA_CERTS;
  if (command) env.CNI_COMMAND = command;
  return env;
}

/** targets: [{label, exe}], each run under each command; returns rows with stats. */
function measure(targets, commands) {
  const cases = targets.flatMap((t) => commands.map((command) => ({ ...t, command, times: [], rss: [] })));
  const once = (c) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(c.exe, [], { env: envFor(c.command), input: "", stdio: ["pipe", "ignore", "ignore"] });
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.error) throw r.error;
    c.status = r.status;
    return elapsed;
  };
  for (let i = 0; i < 10; i++) for (const c of cases) once(c); // warm the page cache
  for (let i = 0; i < RUNS; i++) for (const c of cases) c.times.push(once(c));
  if (existsSync(TIME)) {
    for (let i = 0; i < RSS_RUNS; i++) {
      for (const c of cases) {
        const r = spawnSync(TIME, ["-f", "%M", c.exe], {
          env: envFor(c.command), input: "", encoding: "utf8", stdio: ["pipe", "ignore", "pipe"],
        });
        const kb = Number(r.stderr.trim().split("\n").pop());
        if (Number.isFinite(kb)) c.rss.push(kb);
      }
    }
  }
  return cases.map((c) => ({
    label: c.label,
    command: c.command ?? "(none)",
    status: c.status,
    min: Math.min(...c.times),
    median: quantile(c.times, 0.5),
    p90: quantile(c.times, 0.9),
    rssMiB: c.rss.length ? quantile(c.rss, 0.5) / 1024 : undefined,
    size: statSync(c.exe).size,
  }));
}

const f1 = (x) => (x === undefined ? "n/a" : x.toFixed(1));
const mib = (n) => `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 2 : 0)} MiB`;

function table(rows, baseline) {
  const base = baseline && Object.fromEntries(
    rows.filter((r) => r.label === baseline).map((r) => [r.command, r]),
  );
  const lines = [
    `| program | CNI_COMMAND | exit | min ms | median ms | p90 ms | peak RSS MiB |${base ? ` Δ median vs ${baseline} |` : ""} file size |`,
    `| --- | --- | --- | --- | --- | --- | --- |${base ? " --- |" : ""} --- |`,
  ];
  for (const r of rows) {
    const delta = base ? ` ${r.label === baseline ? "—" : `${r.median - base[r.command].median >= 0 ? "+" : ""}${(r.median - base[r.command].median).toFixed(1)} ms`} |` : "";
    lines.push(`| ${r.label} | ${r.command} | ${r.status} | ${f1(r.min)} | ${f1(r.median)} | ${f1(r.p90)} | ${f1(r.rssMiB)} |${delta} ${mib(r.size)} |`);
  }
  return lines.join("\n");
}

// ---- main --------------------------------------------------------------------------------

console.error(`measure-startup: compiling probes with bun ${bun.version}…`);
const empty = await compileProbe("empty", "export {};\n");
const builtins = await compileProbe("node-builtins",
  'import { readFileSync } from "node:fs";\nimport { spawnSync } from "node:child_process";\n' +
  "if (process.env.TSCNI_PROBE_PRINT) console.log(readFileSync, spawnSync);\n");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const deps = Object.keys(pkg.dependencies ?? {});
// Which dependencies does the shipped bundle actually contain? (dist/meta.json, from the build)
const metaPath = join(ROOT, "dist", "meta.json");
const bundled = existsSync(metaPath)
  ? new Set(Object.keys(JSON.parse(readFileSync(metaPath, "utf8")).inputs)
    .map((p) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p)?.[1]).filter(Boolean))
  : undefined;
const depProbes = [];
for (const dep of deps) {
  const note = bundled && !bundled.has(dep) ? " (not in the bundle: costs nothing today)" : "";
  depProbes.push({
    label: `node:fs + node:child_process + \`${dep}\`${note}`,
    exe: await compileProbe(`dep-${dep.replace(/\W/g, "_")}`,
      'import { readFileSync } from "node:fs";\nimport { spawnSync } from "node:child_process";\n' +
      importProbe(dep) + "if (process.env.TSCNI_PROBE_PRINT) console.log(readFileSync, spawnSync);\n"),
  });
}

const main = [
  { label: `tscni (\`${relative(ROOT, EXE)}\`)`, exe: EXE },
  { label: "empty program, bun --compile --bytecode", exe: empty },
];
if (existsSync(GO_HOST_LOCAL)) main.push({ label: `Go reference \`${GO_HOST_LOCAL}\``, exe: GO_HOST_LOCAL });

const variants = [];
if (opts.variants) {
  const entry = resolve(ROOT, opts.entry);
  const contents = `import ${JSON.stringify(entry)};\n`;
  console.error("measure-startup: building variants of plugins/main.ts…");
  variants.push({ label: "tscni: CJS bundle + bytecode (shipped)", exe: await compileProbe("v-cjs-bc", contents) });
  variants.push({ label: "tscni: ESM bundle + bytecode", exe: await compileProbe("v-esm-bc", contents, { format: "esm" }) });
  variants.push({ label: "tscni: CJS bundle, no bytecode", exe: await compileProbe("v-cjs", contents, { bytecode: false }) });
  const cjs = join(work, "v-cjs-bc.cjs");
  const sea = nodeSea("v-node-sea", cjs);
  if (sea) {
    variants.push({ label: "tscni: Node SEA (node 20, code cache)", exe: sea });
    variants.push({ label: "empty program, Node SEA", exe: nodeSea("empty-node-sea", join(work, "empty.cjs")) });
  } else {
    console.error("measure-startup: no postject (node_modules/postject or $POSTJECT): skipping the Node SEA variant");
  }
}

console.error(`measure-startup: ${RUNS} runs per target, interleaved…`);
const mainRows = measure(main, ["VERSION", undefined]);
const depRows = measure([{ label: "empty program", exe: empty },
  { label: "node:fs + node:child_process", exe: builtins }, ...depProbes], ["VERSION"]);
const variantRows = variants.length ? measure(variants, ["VERSION"]) : [];

const load = loadavg().map((l) => l.toFixed(2)).join(" ");
const busy = loadavg()[0] > cpus().length
  ? `**Taken on a busy machine (load ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs): ` +
    "absolute numbers are inflated; the min column and the order of rows still hold. Rerun when it is quiet.**\n\n"
  : "";
const report = [
  `${busy}Measured ${new Date().toISOString().slice(0, 10)} by \`npm run measure-startup\`: ${RUNS} runs per row ` +
  `(peak RSS: median of ${existsSync(TIME) ? `${RSS_RUNS} runs of \`/usr/bin/time -f %M\`` : "— (install the `time` package)"}), ` +
  `${cpus().length} CPUs, Linux ${release()}, load ${load}, bun ${bun.version}, node ${process.versions.node}. ` +
  "Wall time includes the ~1 ms of Node's spawnSync; NODE_EXTRA_CA_CERTS is unset for the runs. " +
  "Medians move with the machine's load; compare rows of one run, not runs.",
  "",
  table(mainRows),
  "",
  deps.length
    ? "What each runtime dependency adds to every start (a probe that imports it alone, compiled like tscni):"
    : "package.json has no runtime dependencies; the baselines a dependency's probe would be compared with:",
  "",
  table(depRows, "node:fs + node:child_process"),
  ...(variantRows.length ? ["", "Build variants of the same plugins/main.ts (`--variants`):", "",
    table(variantRows, "tscni: CJS bundle + bytecode (shipped)")] : []),
].join("\n");

console.log(report);

if (!opts["no-write"]) {
  let doc = existsSync(DOC) ? readFileSync(DOC, "utf8") : `# Start-up time\n\n${BEGIN}\n${END}\n`;
  if (!doc.includes(BEGIN) || !doc.includes(END)) doc += `\n${BEGIN}\n${END}\n`;
  // Keep the variants section from an earlier --variants run unless this run made a new one.
  const old = doc.slice(doc.indexOf(BEGIN) + BEGIN.length, doc.indexOf(END));
  const oldVariants = /\nBuild variants[\s\S]*$/.exec(old)?.[0].trimEnd();
  const body = variantRows.length || !oldVariants ? report
    : `${report}\n${oldVariants.replace(/^\nBuild variants[^\n]*:/, "\nBuild variants of the same plugins/main.ts (from an earlier `--variants` run):")}`;
  doc = doc.slice(0, doc.indexOf(BEGIN) + BEGIN.length) + `\n${body}\n` + doc.slice(doc.indexOf(END));
  writeFileSync(DOC, doc);
  console.error(`measure-startup: wrote ${relative(ROOT, DOC)}`);
}
