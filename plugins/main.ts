import { writeSync } from "node:fs";
import { runPlugin, aboutLine } from "../pkg/skel.js";
import { readStdin } from "../pkg/stdin.js";
import { PLUGINS } from "./registry.js";
import { TSCNI_VERSION } from "../pkg/about.js";
import { LATEST_VERSION } from "../pkg/version.js";

const basename = (p: string): string => p.slice(p.lastIndexOf("/") + 1);

/**
 * The name this executable was started as: a hard link per plugin selects the plugin.
 * Compiled by bun, argv[1] is the virtual "/$bunfs/root/tscni" and argv0 keeps the real
 * argv[0] (execPath names a hard link too, but resolves symlinks). Under Node, argv[1] is
 * the script path as given (`node …/host-local`).
 */
function invokedName(): string {
  const script = process.argv[1] ?? "";
  if (script.startsWith("/$bunfs/")) {
    for (const p of [process.argv0, process.execPath]) {
      const name = basename(p ?? "");
      if (name in PLUGINS) return name;
    }
    return "tscni";
  }
  return basename(script).replace(/\.[cm]?js$/, "");
}

function write(fd: number, text: string): void {
  writeSync(fd, text);
}

async function main(): Promise<number> {
  const name = invokedName();
  if (name === "tscni" && process.argv[2] === "show") {
    const { runShow } = await import("./show/main.js");
    return runShow(process.argv.slice(3));
  }
  const load = PLUGINS[name];
  if (!load) {
    const about = `tscni ${TSCNI_VERSION}: CNI plugins ${Object.keys(PLUGINS).join(", ")}; invoke it through a link named after a plugin, or run "tscni show"`;
    if (process.argv.includes("--version")) write(1, aboutLine(about));
    else write(2, aboutLine(about));
    return 0;
  }
  const plugin = await load();
  if (process.argv.includes("--version")) {
    write(1, aboutLine(plugin.about));
    return 0;
  }
  return runPlugin(plugin.about, plugin.handlers, {
    env: process.env,
    readStdin: (opts) => readStdin(0, undefined, undefined, opts),
    stdout: (t) => write(1, t),
    stderr: (t) => write(2, t),
  });
}

/** Last resort: a CNI error on stdout even for a failure nobody caught. */
function die(err: unknown): never {
  write(2, `tscni: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  write(1, JSON.stringify({ cniVersion: LATEST_VERSION, code: 999, msg: String(err instanceof Error ? err.message : err) }) + "\n");
  process.exit(1);
}

process.on("uncaughtException", die);
process.on("unhandledRejection", die);
main().then((code) => process.exit(code), die);
