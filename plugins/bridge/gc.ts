/**
 * GC (spec 1.1.0): removes the masquerade state of this network's attachments that
 * are not in `cni.dev/valid-attachments`, then forwards GC to IPAM. Without the list
 * it removes nothing (and host-local releases nothing).
 */
import { ipamCall, resolveIpam } from "../../pkg/ipam.js";
import { validAttachments } from "../../pkg/attachments.js";
import { gcMasq } from "../../pkg/masq/index.js";
import { CniError, asCniError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import { parseBridgeConfig } from "./config.js";
import type { StepLog } from "./log.js";

export async function cmdGc(inv: Invocation, log: StepLog): Promise<void> {
  const conf = parseBridgeConfig(inv);
  const keep = validAttachments(inv.config);
  const errors: unknown[] = [];
  if (keep === undefined) {
    // As host-local: removing everything because a runtime left the list out would cut off every live pod.
    log.note('GC without "cni.dev/valid-attachments": no masquerade state removed');
  } else {
    await log.step("masq", () => gcMasq(conf.name, keep)).catch((e: unknown) => errors.push(e));
  }
  if (conf.ipam) {
    const type = conf.ipam.type;
    await log.step("ipam", () => ipamCall(resolveIpam(type, inv), "GC", inv)).catch((e: unknown) => errors.push(e));
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    const all = errors.map((e) => asCniError(e));
    throw new CniError(all[0]!.code, all.map((e) => e.message).join("; "), all.map((e) => e.details).filter(Boolean).join("\n"));
  }
}
