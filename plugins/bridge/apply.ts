/**
 * Thin executors for the plans: each runs one process and turns its failure into a
 * CniError naming the failing line. Nothing here decides anything.
 */
import { run, tool } from "../../pkg/exec.js";
import { formatCidr, type Cidr } from "../../pkg/ip.js";
import { BatchFailedError, ipArgv, isNoDevice, line, runBatch, type BatchResult } from "../../pkg/iproute2.js";
import { broadcast, podScript, type PodPlan } from "./plan-pod.js";

/** The pod-side process: sysctls then `ip -batch`, inside the pod's namespace. */
export async function applyPod(netns: string, plan: PodPlan): Promise<BatchResult> {
  if (plan.sysctls.length === 0) return runBatch(plan.lines, { netns });
  const settle = plan.settleDad ? { ifname: plan.settleDad, ip: tool("ip"), sleep: tool("sleep") } : undefined;
  const argv = [tool("nsenter"), `--net=${netns}`, tool("sh"), "-c", podScript(plan.sysctls, [tool("ip"), "-batch", "-"], settle)];
  return runBatch(plan.lines, {}, argv);
}

export async function applyPodOrThrow(netns: string, plan: PodPlan): Promise<string> {
  const r = await applyPod(netns, plan);
  if (!r.ok) throw new BatchFailedError("configuring the pod interface failed", r, plan.lines);
  return r.stderr;
}

/** `bridge -batch -` for VLAN port settings. */
export async function applyVlan(lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  const argv = [tool("bridge"), "-batch", "-"];
  const r = await runBatch(lines, {}, argv);
  if (!r.ok) throw new BatchFailedError("setting the port VLANs failed", r, lines);
}

/** Deletes a host link; a link already gone is success. */
export async function deleteHostLink(name: string): Promise<void> {
  const lines = [line("link", "del", "dev", name)];
  const r = await runBatch(lines);
  if (!r.ok && !isNoDevice(r.stderr)) throw new BatchFailedError(`deleting ${name} failed`, r, lines);
}

/** Deletes addresses from a host link (forceAddress, or undoing our gateway). */
export async function deleteAddrs(dev: string, cidrs: readonly string[]): Promise<void> {
  if (cidrs.length === 0) return;
  const lines = cidrs.map((c) => line("addr", "del", c, "dev", dev));
  const r = await run(ipArgv(), { stdin: lines.join("\n") + "\n", allowFailure: true });
  if (r.code !== 0) throw new Error(`removing ${cidrs.join(", ")} from ${dev} failed: ${r.stderr.trim()}`);
}

/** forceAddress: removes the conflicting addresses, then (re)adds the gateways, in one batch. */
export async function replaceAddrs(dev: string, remove: readonly string[], gateways: readonly Cidr[]): Promise<void> {
  const lines = [
    ...remove.map((c) => line("addr", "del", c, "dev", dev)),
    ...gateways.map((g) => line("addr", "replace", formatCidr(g), ...broadcast(g), "dev", dev, ...(g.ip.family === 6 ? ["nodad"] : []))),
  ];
  const r = await runBatch(lines);
  if (!r.ok) throw new BatchFailedError(`replacing the addresses of ${dev} failed`, r, lines);
}
