/**
 * tscni's by-attachment index of one network directory, so that ADD/DEL/CHECK find an
 * attachment's reservations without reading every reservation file (README "Index").
 *
 * Lives OUTSIDE the reference layout, in `<dataDir>/.tscni/<network>/`:
 *   buckets/00 … ff    the reservations, one line each (`<containerID> <ip> <ifname>`,
 *                      no ifname for a legacy id-only file), in the bucket chosen by a
 *                      hash of the container ID; rewritten in place (a create costs
 *                      20× an overwrite on a busy ext4, see README), created when first
 *                      needed and removed when empty
 *   state              what the network directory looked like when the index was last
 *                      known to match it: the directory's inode + mtime (ns) and every
 *                      `last_reserved_ip.N` (inode, mtime, content, or absent)
 *   lock               our whole-command lock (pkg/lock.ts), kept here so that taking it
 *                      never changes the network directory's mtime
 * The Go plugin never looks outside `<dataDir>/<network>/`, and a network name cannot
 * start with ".", so nothing here can collide with it.
 *
 * Rules: the index is trusted only when `state` matches what is observed now; a hit is
 * used only after the reservation file it names is read and holds that attachment;
 * `state` is removed before the first change to the network directory and written back
 * (certified) only when every `last_reserved_ip.N` still holds what this command saw or
 * wrote — every reserve by any host-local (Go's, ours, older tscni) rewrites that file
 * after creating the address file, so a concurrent foreign reserve is caught either by
 * the directory mtime or by that file.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { formatIp, parseIp } from "../../pkg/ip.js";
import { canonicalIp } from "./range-set.js";
import { decodeReservation, LAST_RESERVED_PREFIX } from "./store.js";
import type { DiskStore, Reservation } from "./store.js";

export const INDEX_DIR = ".tscni";
/** Container IDs the line format can hold; others (never valid per the spec) bypass the index. */
const ID_RE = /^[^\s]{1,1024}$/;
export const indexable = (id: string): boolean => ID_RE.test(id);
export const BUCKETS = 256;

/** FNV-1a of the ID, as two hex digits: the bucket file holding its reservations. */
export function bucketOf(id: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return ((h >>> 0) % BUCKETS).toString(16).padStart(2, "0");
}

export interface FileMark {
  ino: string;
  mtimeNs: string;
  text: string;
}

export interface IndexState {
  v: 1;
  dirIno: string;
  dirMtimeNs: string;
  /** `last_reserved_ip.N` by N; null = absent. */
  lr: Record<string, FileMark | null>;
}

export interface LrSeen {
  /** Kept open while the command runs: a foreign write to the file we replace lands here. */
  fd?: number;
  mark: FileMark | null;
}

export interface Observation {
  dirIno: string;
  dirMtimeNs: string;
  lr: Map<number, LrSeen>;
}

const buf = Buffer.alloc(256);

/** Opens and reads a small file; the fd stays open when `keep`. */
export function markOf(path: string, keep: boolean): LrSeen {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { mark: null };
    throw err;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    const n = readSync(fd, buf, 0, buf.length, 0);
    const mark = { ino: String(st.ino), mtimeNs: String(st.mtimeNs), text: buf.toString("utf8", 0, n) };
    if (keep) return { fd, mark };
    closeSync(fd);
    return { mark };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

export const sameMark = (a: FileMark | null | undefined, b: FileMark | null | undefined): boolean =>
  a === b || (!!a && !!b && a.ino === b.ino && a.mtimeNs === b.mtimeNs && a.text === b.text);

export class ReservationIndex {
  readonly root: string;
  readonly ids: string;
  readonly statePath: string;
  readonly lockPath: string;
  private invalidated = false;
  /** Bucket texts read by this command (rewritten from these). */
  private readonly texts = new Map<string, string>();

  constructor(readonly store: DiskStore, dataDir: string, network: string) {
    this.root = `${dataDir.replace(/\/+$/, "")}/${INDEX_DIR}/${network}`;
    this.ids = `${this.root}/buckets`;
    this.statePath = `${this.root}/state`;
    this.lockPath = `${this.root}/lock`;
  }

  ensure(): void {
    mkdirSync(this.ids, { recursive: true, mode: 0o755 });
  }

  loadState(): IndexState | undefined {
    try {
      const s = JSON.parse(readFileSync(this.statePath, "utf8")) as IndexState;
      return s && s.v === 1 && typeof s.lr === "object" ? s : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The network directory as it is now: its inode and mtime first, then every
   * `last_reserved_ip.N` for N below `sets` or recorded in `state` (see certify()).
   */
  observe(sets: number, state: IndexState | undefined, keepFds: boolean): Observation {
    let dirIno = "";
    let dirMtimeNs = "";
    try {
      const st = statSync(this.store.dir, { bigint: true });
      dirIno = String(st.ino);
      dirMtimeNs = String(st.mtimeNs);
    } catch {
      /* no directory: nothing to trust */
    }
    const ns = new Set<number>();
    for (let n = 0; n < sets; n++) ns.add(n);
    for (const k of Object.keys(state?.lr ?? {})) ns.add(Number(k));
    const lr = new Map<number, LrSeen>();
    for (const n of ns) lr.set(n, markOf(`${this.store.dir}/${LAST_RESERVED_PREFIX}${n}`, keepFds));
    return { dirIno, dirMtimeNs, lr };
  }

  static close(obs: Observation): void {
    for (const s of obs.lr.values()) {
      if (s.fd === undefined) continue;
      try {
        closeSync(s.fd);
      } catch {
        /* ignore */
      }
      delete s.fd;
    }
  }

  /** Does `state` describe the directory observed in `obs`? */
  static matches(state: IndexState | undefined, obs: Observation): boolean {
    if (!state || obs.dirIno === "" || state.dirIno !== obs.dirIno || state.dirMtimeNs !== obs.dirMtimeNs) return false;
    for (const [n, seen] of obs.lr) {
      if (!sameMark(state.lr[n] ?? null, seen.mark)) return false;
    }
    return true;
  }

  private bucketText(b: string): string {
    let text = this.texts.get(b);
    if (text === undefined) {
      try {
        text = readFileSync(`${this.ids}/${b}`, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        text = "";
      }
      this.texts.set(b, text);
    }
    return text;
  }

  /** Every reservation the index holds for `id` (any ifname); throws on a damaged line. */
  read(id: string): Reservation[] {
    const b = bucketOf(id);
    const out: Reservation[] = [];
    for (const line of this.bucketText(b).split("\n")) {
      if (line === "") continue;
      // "<id> <ip>[ <ifname>]": the ID has no whitespace; an ifname written by another
      // plugin might, so it is the rest of the line.
      const s1 = line.indexOf(" ");
      const s2 = s1 < 0 ? -1 : line.indexOf(" ", s1 + 1);
      const ip = s1 < 0 ? undefined : parseIp(s2 < 0 ? line.slice(s1 + 1) : line.slice(s1 + 1, s2));
      if (!ip) throw new Error(`bad index line ${JSON.stringify(line)} in ${this.ids}/${b}`);
      if (line.slice(0, s1) !== id) continue;
      out.push(s2 < 0 ? { ip: canonicalIp(ip), id } : { ip: canonicalIp(ip), id, ifname: line.slice(s2 + 1) });
    }
    return out;
  }

  /** Is `r` what the network directory holds now? (A hit is used only after this.) */
  verify(r: Reservation): boolean {
    let text: string;
    try {
      text = readFileSync(`${this.store.dir}/${formatIp(r.ip)}`, "utf8");
    } catch {
      return false;
    }
    const d = decodeReservation(r.ip, text);
    return d.id === r.id && d.ifname === r.ifname;
  }

  private static line(r: Reservation): string {
    return r.ifname === undefined ? `${r.id} ${formatIp(r.ip)}\n` : `${r.id} ${formatIp(r.ip)} ${r.ifname}\n`;
  }

  private put(b: string, text: string): void {
    if (text === "") {
      // An empty bucket is removed: a rolled-back ADD leaves no trace in the data dir.
      try {
        unlinkSync(`${this.ids}/${b}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      this.texts.set(b, "");
      return;
    }
    try {
      writeFileSync(`${this.ids}/${b}`, text, { mode: 0o644 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      this.ensure();
      writeFileSync(`${this.ids}/${b}`, text, { mode: 0o644 });
    }
    this.texts.set(b, text);
  }

  /** Replaces the reservations of `id` (in place: the bucket file is overwritten). */
  write(id: string, rs: readonly Reservation[]): void {
    if (!indexable(id)) return;
    const b = bucketOf(id);
    const prefix = `${id} `;
    const others = this.bucketText(b)
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith(prefix));
    const text = [...others.map((l) => `${l}\n`), ...rs.map(ReservationIndex.line)].sort().join("");
    if (text !== this.texts.get(b)) this.put(b, text);
  }

  /** Makes the index equal to `all` (a full scan), rewriting only buckets that differ. */
  rebuild(all: readonly Reservation[]): void {
    const want = new Map<string, string[]>();
    for (const r of all) {
      if (!indexable(r.id)) continue;
      const b = bucketOf(r.id);
      const l = want.get(b);
      if (l) l.push(ReservationIndex.line(r));
      else want.set(b, [ReservationIndex.line(r)]);
    }
    let have: string[];
    try {
      have = readdirSync(this.ids);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      this.ensure();
      have = [];
    }
    for (const b of have) if (!want.has(b)) this.put(b, "");
    // (bucketText() of a removed bucket reads ENOENT as "", so it is not rewritten.)
    for (const [b, lines] of want) {
      const text = lines.sort().join("");
      if (this.bucketText(b) !== text) this.put(b, text);
    }
  }

  /** Before the first change to the network directory or the index: nothing is trusted until certify(). */
  invalidate(): void {
    if (this.invalidated) return;
    this.invalidated = true;
    // Emptied in place, not removed: an overwrite is cheap, a create is not.
    try {
      writeFileSync(this.statePath, "");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }

  /**
   * After this command's changes: records the directory as it is now, if nobody else
   * changed it meanwhile. `obs` is what the command observed before changing anything.
   * The directory is stat'ed before the `last_reserved_ip` files are read: a reserve by
   * someone else creates its address file, then rewrites `last_reserved_ip.N`; if the
   * create is folded into the mtime recorded here, the rewrite is seen below (or, when
   * it comes later, by the next command's matches()). Returns whether it certified.
   */
  certify(obs: Observation): boolean {
    const store = this.store;
    if (store.foreign) return false;
    let dir;
    try {
      dir = statSync(store.dir, { bigint: true });
    } catch {
      return false;
    }
    const lr: Record<string, FileMark | null> = {};
    for (const [n, seen] of obs.lr) {
      const now = markOf(`${store.dir}/${LAST_RESERVED_PREFIX}${n}`, false).mark;
      const wrote = store.written.get(n);
      if (wrote !== undefined ? now?.text !== wrote : !sameMark(now, seen.mark)) return false;
      lr[n] = now;
    }
    for (const n of store.written.keys()) if (!obs.lr.has(n)) return false;
    const state: IndexState = { v: 1, dirIno: String(dir.ino), dirMtimeNs: String(dir.mtimeNs), lr };
    try {
      writeFileSync(this.statePath, JSON.stringify(state), { mode: 0o644 });
    } catch {
      return false;
    }
    return true;
  }
}
