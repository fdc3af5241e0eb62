/**
 * twemproxy configuration files: what parses, and every kind of mistake named by file, line
 * and key (ProxyConfigError, code ERR_PROXY_CONFIG). Where nutcracker itself judges a file
 * (nutcracker -t), the two agree on whether it is valid.
 */
import { describe, expect, test } from "bun:test";
import { MyriadError } from "../src/errors.ts";
import { parseProxyConfig, proxyConfigFromObject, ProxyConfigError, quickProxyConfig } from "../src/proxy/index.ts";
import { Nutcracker } from "./helpers/nutcracker.ts";

const GOOD = `# a comment
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: "{}"   # trailing comment
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  timeout: 400
  redis_auth: 'sec''ret'
  redis_db: 0
  preconnect: true
  server_connections: 2
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
  - 127.0.0.1:6380:1 server2
  - 127.0.0.1:6379:1

beta:
  listen: /tmp/myriad-beta.sock 0660
  redis: true
  servers:
    - 10.0.0.1:11211:3
`;

describe("proxy config", () => {
  test("a twemproxy file parses to pools with nutcracker's defaults and server order", () => {
    const cfg = parseProxyConfig(GOOD, "good.yml");
    expect(cfg.pools.map((p) => p.name)).toEqual(["alpha", "beta"]);
    const [a, b] = cfg.pools;
    expect(a).toMatchObject({
      line: 2,
      listen: { host: "127.0.0.1", port: 22121 },
      hash: "fnv1a_64",
      hashTag: "{}",
      distribution: "ketama",
      autoEjectHosts: true,
      timeoutMs: 400,
      redisAuth: "sec'ret",
      preconnect: true,
      serverConnections: 2,
      serverRetryTimeoutMs: 2000,
      serverFailureLimit: 1,
    });
    // Sorted by name, shorter first: "server2" (7) before "127.0.0.1:6379" (14).
    expect(a!.servers.map((s) => [s.name, s.port, s.line])).toEqual([
      ["server2", 6380, 17],
      ["127.0.0.1:6379", 6379, 18],
    ]);
    expect(b).toMatchObject({
      listen: { path: "/tmp/myriad-beta.sock", mode: 0o660 },
      hash: "fnv1a_64",
      distribution: "ketama",
      timeoutMs: 10_000,
      serverConnections: 1,
      serverRetryTimeoutMs: 30_000,
      serverFailureLimit: 2,
      autoEjectHosts: false,
    });
    // Port 11211 is left out of the ketama name (libmemcached compatibility).
    expect(b!.servers[0]!.name).toBe("10.0.0.1");
    expect(Nutcracker.check(GOOD).code).toBe(0);
  });

  const pool = (body: string) => `p:\n  listen: 127.0.0.1:1\n  redis: true\n${body}  servers:\n   - 127.0.0.1:2:1\n`;
  const cases: Array<{ what: string; yaml: string; line: number; key: string; says: string; nutcrackerRefuses: boolean }> = [
    { what: "unknown key", yaml: pool("  hashh: md5\n"), line: 4, key: "hashh", says: "unknown key", nutcrackerRefuses: true },
    { what: "bad hash", yaml: pool("  hash: sha1\n"), line: 4, key: "hash", says: "not a valid hash", nutcrackerRefuses: true },
    { what: "bad distribution", yaml: pool("  distribution: rendezvous\n"), line: 4, key: "distribution", says: "not a valid distribution", nutcrackerRefuses: true },
    { what: "hash_tag of three characters", yaml: pool('  hash_tag: "{}}"\n'), line: 4, key: "hash_tag", says: "two characters", nutcrackerRefuses: true },
    { what: "duplicate key", yaml: pool("  timeout: 1\n  timeout: 2\n"), line: 5, key: "timeout", says: "duplicate", nutcrackerRefuses: true },
    { what: "number that is not", yaml: pool("  timeout: 4s\n"), line: 4, key: "timeout", says: "not a number", nutcrackerRefuses: true },
    { what: "boolean that is not", yaml: pool("  preconnect: yes\n"), line: 4, key: "preconnect", says: '"true" or "false"', nutcrackerRefuses: true },
    { what: "server_connections 0", yaml: pool("  server_connections: 0\n"), line: 4, key: "server_connections", says: "cannot be 0", nutcrackerRefuses: true },
    { what: "backlog (nutcracker's, not ours)", yaml: pool("  backlog: 1024\n"), line: 4, key: "backlog", says: "not supported", nutcrackerRefuses: false },
    { what: "tcpkeepalive (nutcracker's, not ours)", yaml: pool("  tcpkeepalive: true\n"), line: 4, key: "tcpkeepalive", says: "not supported", nutcrackerRefuses: false },
    { what: "zero weight", yaml: "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:2:0\n", line: 5, key: "servers", says: "zero weight", nutcrackerRefuses: true },
    { what: "server without weight", yaml: "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:2\n", line: 5, key: "servers", says: "host:port:weight", nutcrackerRefuses: true },
    {
      what: "two servers with one name",
      yaml: "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:2:1 a\n   - 127.0.0.1:3:1 a\n",
      line: 6,
      key: "servers",
      says: "same name",
      nutcrackerRefuses: true,
    },
    { what: "no listen", yaml: "p:\n  redis: true\n  servers:\n   - 127.0.0.1:2:1\n", line: 1, key: "listen", says: "listen", nutcrackerRefuses: true },
    { what: "no servers", yaml: "p:\n  listen: 127.0.0.1:1\n  redis: true\n", line: 1, key: "servers", says: "no servers", nutcrackerRefuses: true },
    { what: "memcached pool", yaml: "p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:2:1\n", line: 1, key: "redis", says: "memcached", nutcrackerRefuses: false },
    { what: "bad listen port", yaml: "p:\n  listen: 127.0.0.1:99999\n  redis: true\n  servers:\n   - 127.0.0.1:2:1\n", line: 2, key: "listen", says: "invalid port", nutcrackerRefuses: true },
    { what: "flow sequence", yaml: "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers: [127.0.0.1:2:1]\n", line: 4, key: "servers", says: "list of", nutcrackerRefuses: true },
    { what: "a tab", yaml: "p:\n\tlisten: 127.0.0.1:1\n", line: 2, key: "", says: "tab", nutcrackerRefuses: true },
    { what: "nested mapping", yaml: "p:\n  listen: 127.0.0.1:1\n    redis: true\n", line: 3, key: "", says: "line up", nutcrackerRefuses: true },
  ];

  test.each(cases)("$what: an error naming line $line and key '$key'", ({ yaml, line, key, says, nutcrackerRefuses }) => {
    let err: unknown;
    try {
      parseProxyConfig(yaml, "bad.yml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProxyConfigError);
    expect(err).toBeInstanceOf(MyriadError);
    const e = err as ProxyConfigError;
    expect(e.code).toBe("ERR_PROXY_CONFIG");
    expect({ line: e.line, key: e.key }).toEqual({ line, key });
    expect(e.message).toStartWith(`bad.yml:${line}: `);
    expect(e.message).toContain(says);
    // nutcracker -t agrees that the file is invalid (where the key is not one only myriad refuses).
    if (nutcrackerRefuses) expect(Nutcracker.check(yaml).code).not.toBe(0);
  });

  test("an object configuration and the quick form check the same way", () => {
    const cfg = quickProxyConfig("127.0.0.1:22121", ["127.0.0.1:6379", "127.0.0.1:6380:2"]);
    expect(cfg.pools[0]!.servers.map((s) => [s.address, s.weight])).toEqual([
      ["127.0.0.1:6379", 1],
      ["127.0.0.1:6380", 2],
    ]);
    expect(() => proxyConfigFromObject({ p: { listen: "127.0.0.1:1", redis: true, hash: "nope", servers: ["127.0.0.1:2:1"] } })).toThrow(
      /hash: "nope" is not a valid hash/,
    );
  });
});
