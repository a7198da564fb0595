/**
 * The bridge network configuration: every key of the reference plugin with its
 * defaults, plus `nonMasqueradeCIDRs` and `logFile`. Pure: parse, default, validate;
 * every problem is a ConfigError (code 7) before anything touches the host.
 */
import { parseCidr, type Cidr } from "../../pkg/ip.js";
import type { MasqBackend } from "../../pkg/masq/types.js";
import { ifnameProblem } from "../../pkg/skel.js";
import { ConfigError } from "../../pkg/types/errors.js";
import type { Invocation, IpamConf } from "../../pkg/types/netconf.js";
import type { Dns } from "../../pkg/types/result.js";

export interface BridgeConfig {
  name: string;
  cniVersion: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  /** Undefined: detect (iptables when present, else nftables). */
  ipMasqBackend: MasqBackend | undefined;
  /** 0: kernel default. */
  mtu: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  /** 0: no VLAN. */
  vlan: number;
  /** Sorted, distinct trunk VLAN IDs. */
  vlanTrunk: number[];
  preserveDefaultVlan: boolean;
  macspoofchk: boolean;
  enabledad: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  dns: Dns | undefined;
  /** Undefined: L2 only. */
  ipam: IpamConf | undefined;
  /** From CNI_ARGS MAC=, args.cni.mac, runtimeConfig.mac (last wins); lower case. */
  mac: string | undefined;
  nonMasqueradeCidrs: Cidr[];
  logFile: string | undefined;
}

type Raw = Record<string, unknown>;

function bool(raw: Raw, key: string, dflt: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean") throw new ConfigError(`"${key}" must be a boolean, not ${JSON.stringify(v)}`);
  return v;
}

function int(raw: Raw, key: string, min: number, max: number, what = `between ${min} and ${max}`): number {
  const v = raw[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isInteger(v)) throw new ConfigError(`"${key}" must be an integer, not ${JSON.stringify(v)}`);
  if (v !== 0 && (v < min || v > max)) throw new ConfigError(`invalid ${key} ${v} (must be ${what})`);
  return v;
}

function obj(v: unknown): v is Raw {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Trunk entries: {id} or {minID, maxID}; IDs 1..4094; the union, sorted. */
export function collectVlanTrunk(raw: unknown): number[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ConfigError('"vlanTrunk" must be a list');
  const ids = new Set<number>();
  const vid = (v: unknown, what: string): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > 4094) throw new ConfigError(`incorrect trunk ${what} parameter ${JSON.stringify(v)} (must be 1 to 4094)`);
    return v;
  };
  for (const item of raw) {
    if (!obj(item)) throw new ConfigError('"vlanTrunk" entries must be objects');
    const hasMin = item.minID !== undefined && item.minID !== null;
    const hasMax = item.maxID !== undefined && item.maxID !== null;
    if (hasMin !== hasMax) throw new ConfigError(`minID and maxID must be configured together, ${hasMin ? "maxID" : "minID"} is missing`);
    if (hasMin) {
      const lo = vid(item.minID, "minID");
      const hi = vid(item.maxID, "maxID");
      if (hi < lo) throw new ConfigError(`minID ${lo} is greater than maxID ${hi} in vlanTrunk`);
      for (let v = lo; v <= hi; v++) ids.add(v);
    }
    if (item.id !== undefined && item.id !== null) ids.add(vid(item.id, "id"));
  }
  return [...ids].sort((a, b) => a - b);
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function checkMac(mac: string, from: string): string {
  const m = mac.toLowerCase().replace(/-/g, ":");
  if (!MAC.test(m)) throw new ConfigError(`invalid MAC address ${JSON.stringify(mac)} in ${from}`);
  if (parseInt(m.slice(0, 2), 16) & 1) throw new ConfigError(`MAC address ${mac} in ${from} is a multicast address`);
  if (m === "00:00:00:00:00:00") throw new ConfigError(`MAC address ${mac} in ${from} is all zeros`);
  return m;
}

/** CNI_ARGS "K=V;K2=V2"; keys other than MAC are left to other plugins. */
export function macFromCniArgs(args: string): string | undefined {
  let mac: string | undefined;
  for (const pair of args.split(";")) {
    const i = pair.indexOf("=");
    if (i < 0) continue;
    if (pair.slice(0, i).trim().toUpperCase() === "MAC" && pair.slice(i + 1) !== "") mac = pair.slice(i + 1);
  }
  return mac;
}

function dnsOf(v: unknown): Dns | undefined {
  if (v === undefined || v === null) return undefined;
  if (!obj(v)) throw new ConfigError('"dns" must be an object');
  const d = v as Dns;
  const set = (d.nameservers?.length ?? 0) > 0 || (d.search?.length ?? 0) > 0 || (d.options?.length ?? 0) > 0 || (d.domain ?? "") !== "";
  return set ? d : undefined;
}

export function parseBridgeConfig(inv: Pick<Invocation, "config" | "args">): BridgeConfig {
  const raw = inv.config as unknown as Raw;
  const bridge = raw.bridge === undefined || raw.bridge === null || raw.bridge === "" ? "cni0" : raw.bridge;
  if (typeof bridge !== "string") throw new ConfigError(`"bridge" must be a string, not ${JSON.stringify(bridge)}`);
  const why = ifnameProblem(bridge);
  if (why) throw new ConfigError(`invalid bridge name ${JSON.stringify(bridge)}: ${why}`);

  const backend = raw.ipMasqBackend;
  if (backend !== undefined && backend !== null && backend !== "" && backend !== "iptables" && backend !== "nftables") {
    throw new ConfigError(`invalid ipMasqBackend ${JSON.stringify(backend)} (must be "iptables" or "nftables")`);
  }
  const vlan = int(raw, "vlan", 1, 4094, "between 0 and 4094");
  if ((raw.vlan as number) < 0) throw new ConfigError(`invalid VLAN ID ${String(raw.vlan)} (must be between 0 and 4094)`);
  const vlanTrunk = collectVlanTrunk(raw.vlanTrunk);
  if (vlan > 0 && vlanTrunk.length > 0) throw new ConfigError("cannot set vlan and vlanTrunk at the same time");
  const mtu = int(raw, "mtu", 68, 65535);
  if ((raw.mtu as number) < 0) throw new ConfigError(`invalid mtu ${String(raw.mtu)}`);

  const isDefaultGateway = bool(raw, "isDefaultGateway", false);
  const hairpinMode = bool(raw, "hairpinMode", false);
  const promiscMode = bool(raw, "promiscMode", false);
  if (hairpinMode && promiscMode) throw new ConfigError("cannot set hairpin mode and promiscuous mode at the same time");

  let ipam: IpamConf | undefined;
  if (raw.ipam !== undefined && raw.ipam !== null) {
    if (!obj(raw.ipam)) throw new ConfigError('"ipam" must be an object');
    const t = raw.ipam.type;
    if (t !== undefined && t !== "" && typeof t !== "string") throw new ConfigError('"ipam.type" must be a string');
    if (typeof t === "string" && t !== "") ipam = raw.ipam as IpamConf;
  }
  const disableContainerInterface = bool(raw, "disableContainerInterface", false);
  if (disableContainerInterface && ipam) throw new ConfigError("cannot use IPAM when disableContainerInterface is set");

  let mac: string | undefined;
  const envMac = macFromCniArgs(inv.args);
  if (envMac) mac = checkMac(envMac, "CNI_ARGS");
  const args = raw.args;
  if (obj(args) && obj(args.cni) && typeof args.cni.mac === "string" && args.cni.mac !== "") mac = checkMac(args.cni.mac, "args.cni.mac");
  const rc = raw.runtimeConfig;
  if (obj(rc) && typeof rc.mac === "string" && rc.mac !== "") mac = checkMac(rc.mac, "runtimeConfig.mac");

  const nmc = raw.nonMasqueradeCIDRs;
  if (nmc !== undefined && nmc !== null && !Array.isArray(nmc)) throw new ConfigError('"nonMasqueradeCIDRs" must be a list of CIDRs');
  const nonMasqueradeCidrs = ((nmc as unknown[] | undefined) ?? []).map((s) => {
    const c = typeof s === "string" ? parseCidr(s) : undefined;
    if (!c) throw new ConfigError(`invalid CIDR ${JSON.stringify(s)} in nonMasqueradeCIDRs`);
    return c;
  });

  const logFile = raw.logFile;
  if (logFile !== undefined && logFile !== null && logFile !== "" && (typeof logFile !== "string" || !logFile.startsWith("/"))) {
    throw new ConfigError(`"logFile" must be an absolute path, not ${JSON.stringify(logFile)}`);
  }

  return {
    name: inv.config.name,
    cniVersion: inv.config.cniVersion,
    bridge,
    isGateway: bool(raw, "isGateway", false) || isDefaultGateway,
    isDefaultGateway,
    forceAddress: bool(raw, "forceAddress", false),
    ipMasq: bool(raw, "ipMasq", false),
    ipMasqBackend: backend === "iptables" || backend === "nftables" ? backend : undefined,
    mtu,
    hairpinMode,
    promiscMode,
    vlan,
    vlanTrunk,
    preserveDefaultVlan: bool(raw, "preserveDefaultVlan", true),
    macspoofchk: bool(raw, "macspoofchk", false),
    enabledad: bool(raw, "enabledad", false),
    disableContainerInterface,
    portIsolation: bool(raw, "portIsolation", false),
    dns: dnsOf(raw.dns),
    ipam,
    mac,
    nonMasqueradeCidrs,
    logFile: typeof logFile === "string" && logFile !== "" ? logFile : undefined,
  };
}
