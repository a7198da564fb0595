// Where things are: the repo, the built executable, the Go reference plugins, the libcni driver.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** CNI_PATH holding tscni's `bridge` and `host-local` (hard links to dist/bin/tscni). */
export const TSCNI_BIN_DIR = join(REPO_ROOT, "dist", "bin");
export const TSCNI_EXE = join(TSCNI_BIN_DIR, "tscni");
/** CNI_PATH of Debian's containernetworking-plugins (Go reference, 1.1.1). */
export const GO_CNI_DIR = "/usr/lib/cni";
export const DRIVER_PATH = join(REPO_ROOT, "test", "libcni-driver", "cnidriver");
