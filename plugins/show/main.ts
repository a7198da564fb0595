/**
 * `tscni show`: which pod owns which veth, address and masquerade chain, and what is left
 * over. An operator command, not a CNI call: plain errors on stderr, exit 1.
 * Loaded lazily by plugins/main.ts, so the plugins never pay for it.
 */
import { writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { collectFacts } from "./collect.js";
import { renderJson, renderTable } from "./render.js";
import { buildReport } from "./report.js";
import { ShowError } from "./show-error.js";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";
export const DEFAULT_CACHE_DIR = "/var/lib/cni";

export const USAGE = `usage: tscni show [--data-dir DIR] [--network NAME] [--json] [--no-trunc] [--cache-dir DIR]

Lists every attachment host-local reserved addresses for, in the current network
namespace: container ID, interface, addresses, the host veth (found by the
"tscni:<network>:<ifname>:<containerId>" alias tscni's bridge sets on it, or through
libcni's cached result), the bridge it is on, and its masquerade state (the iptables
chain CNI-<hash> and tscni's nftables chain). Then the orphans:
  veth            a host veth whose alias names an attachment with no reservation
  reservation     reserved addresses whose veth is gone (only when no unmarked veth
                  on a bridge could be it: the reference plugin marks none)
  iptables-chain  a CNI- nat chain whose comment names a container with no reservation
  nft-chain       a tscni nftables chain of an attachment with no reservation
Reads only; changes nothing.

  --data-dir DIR   host-local's dataDir (default ${DEFAULT_DATA_DIR})
  --network NAME   only this network (default: every directory in DIR)
  --json           machine-readable output
  --no-trunc       full container IDs in the table
  --cache-dir DIR  libcni's cache dir, holding results/ (default ${DEFAULT_CACHE_DIR})
  -h, --help       this text
`;

export interface ShowIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIO: ShowIO = {
  stdout: (t) => writeSync(1, t),
  stderr: (t) => writeSync(2, t),
};

interface ShowArgs {
  dataDir: string;
  network?: string;
  cacheDir: string;
  json: boolean;
  noTrunc: boolean;
  help: boolean;
}

const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function parseShowArgs(argv: readonly string[]): ShowArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        "data-dir": { type: "string" },
        network: { type: "string" },
        "cache-dir": { type: "string" },
        json: { type: "boolean" },
        "no-trunc": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    // Node's messages vary by version ("Unknown option '--x'. To specify a positional …"): keep the first sentence.
    const msg = (err as Error).message.split("\n")[0]!.replace(/\. To specify .*$/, "").replace(/\.$/, "");
    throw new ShowError(msg.charAt(0).toLowerCase() + msg.slice(1), { usage: true });
  }
  const dataDir = values["data-dir"] ?? DEFAULT_DATA_DIR;
  if (dataDir === "") throw new ShowError("--data-dir must not be empty", { usage: true });
  const network = values.network;
  if (network !== undefined && !NETWORK_NAME.test(network)) {
    throw new ShowError(`--network ${JSON.stringify(network)} is not a network name (letters, digits, "_", ".", "-")`, { usage: true });
  }
  return {
    dataDir,
    ...(network !== undefined ? { network } : {}),
    cacheDir: values["cache-dir"] ?? DEFAULT_CACHE_DIR,
    json: values.json ?? false,
    noTrunc: values["no-trunc"] ?? false,
    help: values.help ?? false,
  };
}

/** Entry point: argv after "show". Resolves to the exit code. */
export async function runShow(argv: readonly string[], io: ShowIO = processIO): Promise<number> {
  try {
    const args = parseShowArgs(argv);
    if (args.help) {
      io.stdout(USAGE);
      return 0;
    }
    const facts = await collectFacts({ dataDir: args.dataDir, cacheDir: args.cacheDir, ...(args.network !== undefined ? { network: args.network } : {}) });
    const report = buildReport(facts);
    io.stdout(args.json ? renderJson(report) : renderTable(report, { noTrunc: args.noTrunc }));
    return 0;
  } catch (err) {
    if (err instanceof ShowError) {
      io.stderr(`tscni show: ${err.message}${err.usage ? "\n(see tscni show --help)" : ""}\n`);
    } else {
      io.stderr(`tscni show: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    return 1;
  }
}
