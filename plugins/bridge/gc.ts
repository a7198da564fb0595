/**
 * GC (spec 1.1.0): removes the masquerade state of this network's attachments that
 * are not in `cni.dev/valid-attachments`, then forwards GC to IPAM.
 */
import { ipamCall, resolveIpam } from "../../pkg/ipam.js";
import { gcMasq, type Attachment } from "../../pkg/masq/index.js";
import { ConfigError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import { parseBridgeConfig } from "./config.js";
import type { StepLog } from "./log.js";

export function validAttachments(raw: unknown): Attachment[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ConfigError('"cni.dev/valid-attachments" must be a list');
  return raw.map((a) => {
    const o = a as { containerID?: unknown; ifname?: unknown };
    if (typeof o !== "object" || o === null || typeof o.containerID !== "string" || typeof o.ifname !== "string") {
      throw new ConfigError('each "cni.dev/valid-attachments" entry needs "containerID" and "ifname"');
    }
    return { containerId: o.containerID, ifname: o.ifname };
  });
}

export async function cmdGc(inv: Invocation, log: StepLog): Promise<void> {
  const conf = parseBridgeConfig(inv);
  const keep = validAttachments(inv.config["cni.dev/valid-attachments"]);
  const errors: unknown[] = [];
  await log.step("masq", () => gcMasq(conf.name, keep)).catch((e: unknown) => errors.push(e));
  if (conf.ipam) {
    const type = conf.ipam.type;
    await log.step("ipam", () => ipamCall(resolveIpam(type, inv), "GC", inv)).catch((e: unknown) => errors.push(e));
  }
  if (errors.length) throw errors[0];
}
