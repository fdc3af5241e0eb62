/**
 * The TUN client's addressing and options. Connection i comes from client address
 * `clientFirstIp + floor(i / PORTS_PER_ADDRESS)`, port `FIRST_CLIENT_PORT + i % PORTS_PER_ADDRESS`:
 * arithmetic both ways, so no table maps packets to connections.
 */

/** Client ports per client address: 1024..65023. */
export const PORTS_PER_ADDRESS = 64_000;
/** The first client port of every client address. */
export const FIRST_CLIENT_PORT = 1024;

/** Most connects in flight per engine (slots are 16-bit). */
export const MAX_TUN_WINDOW = 65_535;

/** Number of client addresses `connections` need. */
export function clientAddressesFor(connections: number): number {
  return Math.max(1, Math.ceil(connections / PORTS_PER_ADDRESS));
}

/** What an engine needs: its connections, its addresses, where they go, how fast. */
export interface TunEngineOptions {
  connections: number;
  /** First client address (IPv4 as an unsigned 32-bit number); the engine uses ceil(connections / PORTS_PER_ADDRESS) from there. */
  clientFirstIp: number;
  /** The servers' address (IPv4, unsigned 32-bit) and ports. */
  serverIp: number;
  ports: readonly number[];
  /** Connects in flight at most (default 1024, at most MAX_TUN_WINDOW). */
  connectWindow?: number;
  /** New connections per second; 0 = as fast as the window allows (default). */
  connectRatePerSec?: number;
  /** An attempt not answered by a SYN-ACK this long after its first SYN fails with ETIMEDOUT (default 10 s). */
  connectTimeoutMs?: number;
  /** More attempts after a timeout or a refusal (default 0). */
  retries?: number;
  /** Salt of the initial sequence numbers (default random). */
  isnSalt?: number;
  /**
   * Count a connection open only once the server application echoed a probe byte, sent
   * with the handshake's last ACK (default false). The connect-window place is held until
   * then, so the window also bounds the servers' accept queues: a full accept queue drops
   * the handshake's ACK, and the connection then waits a second for the SYN-ACK again.
   * Needs echo servers.
   */
  confirm?: boolean;
  /**
   * With confirm: what the probe is and what must come back. Default one probe byte and its
   * echo. A WebSocket probe (wsProbe) is the upgrade request and one message; the answer is
   * the 101 and the message echoed, `replyBytes` in all, starting with `replyPrefix`.
   */
  probe?: TunProbe;
}

/** A confirm probe: the bytes sent with the handshake's last ACK, and the answer awaited. */
export interface TunProbe {
  bytes: Uint8Array;
  replyBytes: number;
  replyPrefix: Uint8Array;
}

/**
 * The confirm probe of a WebSocket connection to a server without upgrade hook, subprotocol
 * or extensions (myriad's ws-echo): the upgrade request and a masked 1-byte binary message,
 * in one segment; the answer is the 101 (129 bytes for this key) then the message echoed
 * unmasked (3 bytes).
 */
export function wsProbe(): TunProbe {
  const request = new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: c1m\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: bXlyaWFkLWxvYWQtZ2VuIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  const message = Uint8Array.from([0x82, 0x81, 0x37, 0xfa, 0x21, 0x3d, 0x2e ^ 0x37]);
  const bytes = new Uint8Array(request.length + message.length);
  bytes.set(request);
  bytes.set(message, request.length);
  // "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " (97) + 28 + CRLF CRLF, then 82 01 2e.
  return { bytes, replyBytes: 97 + 28 + 4 + 3, replyPrefix: new TextEncoder().encode("HTTP/1.1 101 ") };
}

/** Packets seen and sent, for the report and for tests. */
export interface TunPacketCounters {
  packetsIn: number;
  packetsOut: number;
  /** Segments for an address or port that is none of this engine's connections. */
  stray: number;
  /** Packets that were not IPv4/TCP or were malformed. */
  malformed: number;
  /** RSTs sent for segments of connections not open (and for FINs). */
  resetsSent: number;
  /** Packets the device dropped on write (busy) or refused. */
  writeDrops: number;
}
