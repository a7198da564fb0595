/**
 * Where reservations live. The disk format is the reference plugin's, byte for byte:
 * `<dataDir>/<network>/<ip>` holding `containerID\r\nifname` (mode 0644 as Go writes it,
 * umask applied), `last_reserved_ip.<range set index>` holding the bare address, and an
 * empty `lock` file (0750, as go-filemutex creates it). Files holding only a container
 * ID (older plugins) are read too.
 */
import { closeSync, fstatSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { CniCode, CniError } from "../../pkg/types/errors.js";
import { formatIp, parseIp } from "../../pkg/ip.js";
import type { IpAddr } from "../../pkg/ip.js";
import { canonicalIp } from "./range-set.js";
import type { LrSeen } from "./index.js";

export interface AttachmentKey {
  id: string;
  ifname: string;
}

export interface Reservation {
  ip: IpAddr;
  id: string;
  /** Undefined for legacy files that hold only the container ID. */
  ifname?: string;
}

export interface Scan {
  reservations: Reservation[];
  /** Entries that could not be read, as "name: reason". */
  problems: string[];
}

export interface Store {
  /** Claims `ip` for `key` atomically; false when it is already taken. */
  reserve(ip: IpAddr, key: AttachmentKey, rangeSet: number): boolean;
  lastReserved(rangeSet: number): IpAddr | undefined;
  /** Every reservation; unreadable entries are reported, not skipped silently. */
  scan(): Scan;
  /** Removes a reservation; releasing a free address is not an error. */
  release(ip: IpAddr): void;
  /** Who holds `ip` (for messages), if it can be told. */
  holderOf?(ip: IpAddr): Reservation | undefined;
}

export const LINE_BREAK = "\r\n";
export const LAST_RESERVED_PREFIX = "last_reserved_ip.";
export const LOCK_FILE = "lock";

/** The file content the reference writes for a reservation. */
export function encodeReservation(key: AttachmentKey): string {
  return `${key.id.trim()}${LINE_BREAK}${key.ifname}`;
}

export function decodeReservation(ip: IpAddr, text: string): Reservation {
  const t = text.trim();
  const br = t.indexOf(LINE_BREAK);
  if (br < 0) return { ip, id: t };
  return { ip, id: t.slice(0, br), ifname: t.slice(br + LINE_BREAK.length) };
}

/** Is `r` held by `key`? Legacy (id-only) files match on the ID alone, as in the reference. */
export function heldBy(r: Reservation, key: AttachmentKey): boolean {
  return r.id === key.id.trim() && (r.ifname === undefined || r.ifname === key.ifname);
}

const errText = (err: unknown): string => ((err as NodeJS.ErrnoException).code ?? (err as Error).message);

/** The reference's disk layout. The caller holds the lock around mutations. */
export class DiskStore implements Store {
  readonly dir: string;
  /** `last_reserved_ip.N` as observed at the start of the command (set by lookup() in context.ts, and by GC). */
  observed?: Map<number, LrSeen>;
  /** What this command wrote to `last_reserved_ip.N`. */
  readonly written = new Map<number, string>();
  /** Someone else wrote `last_reserved_ip.N` while this command ran: do not certify the index. */
  foreign = false;
  /** Called once before the first change to the directory. */
  beforeWrite?: () => void;

  private changing(): void {
    const f = this.beforeWrite;
    this.beforeWrite = undefined;
    f?.();
  }

  constructor(readonly dataDir: string, readonly network: string) {
    this.dir = `${dataDir.replace(/\/+$/, "")}/${network}`;
  }

  /** Creates the network directory (0755) and, with it, the reference's `lock` file. */
  ensure(): void {
    try {
      mkdirSync(this.dir, { mode: 0o755 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // An existing directory: the Go plugin creates its `lock` itself when it needs it.
      if (code === "EEXIST") return;
      if (code !== "ENOENT") throw this.ioError(`cannot create ${this.dir}`, err);
      try {
        mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      } catch (err2) {
        throw this.ioError(`cannot create ${this.dir}`, err2);
      }
    }
    try {
      closeSync(openSync(`${this.dir}/${LOCK_FILE}`, "a", 0o750));
    } catch {
      /* only for the Go plugin's sake; it creates it itself */
    }
  }

  private ioError(msg: string, err: unknown): CniError {
    return new CniError(CniCode.IoFailure, `${msg}: ${errText(err)}`, undefined, { cause: err });
  }

  reserve(ip: IpAddr, key: AttachmentKey, rangeSet: number): boolean {
    const path = `${this.dir}/${formatIp(ip)}`;
    this.changing();
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw this.ioError(`cannot reserve ${formatIp(ip)} in ${this.dir}`, err);
    }
    try {
      try {
        writeSync(fd, encodeReservation(key));
      } finally {
        closeSync(fd);
      }
      this.writeLastReserved(rangeSet, ip);
    } catch (err) {
      // Roll back the half-done reserve: the address must not stay claimed.
      try {
        unlinkSync(path);
      } catch {
        /* ignore */
      }
      throw err instanceof CniError ? err : this.ioError(`cannot write reservation ${path}`, err);
    }
    return true;
  }

  private writeLastReserved(rangeSet: number, ip: IpAddr): void {
    const path = `${this.dir}/${LAST_RESERVED_PREFIX}${rangeSet}`;
    const tmp = `${this.dir}/.${LAST_RESERVED_PREFIX}${rangeSet}.${process.pid}.tmp`;
    const text = formatIp(ip);
    const seen = this.observed?.get(rangeSet);
    try {
      writeFileSync(tmp, text, { mode: 0o644 });
      if (seen && seen.mark === null) {
        // Absent when observed: create it only if still absent, else someone else reserved.
        try {
          linkSync(tmp, path);
          unlinkSync(tmp);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
          this.foreign = true;
          renameSync(tmp, path);
        }
      } else {
        renameSync(tmp, path);
      }
      this.written.set(rangeSet, text);
      if (!seen) this.foreign = true; // not observed: cannot tell
      else if (seen.mark && seen.fd !== undefined) {
        // The inode we just replaced: a write by anyone before our rename landed in it.
        // (Go's os.WriteFile truncates at open, so even a half-done write shows here.)
        const st = fstatSync(seen.fd, { bigint: true });
        const b = Buffer.alloc(256);
        const n = readSync(seen.fd, b, 0, b.length, 0);
        if (String(st.mtimeNs) !== seen.mark.mtimeNs || b.toString("utf8", 0, n) !== seen.mark.text) this.foreign = true;
      } else if (seen.mark) this.foreign = true;
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        /* ignore */
      }
      throw this.ioError(`cannot write ${path}`, err);
    }
  }

  lastReserved(rangeSet: number): IpAddr | undefined {
    try {
      const seen = this.observed?.get(rangeSet);
      const text = seen && !this.written.has(rangeSet) ? seen.mark?.text : readFileSync(`${this.dir}/${LAST_RESERVED_PREFIX}${rangeSet}`, "utf8");
      if (text === undefined) return undefined;
      const a = parseIp(text.trim());
      return a && canonicalIp(a);
    } catch {
      return undefined;
    }
  }

  scan(): Scan {
    const out: Scan = { reservations: [], problems: [] };
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return out;
      throw this.ioError(`cannot list ${this.dir}`, err);
    }
    for (const name of names) {
      const ip = parseIp(name);
      if (!ip) continue;
      try {
        out.reservations.push(decodeReservation(canonicalIp(ip), readFileSync(`${this.dir}/${name}`, "utf8")));
      } catch (err) {
        // Released between readdir and read (a concurrent Go DEL does not take our lock):
        // not a reservation any more, and nothing to report.
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
        out.problems.push(`${this.dir}/${name}: ${errText(err)}`);
      }
    }
    return out;
  }

  holderOf(ip: IpAddr): Reservation | undefined {
    try {
      return decodeReservation(ip, readFileSync(`${this.dir}/${formatIp(ip)}`, "utf8"));
    } catch {
      return undefined;
    }
  }

  release(ip: IpAddr): void {
    this.changing();
    try {
      unlinkSync(`${this.dir}/${formatIp(ip)}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw this.ioError(`cannot release ${formatIp(ip)}`, err);
    }
  }
}

/** In-memory store for tests; `failReserve` injects a failure after N successful reserves. */
export class MemoryStore implements Store {
  readonly entries = new Map<string, Reservation>();
  readonly last = new Map<number, IpAddr>();
  failReserveAfter = Infinity;
  reserveCalls = 0;

  reserve(ip: IpAddr, key: AttachmentKey, rangeSet: number): boolean {
    this.reserveCalls++;
    const k = formatIp(ip);
    if (this.entries.has(k)) return false;
    if (this.failReserveAfter <= 0) throw new CniError(CniCode.IoFailure, `injected failure reserving ${k}`);
    this.failReserveAfter--;
    this.entries.set(k, { ip, id: key.id.trim(), ifname: key.ifname });
    this.last.set(rangeSet, ip);
    return true;
  }

  lastReserved(rangeSet: number): IpAddr | undefined {
    return this.last.get(rangeSet);
  }

  scan(): Scan {
    return { reservations: [...this.entries.values()], problems: [] };
  }

  release(ip: IpAddr): void {
    this.entries.delete(formatIp(ip));
  }
}
