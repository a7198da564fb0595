/**
 * STATUS (spec 1.1.0): ready when the tools an ADD spawns are present (else code 50,
 * plugin not available) and the IPAM plugin answers STATUS.
 */
import { findTool } from "../../pkg/exec.js";
import { ipamCall, resolveIpam } from "../../pkg/ipam.js";
import { CniCode, CniError } from "../../pkg/types/errors.js";
import type { Invocation } from "../../pkg/types/netconf.js";
import { parseBridgeConfig, type BridgeConfig } from "./config.js";
import type { StepLog } from "./log.js";

/** The tools this configuration needs on ADD. */
export function requiredTools(conf: BridgeConfig): string[] {
  const tools = ["ip"];
  if (conf.ipam) tools.push("nsenter", "sh");
  if (conf.ipMasq && conf.ipam) {
    const backend = conf.ipMasqBackend ?? (findTool("iptables") ? "iptables" : "nftables");
    tools.push(...(backend === "iptables" ? ["iptables", "iptables-restore"] : ["nft"]));
  }
  if (conf.vlan || conf.vlanTrunk.length) tools.push("bridge");
  if (conf.macspoofchk) tools.push("nft");
  return [...new Set(tools)];
}

export async function cmdStatus(inv: Invocation, log: StepLog): Promise<void> {
  const conf = parseBridgeConfig(inv);
  const missing = requiredTools(conf).filter((t) => !findTool(t));
  if (missing.length) {
    throw new CniError(CniCode.PluginNotAvailable, `required tools missing: ${missing.join(", ")}`, "install iproute2, util-linux and iptables or nftables");
  }
  if (conf.ipam) {
    const type = conf.ipam.type;
    await log.step("ipam", () => ipamCall(resolveIpam(type, inv), "STATUS", inv));
  }
}
