/**
 * A userland TCP client over a TUN device: opens, holds and resets up to millions of TCP
 * connections to servers on this machine without a kernel socket of its own.
 *
 * Why: with both ends on one machine, a kernel-socket load generator costs a second socket
 * per connection (~3.5 KB of slab), so the machine's memory per connection measures two
 * sockets where a real deployment has one. This client sends SYNs from addresses routed to
 * its TUN device (in a network namespace of the experiment's own, see netns.ts), answers the
 * servers' SYN-ACKs, and keeps 7 bytes per connection: a state byte, the server's initial
 * sequence number (to check resets and answer keepalives) and, while a connect is in
 * flight, its slot in the window. The servers hold real, established kernel sockets.
 *
 * Addressing: connection i (0 ≤ i < connections) comes from address
 * `clientFirstIp + floor(i / PORTS_PER_ADDRESS)`, port `FIRST_CLIENT_PORT + i % PORTS_PER_ADDRESS`,
 * and goes to `serverIp:ports[i % ports.length]`; a packet's destination maps back to i by
 * arithmetic, so no table is needed. Initial sequence numbers come from i and a per-run salt.
 *
 * What it answers (from the packet and those 7 bytes, so a retransmitted SYN-ACK or a late
 * FIN gets the right reply): SYN-ACK → ACK (and the connection counts open); data → ACK;
 * a keepalive probe or an out-of-window segment → ACK; a FIN, or a RST at exactly the next
 * expected sequence number (RFC 5961), on an open connection → it counts lost (a FIN gets a
 * RST); a RST elsewhere in the window → a challenge ACK; never a RST for a RST; a segment
 * for a connection it does not hold → RST. SYNs are retransmitted after 1, 2, 4 ... s like
 * the kernel's, until connectTimeoutMs; `retries` more attempts follow a timeout, a refusal
 * or a close before the confirming echo, until stopConnecting().
 * stop() resets every connection it holds (one RST each), which frees the servers' sockets
 * at once, then closes the device.
 *
 * Idle mode only: it holds connections; it sends no payload.
 *
 * One file (about 500 lines) on purpose: the per-packet path (parse, the connection's state
 * byte, the reply) and the window's slots share one class's typed arrays and its rx/tx
 * buffers; split across objects, every packet would pay calls between them. Its addressing
 * and options are apart (options.ts), its segment codec too (packet.ts).
 */
import { ptr } from "bun:ffi";
import { MyriadRangeError } from "../../errors.ts";
import { emptyCounters, type EngineReport, type LoadCounters } from "../counters.ts";
import { LogHistogram } from "../histogram.ts";
import type { PacketDevice } from "./device.ts";
import { clientAddressesFor, FIRST_CLIENT_PORT, MAX_TUN_WINDOW, PORTS_PER_ADDRESS, type TunEngineOptions, type TunPacketCounters } from "./options.ts";
import { CLIENT_WINDOW, readU16, readU32, tcpOffset, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, writeSegment } from "./packet.ts";

/** The first SYN retransmit comes this long after the SYN (Linux's initial RTO); each next one waits twice as long. */
const SYN_RTO_MS = 1000;

// Connection states; 0, what the zeroed state array starts with, is "not attempted yet".
const SYN_SENT = 1;
const OPEN = 2;
const FAILED = 3;
/** Closed by the server (lost) or reset by us at stop. */
const CLOSED = 4;
/** confirm: handshake done, our probe byte sent, waiting for its echo. */
const CONFIRMING = 5;
/** The probe byte confirm mode sends (echo servers send it back). */
const PROBE_BYTE = 0x2e;

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One TUN load process's connections: opens them through a window of SYNs, answers the
 * servers' segments, keeps each open with 7 bytes of state, and resets them all at stop().
 */
export class TunEngine {
  private readonly dev: PacketDevice;
  private readonly n: number;
  private readonly clientFirstIp: number;
  private readonly clientLastIp: number;
  private readonly serverIp: number;
  private readonly ports: Int32Array;
  private readonly window: number;
  private readonly ratePerSec: number;
  private readonly connectTimeoutMs: number;
  private readonly retries: number;
  private readonly salt: number;

  /** Per connection: 0 (not attempted yet) / SYN_SENT / OPEN / FAILED / CLOSED / CONFIRMING. */
  private readonly state: Uint8Array;
  /** Per connection in SYN_SENT / CONFIRMING: its slot in the window arrays below. */
  private readonly slotOf: Uint16Array;
  /** Per connection past its SYN-ACK: the server's initial sequence number. */
  private readonly peerIsn: Uint32Array;
  /** The window: per slot the connection (-1 = free), first SYN of the attempt, last SYN, next RTO, attempts left. */
  private readonly slotConn: Int32Array;
  private readonly slotFirstAt: Float64Array;
  private readonly slotSentAt: Float64Array;
  private readonly slotRtoMs: Float64Array;
  /** Per slot in CONFIRMING: bytes of the answer received so far. */
  private readonly slotGot: Int32Array;
  /** The confirm probe, its length, and the answer's length and first bytes (see TunEngineOptions.probe). */
  private readonly probeBytes: Uint8Array;
  private readonly probeLen: number;
  private readonly replyBytes: number;
  private readonly replyPrefix: Uint8Array;
  private readonly slotTriesLeft: Uint8Array;
  private readonly confirm: boolean;
  private readonly freeSlots: Int32Array;
  private freeTop: number;

  /** One receive and one send buffer, reused for every packet; large, so their memory never moves under ptr(). */
  private readonly rx = new Uint8Array(65_536);
  private readonly tx = new Uint8Array(65_536);
  private readonly rxPtr: number;
  private readonly txPtr: number;

  private readonly k: LoadCounters;
  private readonly connectUs = new LogHistogram();
  private readonly latencyUs = new LogHistogram();
  readonly packets: TunPacketCounters = { packetsIn: 0, packetsOut: 0, stray: 0, malformed: 0, resetsSent: 0, writeDrops: 0 };

  private next = 0;
  /** False after stopConnecting() or stop(): no new connection and no retry. */
  private connectingAllowed = true;
  private ramping = false;
  private stopping = false;
  private rampStartedAt = 0;
  private lastScanAt = 0;
  private loopDone: Promise<void> | undefined;
  private rampWaiters: Array<() => void> = [];

  /** Takes an open device (the engine closes it at stop) and the options; allocates all its memory now. */
  constructor(dev: PacketDevice, o: TunEngineOptions) {
    if (!Number.isInteger(o.connections) || o.connections < 0) throw new MyriadRangeError("ERR_LOADGEN_CONNECTIONS", `connections must be an integer >= 0, got ${o.connections}`);
    if (o.ports.length === 0) throw new MyriadRangeError("ERR_LOADGEN_TUN", "ports must not be empty");
    const window = o.connectWindow ?? 1024;
    if (!Number.isInteger(window) || window < 1 || window > MAX_TUN_WINDOW) throw new MyriadRangeError("ERR_LOADGEN_TUN", `connectWindow must be an integer 1..${MAX_TUN_WINDOW}, got ${window}`);
    this.dev = dev;
    this.n = o.connections;
    this.clientFirstIp = o.clientFirstIp >>> 0;
    this.clientLastIp = this.clientFirstIp + clientAddressesFor(o.connections) - 1;
    this.serverIp = o.serverIp >>> 0;
    this.ports = Int32Array.from(o.ports);
    this.window = window;
    this.ratePerSec = o.connectRatePerSec ?? 0;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
    this.retries = Math.min(255, o.retries ?? 0);
    this.salt = (o.isnSalt ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
    this.state = new Uint8Array(this.n);
    this.slotOf = new Uint16Array(this.n);
    this.peerIsn = new Uint32Array(this.n);
    this.slotConn = new Int32Array(window).fill(-1);
    this.slotFirstAt = new Float64Array(window);
    this.slotSentAt = new Float64Array(window);
    this.slotRtoMs = new Float64Array(window);
    this.slotTriesLeft = new Uint8Array(window);
    this.confirm = o.confirm === true;
    this.slotGot = new Int32Array(window);
    this.probeBytes = o.probe?.bytes ?? Uint8Array.of(PROBE_BYTE);
    this.probeLen = this.confirm ? this.probeBytes.length : 0;
    this.replyBytes = this.confirm ? (o.probe?.replyBytes ?? 1) : 0;
    this.replyPrefix = o.probe?.replyPrefix ?? new Uint8Array(0);
    this.freeSlots = new Int32Array(window);
    for (let s = 0; s < window; s++) this.freeSlots[s] = window - 1 - s;
    this.freeTop = window;
    this.rxPtr = ptr(this.rx);
    this.txPtr = ptr(this.tx);
    this.k = emptyCounters(this.n);
    this.loopDone = this.loop();
  }

  /** Starts opening connections; resolves when each one has opened or failed for good (or stopConnecting was called and the window emptied). */
  start(): Promise<void> {
    if (!this.ramping && this.rampStartedAt === 0 && !this.stopping) {
      this.ramping = true;
      this.rampStartedAt = performance.now();
      this.checkRampDone();
    }
    return this.ramped();
  }

  /** Resolves once the ramp is done. */
  ramped(): Promise<void> {
    if (this.k.rampDone) return Promise.resolve();
    return new Promise((resolve) => this.rampWaiters.push(resolve));
  }

  /** Idle mode only: there is no traffic to start (the load protocol's "traffic" message is a no-op). */
  startTraffic(): void {}

  /** Opens no new connection; attempts in flight finish (or time out). */
  stopConnecting(): void {
    this.connectingAllowed = false;
    this.next = this.n;
    this.checkRampDone();
  }

  /** Counters now (a fresh object). */
  counters(): LoadCounters {
    const k = this.k;
    k.connecting = this.window - this.freeTop;
    k.rampMs = this.rampStartedAt === 0 ? 0 : k.rampDone ? k.rampMs : performance.now() - this.rampStartedAt;
    k.rssBytes = process.memoryUsage().rss;
    return { ...k, errors: { ...k.errors } };
  }

  /** Counters plus the connect-time histogram (µs, from the attempt's first SYN to the SYN-ACK, or to the echo with confirm); no request latencies in idle mode. */
  report(): EngineReport {
    return { ...this.counters(), connectUs: this.connectUs.toJSON(), latencyUs: this.latencyUs.toJSON() };
  }

  /**
   * Resets every connection it holds or is opening (one RST each), closes the device and
   * resolves when done. Idempotent. Lost counting stops here: closes after this are ours.
   */
  async stop(): Promise<void> {
    if (this.stopping) {
      await this.loopDone;
      return;
    }
    this.stopping = true;
    this.connectingAllowed = false;
    this.ramping = false;
    this.next = this.n;
    await this.loopDone;
    let sinceYield = 0;
    for (let i = 0; i < this.n; i++) {
      const s = this.state[i]!;
      if (s !== OPEN && s !== SYN_SENT && s !== CONFIRMING) continue;
      if (s === OPEN) this.k.open--;
      else this.freeSlot(i);
      this.state[i] = CLOSED;
      this.send(i, this.nextSeq(i, s), 0, TCP_RST);
      // The servers' side of each RST runs in this write; let the event loop (IPC) breathe.
      if (++sinceYield === 4096) {
        sinceYield = 0;
        this.drain(65_536);
        await immediate();
      }
    }
    this.drain(65_536);
    this.checkRampDone();
    this.dev.close();
  }

  private isn(i: number): number {
    return (Math.imul(i + 1, 0x9e3779b1) ^ this.salt) >>> 0;
  }

  /** The next sequence number we expect from the server in state `st` (OPEN or CONFIRMING): after its SYN, and after what of the answer came. */
  private rcvNext(i: number, st: number): number {
    const got = st === OPEN ? this.replyBytes : st === CONFIRMING ? this.slotGot[this.slotOf[i]!]! : 0;
    return (this.peerIsn[i]! + 1 + got) >>> 0;
  }

  /** Our next sequence number in state `st`: after the SYN, and after the probe once sent. */
  private nextSeq(i: number, st: number): number {
    return (this.isn(i) + 1 + (st === OPEN || st === CONFIRMING ? this.probeLen : 0)) >>> 0;
  }

  /** The handshake's last ACK; in confirm mode it carries the probe byte. */
  private sendHandshakeAck(i: number, peerIsn: number): void {
    if (!this.confirm) {
      this.send(i, (this.isn(i) + 1) >>> 0, (peerIsn + 1) >>> 0, TCP_ACK);
      return;
    }
    this.tx.set(this.probeBytes, 40);
    this.send(i, (this.isn(i) + 1) >>> 0, (peerIsn + 1) >>> 0, TCP_ACK | TCP_PSH, this.probeLen);
  }

  private clientIp(i: number): number {
    return this.clientFirstIp + Math.floor(i / PORTS_PER_ADDRESS);
  }

  /** Writes one segment of connection i (payload, if any, already at tx[40]). */
  private send(i: number, seq: number, ack: number, flags: number, payloadBytes = 0): void {
    this.writeTx(writeSegment(this.tx, this.clientIp(i), this.serverIp, FIRST_CLIENT_PORT + (i % PORTS_PER_ADDRESS), this.ports[i % this.ports.length]!, seq, ack, flags, payloadBytes), flags);
  }

  /** Writes the segment of `len` bytes built in tx (with these flags) and counts it. */
  private writeTx(len: number, flags: number): void {
    if (this.dev.write(this.txPtr, len)) this.packets.packetsOut++;
    else this.packets.writeDrops++;
    if ((flags & TCP_RST) !== 0) this.packets.resetsSent++;
  }

  /** A RST answering a segment (RFC 793: seq = its ACK when it has one, else ACK of its end). */
  private resetFor(dstIp: number, srcIp: number, dstPort: number, srcPort: number, seq: number, ack: number, flags: number, payload: number): void {
    const hasAck = (flags & TCP_ACK) !== 0;
    const rstFlags = hasAck ? TCP_RST : TCP_RST | TCP_ACK;
    const len = writeSegment(
      this.tx,
      dstIp,
      srcIp,
      dstPort,
      srcPort,
      hasAck ? ack : 0,
      (seq + payload + ((flags & TCP_SYN) !== 0 ? 1 : 0) + ((flags & TCP_FIN) !== 0 ? 1 : 0)) >>> 0,
      rstFlags,
    );
    this.writeTx(len, rstFlags);
  }


  private async loop(): Promise<void> {
    while (!this.stopping) {
      let worked: boolean;
      try {
        worked = this.pump();
      } catch (e) {
        // A device that fails to read is gone: count it, stop pumping; stop() still resets and closes.
        const kind = `tun: ${(e as Error).message}`;
        this.k.errors[kind] = (this.k.errors[kind] ?? 0) + 1;
        return;
      }
      if (worked) {
        await immediate();
      } else if (this.ramping) {
        // Waiting on SYN-ACKs: sleep in poll (1 ms at most) rather than spin a core the servers need.
        this.dev.waitReadable(1);
        await immediate();
      } else {
        await Bun.sleep(10);
      }
    }
  }

  /** One round: read what arrived, send new SYNs, retransmit. Returns whether anything happened. */
  private pump(): boolean {
    let worked = this.drain(1024) > 0;
    const now = performance.now();
    if (this.ramping && this.next < this.n) {
      let budget = 512;
      if (this.ratePerSec > 0) budget = Math.min(budget, Math.floor(((now - this.rampStartedAt) / 1000) * this.ratePerSec) - this.next);
      while (budget-- > 0 && this.freeTop > 0 && this.next < this.n) {
        this.beginAttempt(this.next++, now, this.retries);
        worked = true;
      }
      if (this.next >= this.n) this.checkRampDone();
    }
    if (now - this.lastScanAt >= 50) {
      this.lastScanAt = now;
      this.scan(now);
    }
    return worked;
  }

  private beginAttempt(i: number, now: number, triesLeft: number): void {
    const s = this.freeSlots[--this.freeTop]!;
    this.slotConn[s] = i;
    this.slotFirstAt[s] = now;
    this.slotSentAt[s] = now;
    this.slotRtoMs[s] = SYN_RTO_MS;
    this.slotTriesLeft[s] = triesLeft;
    this.slotOf[i] = s;
    this.state[i] = SYN_SENT;
    this.k.attempts++;
    this.send(i, this.isn(i), 0, TCP_SYN);
  }

  private freeSlot(i: number): number {
    const s = this.slotOf[i]!;
    this.slotConn[s] = -1;
    this.freeSlots[this.freeTop++] = s;
    return s;
  }

  /** Retransmits due SYNs; times out attempts past connectTimeoutMs. */
  private scan(now: number): void {
    for (let s = 0; s < this.window; s++) {
      const i = this.slotConn[s]!;
      if (i < 0) continue;
      if (now - this.slotFirstAt[s]! >= this.connectTimeoutMs) {
        this.attemptFailed(i, "ETIMEDOUT", true);
      } else if (now - this.slotSentAt[s]! >= this.slotRtoMs[s]!) {
        this.slotSentAt[s] = now;
        this.slotRtoMs[s] = this.slotRtoMs[s]! * 2;
        if (this.state[i] === CONFIRMING) this.sendHandshakeAck(i, this.peerIsn[i]!);
        else this.send(i, this.isn(i), 0, TCP_SYN);
      }
    }
  }

  /**
   * An attempt of connection i (SYN_SENT or CONFIRMING) failed: retry while tries are left
   * and connecting is allowed, else it fails for good. `resetServer`: a half-confirmed
   * connection may be established at the server, so drop its side first (never in answer
   * to the server's own RST).
   */
  private attemptFailed(i: number, kind: string, resetServer: boolean): void {
    if (resetServer && this.state[i] === CONFIRMING) this.send(i, this.nextSeq(i, CONFIRMING), 0, TCP_RST);
    const s = this.freeSlot(i);
    const triesLeft = this.slotTriesLeft[s]!;
    this.k.errors[kind] = (this.k.errors[kind] ?? 0) + 1;
    if (triesLeft > 0 && this.connectingAllowed) {
      this.beginAttempt(i, performance.now(), triesLeft - 1);
      return;
    }
    this.state[i] = FAILED;
    this.k.failed++;
    this.checkRampDone();
  }

  private checkRampDone(): void {
    if (this.k.rampDone || this.rampStartedAt === 0) return;
    if (this.next < this.n || this.freeTop < this.window) return;
    this.k.rampDone = true;
    // The hold needs no 1 ms polling: the loop falls back to its 10 ms sleep.
    this.ramping = false;
    this.k.rampMs = performance.now() - this.rampStartedAt;
    const w = this.rampWaiters;
    this.rampWaiters = [];
    for (const f of w) f();
  }

  /** Handles up to `max` waiting packets; returns how many. */
  private drain(max: number): number {
    let handled = 0;
    while (handled < max) {
      const len = this.dev.read(this.rxPtr, this.rx.length);
      if (len <= 0) break;
      handled++;
      this.packets.packetsIn++;
      this.handle(len);
    }
    return handled;
  }

  private handle(len: number): void {
    const b = this.rx;
    const t = tcpOffset(b, len);
    if (t < 0) {
      this.packets.malformed++;
      return;
    }
    const srcIp = readU32(b, 12);
    const dstIp = readU32(b, 16);
    const srcPort = readU16(b, t);
    const dstPort = readU16(b, t + 2);
    const seq = readU32(b, t + 4);
    const ack = readU32(b, t + 8);
    const flags = b[t + 13]!;
    const payload = readU16(b, 2) - t - (b[t + 12]! >>> 4) * 4;
    const portIndex = dstPort - FIRST_CLIENT_PORT;
    const i = (dstIp - this.clientFirstIp) * PORTS_PER_ADDRESS + portIndex;
    if (dstIp < this.clientFirstIp || dstIp > this.clientLastIp || portIndex < 0 || portIndex >= PORTS_PER_ADDRESS || i >= this.n || srcIp !== this.serverIp || srcPort !== this.ports[i % this.ports.length]) {
      this.packets.stray++;
      if ((flags & TCP_RST) === 0) this.resetFor(dstIp, srcIp, dstPort, srcPort, seq, ack, flags, payload);
      return;
    }
    const st = this.state[i]!;
    if ((flags & TCP_RST) !== 0) {
      if (st === SYN_SENT) {
        if ((flags & TCP_ACK) !== 0 && ack === ((this.isn(i) + 1) >>> 0)) this.attemptFailed(i, "ECONNREFUSED", false);
      } else if (st === OPEN || st === CONFIRMING) {
        const rn = this.rcvNext(i, st);
        if (seq === rn) {
          if (st === OPEN) this.closedByServer(i);
          else this.attemptFailed(i, "ECONNRESET", false);
        } else if (((seq - rn) >>> 0) < CLIENT_WINDOW) {
          // RFC 5961 3.2: in the window but not exact: a challenge ACK, the connection stays.
          this.send(i, this.nextSeq(i, st), rn, TCP_ACK);
        }
      }
      return;
    }
    if ((flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) {
      const known = st === CONFIRMING || st === OPEN;
      if (ack !== ((this.isn(i) + 1) >>> 0) || !(st === SYN_SENT || known) || (known && seq !== this.peerIsn[i])) {
        this.resetFor(dstIp, srcIp, dstPort, srcPort, seq, ack, flags, payload);
        return;
      }
      if (st === SYN_SENT) {
        this.peerIsn[i] = seq;
        if (this.confirm) {
          this.k.bytesOut += this.probeLen;
          this.slotGot[this.slotOf[i]!] = 0;
          const s = this.slotOf[i]!;
          // The probe's RTO starts now: the SYN's backoff has nothing to do with it.
          this.slotSentAt[s] = performance.now();
          this.slotRtoMs[s] = SYN_RTO_MS;
          this.state[i] = CONFIRMING;
        } else {
          this.opened(i);
        }
      }
      // Also when past SYN_SENT: the server did not get our ACK and sent its SYN-ACK again.
      this.sendHandshakeAck(i, seq);
      return;
    }
    if (st !== OPEN && st !== CONFIRMING) {
      // Not ours (any more): a RST tells the server to drop its side.
      this.resetFor(dstIp, srcIp, dstPort, srcPort, seq, ack, flags, payload);
      return;
    }
    const rn = this.rcvNext(i, st);
    let ackTo = rn;
    if (payload > 0) {
      if (st === CONFIRMING && seq === rn) {
        // (Part of) the answer to the probe: once all of it came, the server application holds the connection.
        this.k.bytesIn += payload;
        const slot = this.slotOf[i]!;
        const got = this.slotGot[slot]!;
        const prefix = this.replyPrefix;
        const p = t + (b[t + 12]! >>> 4) * 4;
        for (let k = got; k < prefix.length && k - got < payload; k++) {
          if (b[p + k - got] !== prefix[k]) return this.attemptFailed(i, "EHANDSHAKE", true);
        }
        ackTo = (seq + payload) >>> 0;
        if (got + payload >= this.replyBytes) {
          this.slotGot[slot] = 0;
          this.opened(i);
        } else {
          this.slotGot[slot] = got + payload;
        }
      } else if (!this.confirm && seq === rn) {
        // Data we do not keep: acknowledged so the server does not resend it (not tracked further).
        this.k.bytesIn += payload;
        ackTo = (seq + payload) >>> 0;
      }
      // Otherwise a duplicate (a resent echo): the ACK of what we have.
    }
    if ((flags & TCP_FIN) !== 0) {
      // The server closed: we hold nothing to finish, so reset rather than keep a half-closed state.
      if (this.state[i] === OPEN) {
        this.closedByServer(i);
        this.send(i, this.nextSeq(i, OPEN), 0, TCP_RST);
      } else {
        this.attemptFailed(i, "EOF", true);
      }
      return;
    }
    // Data, a keepalive probe (seq = next - 1) or any out-of-window segment gets an ACK; an in-order pure ACK does not.
    if (payload > 0 || seq !== rn) this.send(i, this.nextSeq(i, this.state[i]!), ackTo, TCP_ACK);
  }

  /** Open connection i was closed by the server (FIN, or a RST at the expected sequence number). */
  private closedByServer(i: number): void {
    this.state[i] = CLOSED;
    this.k.open--;
    if (!this.stopping) this.k.lost++;
  }

  /** Connection i's connect is done: count it open and free its window place. */
  private opened(i: number): void {
    const s = this.freeSlot(i);
    this.connectUs.record(Math.round((performance.now() - this.slotFirstAt[s]!) * 1000));
    this.state[i] = OPEN;
    this.k.connected++;
    if (++this.k.open > this.k.peakOpen) this.k.peakOpen = this.k.open;
    this.checkRampDone();
  }
}
