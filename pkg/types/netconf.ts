import type { AnyResult, Dns } from "./result.js";

/** The network configuration every plugin receives on stdin (SPEC.md "Section 1"). */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  ipam?: IpamConf;
  dns?: Dns;
  args?: Record<string, unknown>;
  runtimeConfig?: Record<string, unknown>;
  capabilities?: Record<string, boolean>;
  prevResult?: AnyResult;
  [key: string]: unknown;
}

export interface IpamConf {
  type: string;
  [key: string]: unknown;
}

export type Command = "ADD" | "DEL" | "CHECK" | "STATUS" | "GC" | "VERSION";

/** One validated plugin invocation: env and stdin, parsed. */
export interface Invocation {
  command: Command;
  /** "" for STATUS and GC. */
  containerId: string;
  /** "" when absent (allowed for DEL, STATUS, GC). */
  netns: string;
  /** "" for STATUS and GC. */
  ifname: string;
  /** Raw CNI_ARGS. */
  args: string;
  /** CNI_PATH, split on ':'. */
  path: string[];
  /** The config text exactly as received, for delegating to another plugin. */
  stdin: string;
  /** The parsed config, cniVersion defaulted to 0.1.0. */
  config: NetConf;
}
