#!/usr/bin/env node
// Build the one tscni executable.
//
//   1. esbuild bundles plugins/main.ts (platform node, CJS, minified, target node20) into
//      dist/tscni.cjs — runnable as `node dist/tscni.cjs` — and writes dist/meta.json;
//   2. `bun build --compile --bytecode` turns that bundle into dist/bin/tscni;
//   3. dist/bin/host-local and dist/bin/bridge become hard links to it.
//
// Why CJS + bytecode, and why bun rather than Node's SEA: see docs/startup.md. In short,
// on bun 1.4.5 bytecode works for both formats and cuts start-up roughly in half, CJS
// starts ~0.5 ms faster than ESM, and a Node SEA starts 3-6x slower than either.
//
// Usage: node scripts/build.mjs [--entry FILE] [--format cjs|esm] [--no-compile]
// Env:   BUN=/path/to/bun to pick the bun binary.
// Works offline: esbuild and bun come from node_modules (neither needs its postinstall).

import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import {
  readFileSync,
  chmodSync, existsSync, linkSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");
const BIN_DIR = join(DIST, "bin");
const LINK_NAMES = ["host-local", "bridge"];

const IS_MAIN = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
const { values: opts } = IS_MAIN
  ? parseArgs({
    options: {
      entry: { type: "string", default: "plugins/main.ts" },
      format: { type: "string", default: "cjs" },
      "no-compile": { type: "boolean", default: false },
    },
  })
  : { values: { entry: "plugins/main.ts", format: "cjs", "no-compile": true } };
if (opts.format !== "cjs" && opts.format !== "esm") die(`--format must be cjs or esm, not ${opts.format}`);
const format = opts.format;
const entry = resolve(ROOT, opts.entry);
const bundlePath = join(DIST, format === "cjs" ? "tscni.cjs" : "tscni.mjs");
const exePath = join(BIN_DIR, "tscni");

const PACKAGE_VERSION = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;

/** esbuild options shared by the real build and scripts/measure-startup.mjs's probes. */
export function esbuildOptions(fmt) {
  return {
    bundle: true,
    platform: "node", // node: builtins stay external, nothing else does
    format: fmt,
    target: "node20",
    minify: true,
    // pkg/about.ts reads the version from here; "dev" when run from source.
    define: { __TSCNI_VERSION__: JSON.stringify(PACKAGE_VERSION) },
    logLevel: "warning",
    // In a CJS bundle import.meta is {}: code relying on it would break silently.
    logOverride: { "empty-import-meta": "error" },
  };
}

/** `bun build` arguments that turn bundle INPUT into the executable OUTFILE. */
export function bunCompileArgs(input, outfile, fmt, { bytecode = true, jitPolicy = 1000 } = {}) {
  return [
    "build", "--compile", ...(bytecode ? ["--bytecode"] : []), "--minify",
    `--format=${fmt}`,
    // A CNI plugin must not read .env / bunfig.toml from whatever cwd the runtime gave it
    // (and skipping them saves a directory walk at start-up).
    "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
    "--no-compile-autoload-tsconfig", "--no-compile-autoload-package-json",
    // A CNI call lives ~25 ms: JIT tier-up is mostly wasted work there. Bench A/B (31
    // rounds): peak RSS of one ADD/CHECK/DEL −1.5 to −1.9 MB, ADD −1 to −2 ms, CPU −2 ms.
    ...(jitPolicy ? [`--compile-jit-policy=${jitPolicy}`] : []),
    input, "--outfile", outfile,
  ];
}

function die(msg) {
  console.error(`build: ${msg}`);
  process.exit(1);
}

function kb(n) {
  return `${(n / 1024).toFixed(1)} KiB`;
}

function ms(since) {
  return `${(performance.now() - since).toFixed(0)} ms`;
}

// ---- 1. bundle -------------------------------------------------------------------------

async function bundle() {
  if (!existsSync(entry)) die(`entry ${relative(ROOT, entry)} does not exist`);
  mkdirSync(DIST, { recursive: true });
  // Remove the other format's bundle so a stale one is never run by mistake.
  rmSync(join(DIST, format === "cjs" ? "tscni.mjs" : "tscni.cjs"), { force: true });
  const t0 = performance.now();
  const result = await build({
    ...esbuildOptions(format),
    plugins: [await showAsSource()],
    entryPoints: [entry],
    outfile: bundlePath,
    metafile: true,
    banner: { js: "#!/usr/bin/env node" },
  }).catch((e) => die(/top-level await/i.test(e.message) && format === "cjs"
    ? "top-level await cannot go in the CJS bundle: call main().then(...) instead (or build with --format esm)"
    : "esbuild failed (see above)"));
  chmodSync(bundlePath, 0o755);
  writeFileSync(join(DIST, "meta.json"), JSON.stringify(result.metafile, null, 1) + "\n");
  reportInputs(result.metafile, performance.now() - t0);
}

/**
 * `tscni show` goes into the bundle as source text, compiled only when `tscni show` runs:
 * bun materializes the bytecode of the whole bundle at start-up, and show's ~14 KiB of JS
 * cost every plugin invocation ~0.9 MB of peak RSS (A/B, 5 ADDs each: 40.5 → 39.5 MB).
 * plugins/main.ts imports ./show/main.js lazily; this plugin swaps that import for a module
 * that evaluates show's own CJS bundle with the real `require` (node builtins only).
 */
async function showAsSource() {
  const showEntry = join(ROOT, "plugins", "show", "main.ts");
  const r = await build({
    ...esbuildOptions("cjs"), entryPoints: [showEntry], write: false, metafile: false,
  });
  const src = r.outputFiles[0].text;
  return {
    name: "show-as-source",
    setup(b) {
      b.onResolve({ filter: /^\.\/show\/main\.js$/ }, (args) => (
        args.importer === entry ? { path: "show-as-source", namespace: "show-as-source" } : undefined));
      b.onLoad({ filter: /.*/, namespace: "show-as-source" }, () => ({
        loader: "js",
        contents: `const m = { exports: {} };
new Function("module", "exports", "require", ${JSON.stringify(src)})(m, m.exports, require);
export const runShow = m.exports.runShow;
`,
      }));
    },
  };
}

/** Print the bundle size and what is in it, biggest first: this is the start-up path. */
function reportInputs(metafile, took) {
  const out = metafile.outputs[relative(process.cwd(), bundlePath)]
    ?? Object.values(metafile.outputs)[0];
  const inputs = Object.entries(out.inputs)
    .map(([path, { bytesInOutput }]) => ({ path, bytes: bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes);
  const byPackage = new Map();
  for (const { path, bytes } of inputs) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const key = m ? m[1] : "(tscni)";
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytes);
  }
  const imports = new Set();
  for (const input of Object.values(metafile.inputs)) {
    for (const imp of input.imports) if (imp.external) imports.add(imp.path.replace(/^node:/, ""));
  }
  console.log(`bundle  ${relative(ROOT, bundlePath)}  ${kb(out.bytes)}  (${inputs.length} inputs, esbuild ${took.toFixed(0)} ms)`);
  console.log("  by package:");
  for (const [pkg, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) {
    console.log(`    ${kb(bytes).padStart(10)}  ${pkg}`);
  }
  console.log("  inputs (bytes in output):");
  for (const { path, bytes } of inputs) console.log(`    ${kb(bytes).padStart(10)}  ${path}`);
  console.log(`  node builtins imported: ${[...imports].sort().join(", ") || "(none)"}`);
  console.log(`  metafile: ${relative(ROOT, join(DIST, "meta.json"))}`);
}

// ---- 2. compile ------------------------------------------------------------------------

/**
 * Find a working bun. npm here does not run bun's postinstall, which would move the
 * platform binary from @oven/bun-<platform>/bin/bun over the placeholder
 * node_modules/bun/bin/bun.exe; so look in both places (and $BUN, and PATH).
 */
export function findBun() {
  const arch = process.arch === "arm64" ? "aarch64" : process.arch;
  const candidates = [
    process.env.BUN,
    join(ROOT, "node_modules", "bun", "bin", "bun.exe"),
    ...[`bun-linux-${arch}`, `bun-linux-${arch}-baseline`, `bun-linux-${arch}-musl`,
      `bun-linux-${arch}-musl-baseline`]
      .map((p) => join(ROOT, "node_modules", "@oven", p, "bin", "bun")),
    "bun",
  ].filter(Boolean);
  for (const c of candidates) {
    // The placeholder is a few bytes of text; a real bun is ~100 MB.
    if (c.includes("/") && (!existsSync(c) || statSync(c).size < 1 << 20)) continue;
    const r = spawnSync(c, ["--version"], { encoding: "utf8" });
    if (r.status === 0) return { path: c, version: r.stdout.trim() };
  }
  die(`no working bun found (tried ${candidates.join(", ")}); run npm ci, or set BUN=`);
}

function compile() {
  const bun = findBun();
  mkdirSync(BIN_DIR, { recursive: true });
  const tmp = `${exePath}.tmp-${process.pid}`;
  const args = bunCompileArgs(bundlePath, tmp, format);
  const t0 = performance.now();
  const r = spawnSync(bun.path, args, { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    die(`bun ${args.join(" ")} failed:\n${r.stdout}${r.stderr}`);
  }
  // Replace atomically (rename), then re-make the links: a link to the old inode would keep the old binary.
  renameSync(tmp, exePath);
  for (const name of LINK_NAMES) {
    rmSync(join(BIN_DIR, name), { force: true });
    linkSync(exePath, join(BIN_DIR, name));
  }
  console.log(`compile ${relative(ROOT, exePath)}  ${(statSync(exePath).size / 2 ** 20).toFixed(1)} MiB  (bun ${bun.version}, ${ms(t0)})`);
  console.log(`        ${LINK_NAMES.map((n) => relative(ROOT, join(BIN_DIR, n))).join(", ")} -> hard links`);
}

/** The binary must at least answer VERSION under each plugin name, or it is not worth shipping. */
function smoke() {
  for (const name of LINK_NAMES) {
    const r = spawnSync(join(BIN_DIR, name), [], {
      env: { ...process.env, CNI_COMMAND: "VERSION" }, input: "", encoding: "utf8", timeout: 10_000,
    });
    let ok = r.status === 0;
    try { ok &&= Array.isArray(JSON.parse(r.stdout).supportedVersions); } catch { ok = false; }
    if (!ok) {
      die(`smoke test: CNI_COMMAND=VERSION dist/bin/${name} exited ${r.status}\n${r.stdout}${r.stderr}`);
    }
  }
  console.log("smoke   CNI_COMMAND=VERSION answered by host-local and bridge");
}

if (IS_MAIN) {
  await bundle();
  if (!opts["no-compile"]) {
    compile();
    smoke();
  }
}
