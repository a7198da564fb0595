/**
 * The newest (1.x) result model. Plugins build results in this shape only;
 * pkg/version.ts converts to the requested version once, when printing.
 */
export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IpConfig {
  /** CIDR form: the address with the prefix of its subnet, e.g. "10.85.0.5/16". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}

/** A result in any version, as found on stdin (prevResult) or from a delegated plugin. */
export type AnyResult = Record<string, unknown> & { cniVersion?: string };
