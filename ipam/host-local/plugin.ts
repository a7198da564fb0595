import { aboutText } from "../../pkg/about.js";
import type { Plugin } from "../../plugins/registry.js";
import { createHandlers } from "./commands.js";

export const plugin: Plugin = {
  about: aboutText("host-local"),
  handlers: createHandlers(),
};
