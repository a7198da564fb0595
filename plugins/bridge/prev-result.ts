/** Reading prevResult: which interface is which, and the pod addresses. */
import { parseCidr, type Cidr } from "../../pkg/ip.js";
import type { NetConf } from "../../pkg/types/netconf.js";
import type { CniInterface, Result } from "../../pkg/types/result.js";
import { toCurrent } from "../../pkg/version.js";

/** The prevResult in the 1.x model, or undefined when absent or unreadable. */
export function prevResultOf(config: NetConf): Result | undefined {
  const prev = config.prevResult;
  if (!prev || typeof prev !== "object") return undefined;
  try {
    return toCurrent(prev, typeof prev.cniVersion === "string" ? prev.cniVersion : config.cniVersion);
  } catch {
    return undefined;
  }
}

export interface Roles {
  bridge?: CniInterface;
  hostVeth?: CniInterface;
  pod?: CniInterface;
}

/** Bridge by name; the pod interface by name and sandbox; the host veth is the other one without a sandbox. */
export function interfaceRoles(r: Result, bridge: string, ifname: string, netns: string): Roles {
  const roles: Roles = {};
  for (const i of r.interfaces ?? []) {
    if (!i.sandbox && i.name === bridge && !roles.bridge) roles.bridge = i;
    else if (i.sandbox && i.name === ifname && (netns === "" || i.sandbox === netns) && !roles.pod) roles.pod = i;
    else if (!i.sandbox && /^veth[0-9a-f]{8}$/.test(i.name) && !roles.hostVeth) roles.hostVeth = i;
  }
  if (!roles.hostVeth) roles.hostVeth = (r.interfaces ?? []).find((i) => !i.sandbox && i.name !== bridge && !i.name.startsWith(`${bridge}.`));
  return roles;
}

/** The pod addresses of a result (all of them: the bridge gives every IP to the pod). */
export function addressesOf(r: Result | undefined): Cidr[] | undefined {
  if (!r?.ips?.length) return undefined;
  const out = r.ips.map((ip) => parseCidr(ip.address)).filter((c): c is Cidr => c !== undefined);
  return out.length ? out : undefined;
}
