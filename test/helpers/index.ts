// One import for tests: everything in test/helpers.
export * from "./cleanup.js";
export * from "./cni.js";
export * from "./exec.js";
export * from "./firewall.js";
export * from "./ipjson.js";
export * from "./netns.js";
export * from "./paths.js";
