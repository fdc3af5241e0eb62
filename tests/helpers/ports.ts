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

/**
 * n distinct free TCP ports on 127.0.0.1, for servers that bind them later all together (a
 * config with several listen lines): all n are bound at once before any is closed, so the
 * kernel cannot hand out one twice, as n calls of freePort() may (each closes its port
 * before the next asks).
 */
export function freePorts(n: number): number[] {
  const probes = Array.from({ length: n }, () => Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }));
  const ports = probes.map((p) => p.port);
  for (const p of probes) p.stop(true);
  return ports;
}

/** A listener with SO_REUSEPORT (Bun takes the option; its TCP listen type omits it). */
function listenShared(hostname: string, port: number) {
  const options = { hostname, port, reusePort: true, socket: { data() {} } };
  return Bun.listen(options);
}

/** Ports held by this process until release(); see holdPorts. */
export interface HeldPorts {
  /** The loopback addresses the ports are held on (127.213.x.y, consecutive). */
  readonly hosts: readonly string[];
  /** The first port; the held ones are port .. port + count - 1, on every host. */
  readonly port: number;
  /** Closes this process's listeners (call once the server listens on the ports too). */
  release(): void;
}

/**
 * `count` consecutive ports on `hostCount` loopback addresses of their own, bound here with
 * reusePort until release(): a server that listens with reusePort (serve's workers do) binds
 * them too, and nothing else can take them meanwhile. Works under any ip_local_port_range.
 *
 * Why not 127.0.0.1: the kernel hands connect() even ports and bind(0) odd ones, so after a
 * load test (or on a machine others load) nearly every even port of 127.0.0.1 is some
 * connection's local port in TIME_WAIT, which a bind there conflicts with: two free
 * neighbours were not found in 100 tries. On an address nobody connects from, no TIME_WAIT
 * holds a port. Release once the server listens: connections made while both listen may
 * land on the holder.
 */
export function holdPorts(count: number, hostCount = 1): HeldPorts {
  let lastError: unknown;
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 1 + Math.floor(Math.random() * (254 - hostCount));
    const third = 1 + Math.floor(Math.random() * 254);
    const hosts = Array.from({ length: hostCount }, (_, h) => `127.213.${third}.${base + h}`);
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
        for (let k = h === 0 ? 1 : 0; k < count; k++) held.push(listenShared(host, port + k));
      }
      return { hosts, port, release: releaseAll };
    } catch (e) {
      lastError = e;
      releaseAll();
    }
  }
  throw new Error(`no ${count} consecutive free ports on ${hostCount} loopback address(es) after 100 tries (last: ${String(lastError)})`);
}
