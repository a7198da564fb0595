import { statSync } from "node:fs";
import { NetnsError } from "./types/errors.js";

/** A network namespace's identity: the nsfs device and inode of its file. */
export interface NetnsId {
  dev: number;
  ino: number;
}

export type NetnsState = { kind: "none" } | { kind: "gone" } | { kind: "ok"; id: NetnsId } | { kind: "invalid"; why: string };

const SELF = "/proc/self/ns/net";

function selfId(): NetnsId {
  const s = statSync(SELF);
  return { dev: s.dev, ino: s.ino };
}

/**
 * Observes CNI_NETNS: absent, gone, a network namespace, or something else. Checks that a
 * path names a network namespace without entering it: every namespace file (a
 * /proc/<pid>/ns/* link or a bind mount of one) lives on the kernel's nsfs, so its st_dev
 * equals that of /proc/self/ns/net; its st_ino is the namespace's identity. The plugin's
 * own namespace is refused: configuring it would put the "pod" end of the veth into the
 * node itself.
 */
export function netnsState(path: string): NetnsState {
  if (path === "") return { kind: "none" };
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { kind: "gone" };
    return { kind: "invalid", why: `cannot stat ${JSON.stringify(path)}: ${(err as Error).message}` };
  }
  const self = selfId();
  if (st.dev !== self.dev) return { kind: "invalid", why: `${JSON.stringify(path)} is not a network namespace (not on nsfs)` };
  if (st.ino === self.ino) return { kind: "invalid", why: `${JSON.stringify(path)} is the plugin's own network namespace` };
  return { kind: "ok", id: { dev: st.dev, ino: st.ino } };
}

/** For ADD and CHECK: the namespace must exist and be a foreign network namespace. */
export function requireNetns(path: string): NetnsId {
  const s = netnsState(path);
  switch (s.kind) {
    case "ok":
      return s.id;
    case "none":
      throw new NetnsError("CNI_NETNS is empty");
    case "gone":
      throw new NetnsError(`network namespace ${JSON.stringify(path)} does not exist`);
    case "invalid":
      throw new NetnsError(s.why);
  }
}
