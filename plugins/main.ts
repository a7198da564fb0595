import { writeSync } from "node:fs";
import { runPlugin, aboutLine } from "../pkg/skel.js";
import { readStdin } from "../pkg/stdin.js";
import { PLUGINS } from "./registry.js";
import { TSCNI_VERSION } from "../pkg/about.js";

/** The name this executable was started as: a hard link per plugin selects the plugin. */
function invokedName(): string {
  const argv0 = process.argv0 || process.argv[1] || process.execPath;
  return argv0.slice(argv0.lastIndexOf("/") + 1);
}

function write(fd: number, text: string): void {
  writeSync(fd, text);
}

async function main(): Promise<number> {
  const name = invokedName();
  const load = PLUGINS[name];
  if (!load) {
    const about = `tscni ${TSCNI_VERSION}: CNI plugins ${Object.keys(PLUGINS).join(", ")}; invoke through a link named after the plugin`;
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
    readStdin: () => readStdin(),
    stdout: (t) => write(1, t),
    stderr: (t) => write(2, t),
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    write(2, `tscni: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    write(1, JSON.stringify({ cniVersion: "1.1.0", code: 999, msg: String(err instanceof Error ? err.message : err) }) + "\n");
    process.exit(1);
  },
);
