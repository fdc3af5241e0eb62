/**
 * A Linux TUN device through bun:ffi (libc open/ioctl/read/write/poll): the userland TCP
 * client (engine.ts) reads the IPv4 packets the kernel routes to the device and writes the
 * packets the kernel should receive from it. Needs /dev/net/tun and CAP_NET_ADMIN (root in
 * a network namespace of our own: see netns.ts).
 */
import { dlopen, FFIType, ptr, read as ffiRead } from "bun:ffi";
import { MyriadError } from "../../errors.ts";

/** A TUN device that could not be opened or used; the message says what to do. */
class TunError extends MyriadError {
  constructor(message: string) {
    super("ERR_TUN", message);
  }
}

const O_RDWR = 2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
/** _IOW('T', 202, int) */
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const POLLIN = 0x0001;
const EAGAIN = 11;
const EINTR = 4;
/** struct ifreq: 16 bytes of name, then a union of which the flags (short) come first. */
const IFREQ_BYTES = 40;
const IFNAMSIZ = 16;

type Libc = ReturnType<typeof openLibc>;
let libc: Libc | undefined;

function openLibc() {
  return dlopen("libc.so.6", {
    open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
    write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
    poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
}

function errno(l: Libc): number {
  const p = l.symbols.__errno_location();
  return p === null ? 0 : ffiRead.i32(p, 0);
}

/** A valid Linux interface name: 1–15 characters, no '/', whitespace or ':'. */
function isInterfaceName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(name);
}

/**
 * What the engine needs of a packet device: one packet per read or write, through buffer
 * pointers (bun:ffi `ptr`). TunDevice is the real one.
 */
export interface PacketDevice {
  readonly name: string;
  /** Reads one packet into the memory at bufPtr; its length, 0 when none is waiting. */
  read(bufPtr: number, capacity: number): number;
  /** Writes one packet of len bytes from bufPtr; false when it was dropped. */
  write(bufPtr: number, len: number): boolean;
  /** Blocks up to timeoutMs until a packet is waiting; true when one is. */
  waitReadable(timeoutMs: number): boolean;
  close(): void;
}

/**
 * An open TUN device (IFF_TUN | IFF_NO_PI: each read or write is one bare IPv4 packet),
 * non-blocking. The device lives as long as the descriptor: close() removes it.
 */
export class TunDevice implements PacketDevice {
  readonly name: string;
  private fd: number;
  private readonly l: Libc;
  private readonly pollfd = new Uint8Array(8);

  private constructor(name: string, fd: number, l: Libc) {
    this.name = name;
    this.fd = fd;
    this.l = l;
    const dv = new DataView(this.pollfd.buffer);
    dv.setInt32(0, fd, true);
    dv.setInt16(4, POLLIN, true);
  }

  /**
   * Creates (or attaches to) TUN device `name` in the calling process's network namespace.
   * Throws TunError saying what is missing: /dev/net/tun, or CAP_NET_ADMIN.
   */
  static open(name: string): TunDevice {
    if (process.platform !== "linux") throw new TunError("TUN devices need Linux");
    if (!isInterfaceName(name)) throw new TunError(`bad TUN device name ${JSON.stringify(name)}: 1-15 of A-Z a-z 0-9 _ . -`);
    libc ??= openLibc();
    const l = libc;
    const path = Buffer.from("/dev/net/tun\0");
    const fd = l.symbols.open(ptr(path), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const e = errno(l);
      throw new TunError(
        `cannot open /dev/net/tun (errno ${e}): ` +
          (e === 2 ? "no such device: load the tun module (modprobe tun) or create it (mkdir -p /dev/net && mknod /dev/net/tun c 10 200)" : "run as root (CAP_NET_ADMIN)"),
      );
    }
    const ifr = new Uint8Array(IFREQ_BYTES);
    ifr.set(Buffer.from(name).subarray(0, IFNAMSIZ - 1));
    new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI, true);
    if (l.symbols.ioctl(fd, TUNSETIFF, ptr(ifr)) < 0) {
      const e = errno(l);
      l.symbols.close(fd);
      throw new TunError(`cannot create TUN device ${name} (TUNSETIFF errno ${e}): ${e === 1 ? "needs CAP_NET_ADMIN: run as root" : e === 16 ? "the name is in use" : "see errno"}`);
    }
    return new TunDevice(name, fd, l);
  }

  /**
   * Reads one packet into `buf` (from `ptrOfBuf`, the buffer's pointer from bun:ffi `ptr`).
   * Returns its length, 0 when none is waiting, -1 once the device is closed.
   */
  read(bufPtr: number, capacity: number): number {
    if (this.fd < 0) return -1;
    const n = this.l.symbols.read(this.fd, bufPtr, capacity) as number;
    if (n >= 0) return n;
    const e = errno(this.l);
    if (e === EAGAIN || e === EINTR) return 0;
    throw new TunError(`read from ${this.name} failed (errno ${e})`);
  }

  /** Writes one packet of `len` bytes; returns false when it was dropped (device busy, EAGAIN, or refused), as a NIC drops. */
  write(bufPtr: number, len: number): boolean {
    if (this.fd < 0) return false;
    return (this.l.symbols.write(this.fd, bufPtr, len) as number) === len;
  }

  /** Blocks up to timeoutMs until a packet is waiting; true when one is. */
  waitReadable(timeoutMs: number): boolean {
    if (this.fd < 0) return false;
    return this.l.symbols.poll(ptr(this.pollfd), 1, timeoutMs) > 0;
  }

  /** Closes the descriptor, which removes the device. Idempotent. */
  close(): void {
    if (this.fd < 0) return;
    this.l.symbols.close(this.fd);
    this.fd = -1;
  }
}
