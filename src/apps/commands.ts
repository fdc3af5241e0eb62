/**
 * Case-insensitive command-name lookup without allocating: the name's bytes are folded to
 * lower case into a hash, the hash's low bits pick a bucket of a small array (cheaper than a
 * Map lookup), and the bucket's candidates are compared by hash, then by bytes. No string is
 * made from the command name.
 */

/** A command known to a CommandTable. */
export interface CommandSpec<R> {
  /** Lower-case name, as redis prints it in errors ("get"). */
  readonly name: string;
  /** Redis arity: n > 0 exactly n arguments (name included); n < 0 at least -n. */
  readonly arity: number;
  readonly run: R;
}

interface Entry<R> extends CommandSpec<R> {
  readonly lower: Uint8Array;
  readonly hash: number;
  next: Entry<R> | undefined;
}

const MAX_NAME_BYTES = 32;
/** Buckets: a power of two, a few times the number of commands, so that chains stay short. */
const BUCKETS = 256;

function lowerByte(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

function hashName(b: Uint8Array): number {
  let h = b.length;
  for (let i = 0; i < b.length; i++) h = (Math.imul(h, 31) + lowerByte(b[i]!)) | 0;
  return h;
}

/** Commands by name, looked up from a request's bytes in any letter case without allocating. */
export class CommandTable<R> {
  private readonly buckets: (Entry<R> | undefined)[] = new Array<Entry<R> | undefined>(BUCKETS).fill(undefined);
  /** Every command, in the order added. */
  readonly all: CommandSpec<R>[] = [];

  /** Adds a command; the name is matched case-insensitively (ASCII). */
  add(name: string, arity: number, run: R): this {
    const lower = new Uint8Array(name.length);
    for (let i = 0; i < name.length; i++) lower[i] = lowerByte(name.charCodeAt(i));
    const hash = hashName(lower);
    const b = hash & (BUCKETS - 1);
    const entry: Entry<R> = { name: name.toLowerCase(), arity, run, lower, hash, next: this.buckets[b] };
    this.buckets[b] = entry;
    this.all.push(entry);
    return this;
  }

  /** The command named by b (any letter case), or undefined. Allocates nothing. */
  lookup(b: Uint8Array): CommandSpec<R> | undefined {
    const n = b.length;
    if (n === 0 || n > MAX_NAME_BYTES) return undefined;
    const h = hashName(b);
    let e = this.buckets[h & (BUCKETS - 1)];
    while (e !== undefined) {
      const l = e.lower;
      if (e.hash === h && l.length === n) {
        let i = 0;
        while (i < n && lowerByte(b[i]!) === l[i]) i++;
        if (i === n) return e;
      }
      e = e.next;
    }
    return undefined;
  }
}

/** True when argc satisfies a redis arity. */
export function arityOk(arity: number, argc: number): boolean {
  return arity > 0 ? argc === arity : argc >= -arity;
}

/** True when b equals the lower-case ASCII word `lower`, ignoring case. */
export function isWord(b: Uint8Array, lower: string): boolean {
  const n = lower.length;
  if (b.length !== n) return false;
  for (let i = 0; i < n; i++) if (lowerByte(b[i]!) !== lower.charCodeAt(i)) return false;
  return true;
}
