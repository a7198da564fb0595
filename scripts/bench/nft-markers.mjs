// The nftables backend leaves a marker per network and network namespace in /run/tscni
// (pkg/masq/index.ts nftMarker: nft-masq.<network>.<netns inode>), so that an iptables DEL
// knows whether nftables may hold state too. Namespaces the tests and the benchmark make
// and delete free their inodes for later ones: a marker left by one would send the next
// namespace's iptables DELs to nftables as well. Markers are forgotten when a namespace of
// ours is made and before it is deleted — ours only, never another namespace's.
import { readdirSync, statSync, unlinkSync } from "node:fs";

export const NFT_MARKER_DIR = "/run/tscni";

/** Removes the markers of the netns bound at /run/netns/<name>; silent when there are none. */
export function forgetNftMarkers(name) {
  let inode;
  try {
    inode = statSync(`/run/netns/${name}`).ino;
  } catch {
    return;
  }
  let files;
  try {
    files = readdirSync(NFT_MARKER_DIR);
  } catch {
    return;
  }
  for (const f of files) {
    if (f.startsWith("nft-masq.") && f.endsWith(`.${inode}`)) {
      try {
        unlinkSync(`${NFT_MARKER_DIR}/${f}`);
      } catch {
        /* gone meanwhile */
      }
    }
  }
}
