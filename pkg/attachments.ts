import { ConfigError } from "./types/errors.js";

/** One attachment a runtime still uses (SPEC.md 1.1.0, GC). */
export interface Attachment {
  containerId: string;
  ifname: string;
}

/**
 * The attachments GC must keep: `cni.dev/valid-attachments` (`cni.dev/attachments` is
 * accepted too). Undefined when the config carries neither: callers then release nothing,
 * since releasing everything because a runtime left the key out would break every live pod.
 */
export function validAttachments(config: Record<string, unknown>): Attachment[] | undefined {
  const list = config["cni.dev/valid-attachments"] ?? config["cni.dev/attachments"];
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw new ConfigError('"cni.dev/valid-attachments" must be an array');
  return list.map((a, i) => {
    const o = a as Record<string, unknown>;
    if (typeof a !== "object" || a === null || typeof o.containerID !== "string" || typeof o.ifname !== "string") {
      throw new ConfigError(`"cni.dev/valid-attachments"[${i}] must be {"containerID": string, "ifname": string}`);
    }
    return { containerId: o.containerID, ifname: o.ifname };
  });
}
