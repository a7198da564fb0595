/** Replaced at build time by scripts/build.mjs (esbuild `define`); "dev" when run from source. */
declare const __TSCNI_VERSION__: string | undefined;
export const TSCNI_VERSION: string = typeof __TSCNI_VERSION__ === "string" ? __TSCNI_VERSION__ : "dev";

export function aboutText(plugin: string): string {
  return `CNI ${plugin} plugin (tscni ${TSCNI_VERSION})`;
}
