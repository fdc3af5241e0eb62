/**
 * The PROXY protocol as a protocol stage (input.ts's seam): with proxyProtocol, every
 * connection's first bytes must be a PROXY header. The stage takes each connection at open,
 * holds its input until the header is complete, records the client's address and port in
 * the server's per-slot arrays, counts the client against maxConnectionsPerIp, and only then
 * lets the connection open (handler.open) and passes what followed the header on: to the
 * codec, or to the stage behind it (WebSocket's upgrade) when the server has one.
 *
 * While a connection awaits its header it carries F_PROXY (deadlines.ts gives it
 * proxyTimeoutMs, then closes it "proxy"); a bad header closes it "proxy" at once. Either
 * way the handler never saw it open, so it sees no close either.
 */
import { newProxyHeader, parseProxyHeader, PROXY_INCOMPLETE, PROXY_MALFORMED } from "./proxy-protocol.ts";
import { refile } from "./deadlines.ts";
import { feed, hold, unstage } from "./input.ts";
import { closeNow } from "./output.ts";
import { F_PROXY, S_OPEN, type InputStage, type ReactorState } from "./state.ts";
import { R_LIMIT, R_NONE, R_PROXY } from "./stats.ts";

/** The PROXY header stage, in front of `inner` (another stage) or of the codec when inner is null. */
export class ProxyStage implements InputStage {
  /** One parse result reused for every header (no object per connection). */
  private readonly header = newProxyHeader();

  constructor(private readonly inner: InputStage | null) {}

  open(s: ReactorState, _h: number, slot: number): boolean {
    s.table.flags[slot]! |= F_PROXY;
    return true;
  }

  data(s: ReactorState, h: number, slot: number, buf: Uint8Array): void {
    const table = s.table;
    if ((table.flags[slot]! & F_PROXY) === 0) return this.inner!.data(s, h, slot, buf);
    const n = parseProxyHeader(buf, 0, buf.length, this.header);
    if (n === PROXY_INCOMPLETE) return hold(s, slot, buf, 0, buf.length);
    if (n === PROXY_MALFORMED) return closeNow(s, h, R_PROXY, false);
    const socket = s.sockets[slot]!;
    const hdr = this.header;
    const ip = hdr.kind === "proxy" ? hdr.sourceAddress : (socket.remoteAddress ?? "");
    const port = hdr.kind === "proxy" ? hdr.sourcePort : socket.remotePort;
    const perIp = s.perIp;
    if (perIp !== null) {
      const count = perIp.get(ip) ?? 0;
      // Still F_PROXY: closed as a refusal, and the handler never sees it.
      if (count >= s.o.maxConnectionsPerIp) return closeNow(s, h, R_LIMIT, false);
      perIp.set(ip, count + 1);
    }
    s.proxyAddress![slot] = ip;
    s.proxyPort![slot] = port;
    table.flags[slot]! &= ~F_PROXY;
    if (s.timed) refile(s, slot, performance.now()); // the header's deadline is met
    const inner = this.inner;
    if (inner !== null && inner.open(s, h, slot)) {
      if (n < buf.length) inner.data(s, h, slot, buf.subarray(n));
      return;
    }
    unstage(s, h, slot); // handler.open; broadcasts from earlier in this turn are not for it
    if (table.state[slot] === S_OPEN) feed(s, h, slot, buf, n, buf.length);
  }

  close(s: ReactorState, h: number, slot: number): boolean {
    // Closed before its header: the handler never saw it open.
    if ((s.table.flags[slot]! & F_PROXY) !== 0) return false;
    return this.inner!.close(s, h, slot);
  }

  // The inner stage's deadlines and stop hook, once the header is in (a WebSocket's pings).
  dueInMs(s: ReactorState, slot: number, now: number): number {
    const inner = this.inner;
    if (inner === null || inner.dueInMs === undefined || (s.table.flags[slot]! & F_PROXY) !== 0) return Infinity;
    return inner.dueInMs(s, slot, now);
  }

  onDue(s: ReactorState, slot: number, now: number): number {
    const inner = this.inner;
    if (inner === null || inner.onDue === undefined || (s.table.flags[slot]! & F_PROXY) !== 0) return R_NONE;
    return inner.onDue(s, slot, now);
  }

  goingAway(s: ReactorState, h: number, slot: number): void {
    if ((s.table.flags[slot]! & F_PROXY) === 0) this.inner?.goingAway?.(s, h, slot);
  }
}
