/**
 * Ports for servers a test starts in another process. Any port may be an ephemeral one: with
 * net.ipv4.ip_local_port_range = 1024 65535 (what `bun run doctor` advises for many
 * connections) every port is, so a test cannot pick "a port outside the ephemeral range".
 */

/**
 * A free TCP port on 127.0.0.1, from the kernel (bind port 0, read it, close). Between the
 * close and the server's bind an outgoing connection may take it: for a pair of ports, or a
 * bind that must not fail, use holdPorts.
 */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** A listener with SO_REUSEPORT (Bun takes the option; its TCP listen type omits it). */
function listenShared(hostname: string, port: number) {
  const options = { hostname, port, reusePort: true, socket: { data() {} } };
  return Bun.listen(options);
}

/** Ports held by this process until release(); see holdPorts. */
export interface HeldPorts {
  /** The first port; the held ones are port .. port + count - 1. */
  readonly port: number;
  /** Closes this process's listeners (call once the server listens on the ports too). */
  release(): void;
}

/**
 * `count` consecutive ports, bound here with reusePort on every host until release(): a
 * server that listens with reusePort (serve's workers do) can bind them too, and nothing
 * else can take them meanwhile, not even an outgoing connection's local port. Works under
 * any ip_local_port_range. Release once the server listens; connections made while both
 * listen may land on the holder.
 */
export function holdPorts(count: number, hosts: readonly string[] = ["127.0.0.1"]): HeldPorts {
  let lastError: unknown;
  for (let attempt = 0; attempt < 100; attempt++) {
    const held: { stop(closeActive?: boolean): void }[] = [];
    const releaseAll = () => {
      for (const l of held.splice(0)) l.stop(true);
    };
    try {
      // The kernel picks the first port; the neighbours are tried after it.
      const first = listenShared(hosts[0]!, 0);
      held.push(first);
      const port = first.port;
      if (port + count - 1 > 65_535) throw new Error(`port ${port} has no ${count - 1} ports after it`);
      for (const [h, host] of hosts.entries()) {
        for (let k = h === 0 ? 1 : 0; k < count; k++) {
          held.push(listenShared(host, port + k));
        }
      }
      return { port, release: releaseAll };
    } catch (e) {
      lastError = e;
      releaseAll();
    }
  }
  throw new Error(`no ${count} consecutive ports free on ${hosts.join(", ")} after 100 tries (last: ${String(lastError)})`);
}
