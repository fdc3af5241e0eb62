/**
 * TCP self-connect: connecting to a port on this host where nothing listens can, after
 * enough refused attempts, connect a socket to itself. When the kernel happens to pick the
 * destination port as the ephemeral source port, the SYN meets itself (a simultaneous open)
 * and the connect succeeds: every byte written is read back. A client that reconnects with
 * backoff to a local upstream that is down gets there in a long outage and then takes its own
 * requests for replies. Go's net package checks for it after every connect (selfConnect in
 * tcpsock_posix.go) and retries; every place in myriad that connects does the same.
 */

/** The endpoints of a connected socket, as Bun's Socket reports them. */
export interface SocketEndpoints {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/**
 * True when `socket` is connected to itself (local address and port equal the remote ones):
 * treat it as a failed connect, close it at once and retry with the usual backoff.
 */
export function isSelfConnect(socket: SocketEndpoints): boolean {
  // A socket already closed reports no ports: that is some other failure, not this one.
  const port = socket.localPort;
  return typeof port === "number" && port > 0 && port === socket.remotePort && socket.localAddress === socket.remoteAddress;
}
