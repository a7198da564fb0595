import type { Handlers } from "../pkg/skel.js";

export interface Plugin {
  /** The one-line "about" text: name and version. */
  about: string;
  handlers: Handlers;
}

/**
 * Plugins by the name the executable is invoked as. Loaded lazily so that each
 * invocation pays start-up only for the plugin it runs.
 */
export const PLUGINS: Record<string, () => Promise<Plugin>> = {
  "host-local": async () => (await import("../ipam/host-local/plugin.js")).plugin,
  bridge: async () => (await import("./bridge/plugin.js")).plugin,
};
