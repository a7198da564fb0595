/**
 * The bridge plugin: each command is timed step by step and, with `logFile`, logged
 * as one JSON line. Command modules load on demand, so an ADD never loads CHECK.
 */
import { aboutText } from "../../pkg/about.js";
import type { Handlers } from "../../pkg/skel.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import type { Plugin } from "../registry.js";
import { StepLog, writeLog } from "./log.js";

function logFileOf(inv: Invocation): string | undefined {
  const f = inv.config.logFile;
  return typeof f === "string" && f.startsWith("/") ? f : undefined;
}

async function logged<T>(inv: Invocation, fn: (log: StepLog) => Promise<T>): Promise<T> {
  const log = new StepLog();
  const file = logFileOf(inv);
  const fields = { plugin: "bridge", command: inv.command, network: inv.config.name, containerId: inv.containerId, ifname: inv.ifname, netns: inv.netns };
  try {
    const out = await fn(log);
    writeLog(file, log.record(fields));
    return out;
  } catch (err) {
    writeLog(file, log.record(fields, err));
    throw err;
  }
}

const handlers: Handlers = {
  add: (inv) => logged(inv, async (log) => (await import("./add.js")).cmdAdd(inv, log)),
  del: (inv) => logged(inv, async (log) => (await import("./del.js")).cmdDel(inv, log)),
  check: (inv) => logged(inv, async (log) => (await import("./check.js")).cmdCheck(inv, log)),
  status: (inv) => logged(inv, async (log) => (await import("./status.js")).cmdStatus(inv, log)),
  gc: (inv) => logged(inv, async (log) => (await import("./gc.js")).cmdGc(inv, log)),
};

export const plugin: Plugin = { about: aboutText("bridge"), handlers };
