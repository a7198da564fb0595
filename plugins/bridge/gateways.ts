/**
 * From the IPAM result to what the bridge plugin applies, as a pure function of
 * (result, config): every IP belongs to the pod interface (index 2); with isGateway a
 * missing gateway is the subnet's first address; with isDefaultGateway each family
 * gets a default route via its gateway unless IPAM already gave one; the gateway
 * addresses to put on the bridge, per family.
 */
import { formatIp, nextIp, networkOf, parseCidr, type Cidr, type Family } from "../../pkg/ip.js";
import { CniCode, CniError } from "../../pkg/types/errors.js";
import type { IpConfig, Result, Route } from "../../pkg/types/result.js";
import type { BridgeConfig } from "./config.js";

export interface Addressing {
  ips: IpConfig[];
  routes: Route[];
  /** Pod addresses, parsed, in result order. */
  addresses: Cidr[];
  /** Gateway addresses for the bridge (gateway IP with the pod subnet's prefix), deduplicated. */
  gateways: Cidr[];
}

const DEFAULT_DST: Record<Family, string> = { 4: "0.0.0.0/0", 6: "::/0" };

function isDefault(dst: string, family: Family): boolean {
  const c = parseCidr(dst);
  return c !== undefined && c.ip.family === family && c.prefix === 0;
}

export function computeAddressing(ipam: Result, conf: Pick<BridgeConfig, "isGateway" | "isDefaultGateway">): Addressing {
  const ips: IpConfig[] = [];
  const routes: Route[] = (ipam.routes ?? []).map((r) => ({ ...r }));
  const addresses: Cidr[] = [];
  const gateways: Cidr[] = [];
  const defaultDone = new Set<Family>();
  for (const ip of ipam.ips ?? []) {
    const addr = parseCidr(ip.address);
    // The IPAM plugin's result does not decode (code 6, as for a result that is not JSON).
    if (!addr) throw new CniError(CniCode.DecodeFailure, `IPAM returned an invalid address ${JSON.stringify(ip.address)}`);
    const family = addr.ip.family;
    let gateway = ip.gateway;
    if (gateway !== undefined && gateway !== "") {
      const g = parseCidr(`${gateway}/${addr.prefix}`);
      if (!g || g.ip.family !== family) throw new CniError(CniCode.DecodeFailure, `IPAM returned an invalid gateway ${JSON.stringify(gateway)} for ${ip.address}`);
    } else if (conf.isGateway) {
      gateway = formatIp(nextIp(networkOf(addr)));
    } else {
      gateway = undefined;
    }
    ips.push({ address: ip.address, ...(gateway ? { gateway } : {}), interface: 2 });
    addresses.push(addr);

    if (conf.isDefaultGateway && !defaultDone.has(family)) {
      const existing = routes.find((r) => isDefault(r.dst, family));
      if (!existing) routes.push({ dst: DEFAULT_DST[family], ...(gateway ? { gw: gateway } : {}) });
      defaultDone.add(family);
    }
    if (conf.isGateway && gateway) {
      const gw = parseCidr(`${gateway}/${addr.prefix}`)!;
      if (!gateways.some((g) => g.ip.value === gw.ip.value && g.prefix === gw.prefix && g.ip.family === gw.ip.family)) gateways.push(gw);
    }
  }
  return { ips, routes, addresses, gateways };
}

/** The gateway a route uses in the pod: its own, else the first gateway of its family. */
export function routeGateway(route: Route, ips: readonly IpConfig[]): string | undefined {
  if (route.gw) return route.gw;
  const c = parseCidr(route.dst);
  if (!c) return undefined;
  for (const ip of ips) {
    const a = parseCidr(ip.address);
    if (a && a.ip.family === c.ip.family && ip.gateway) return ip.gateway;
  }
  return undefined;
}
