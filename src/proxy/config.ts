/**
 * twemproxy (nutcracker 0.5.0) configuration files, as they stand: the YAML subset nutcracker
 * reads, checked key by key, with every error naming the file, line and key.
 *
 *   alpha:                          # a pool: its name, then its keys one level in
 *     listen: 127.0.0.1:22121       # host:port, or a unix socket path [octal mode]
 *     hash: fnv1a_64
 *     hash_tag: "{}"
 *     distribution: ketama
 *     redis: true
 *     servers:                      # host:port:weight [name]
 *      - 127.0.0.1:6379:1 server1
 *
 * The subset is nutcracker's own: one document, a mapping of pools, each a mapping of scalar
 * keys and one `servers` sequence; no flow collections, anchors, aliases, tags or document
 * markers (nutcracker refuses those too). Scalars may be quoted. Bun.YAML does not report
 * line numbers, so this is a small line parser of its own.
 *
 * Keys nutcracker knows and myriad does not honour (`backlog`, `tcpkeepalive`) are errors
 * naming the key and line, as is any unknown key: nothing is ignored silently.
 *
 * One file a little past 500 lines on purpose: the line reader, the key checks and the
 * defaults are one grammar, and every error has to name the same file, line and key; the
 * quick form (--listen/--servers) and the object form are checked by the same functions.
 */
import { readFileSync } from "node:fs";
import { MyriadError, MyriadTypeError } from "../errors.ts";
import { compareServerNames, DISTRIBUTION_NAMES, type DistributionName } from "./continuum.ts";
import { HASH_NAMES, isHashName, type HashName } from "./hash.ts";

/** A bad configuration: `file`, `line` (1-based; 0 when not from a file) and `key` say where. */
export class ProxyConfigError extends MyriadError {
  constructor(
    message: string,
    readonly file: string,
    readonly line: number,
    readonly key: string,
  ) {
    super("ERR_PROXY_CONFIG", message);
  }
}

/** One upstream server of a pool. */
export interface ProxyServerConfig {
  host: string;
  port: number;
  weight: number;
  /** The name ketama hashes: the given name, else "host:port" ("host" for port 11211). */
  name: string;
  /** The name given after the weight, or "" when none. */
  givenName: string;
  /** "host:port" for messages and stats. */
  address: string;
  /** The configuration line, or 0. */
  line: number;
}

/** Where a pool listens. */
export type ProxyListen = { host: string; port: number } | { path: string; mode: number | undefined };

/** One pool: a listen address, how keys are placed, and its servers. Times in milliseconds. */
export interface ProxyPoolConfig {
  name: string;
  line: number;
  listen: ProxyListen;
  hash: HashName;
  /** Two characters, or "" for none. */
  hashTag: string;
  distribution: DistributionName;
  /** Bound on every request (nutcracker's default waits forever; ours does not). */
  timeoutMs: number;
  /** Most client connections; 0: as many as the process's descriptors allow. */
  clientConnections: number;
  /** Password clients must AUTH with, also sent to every server; "" for none. */
  redisAuth: string;
  redisDb: number;
  preconnect: boolean;
  autoEjectHosts: boolean;
  serverConnections: number;
  serverRetryTimeoutMs: number;
  serverFailureLimit: number;
  /** In nutcracker's order: sorted by name (see compareServerNames). */
  servers: ProxyServerConfig[];
}

/** A whole configuration: its pools in file order. */
export interface ProxyConfig {
  pools: ProxyPoolConfig[];
}

/** The default `timeout` when the file sets none (nutcracker would wait forever). */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** nutcracker's default server_retry_timeout, in ms. */
const DEFAULT_SERVER_RETRY_TIMEOUT_MS = 30_000;
/** nutcracker's default server_failure_limit. */
const DEFAULT_SERVER_FAILURE_LIMIT = 2;
/** nutcracker's default server_connections. */
const DEFAULT_SERVER_CONNECTIONS = 1;
/** Port whose number nutcracker leaves out of ketama names (libmemcached compatibility). */
const KETAMA_DEFAULT_PORT = 11211;

/** The pool keys myriad honours. */
export const POOL_KEYS = [
  "listen",
  "hash",
  "hash_tag",
  "distribution",
  "timeout",
  "client_connections",
  "redis",
  "redis_auth",
  "redis_db",
  "preconnect",
  "auto_eject_hosts",
  "server_connections",
  "server_retry_timeout",
  "server_failure_limit",
  "servers",
] as const;

/** Keys nutcracker knows that myriad refuses, and why. */
const REFUSED_KEYS: Record<string, string> = {
  backlog: "is not supported: Bun.listen takes the kernel's listen backlog (net.core.somaxconn); remove the line",
  tcpkeepalive: "is not supported: the pooled upstream client does not set SO_KEEPALIVE; remove the line",
};

/** A scalar with the line it was on. */
interface Located {
  value: string;
  line: number;
}

/** A pool as read from the file, before its values are checked. */
interface RawPool {
  name: string;
  line: number;
  keys: Map<string, Located>;
  servers: Located[] | null;
  serversLine: number;
}

class Reader {
  constructor(readonly file: string) {}

  fail(line: number, key: string, message: string): never {
    const where = this.file === "" ? (line > 0 ? `line ${line}` : "") : line > 0 ? `${this.file}:${line}` : this.file;
    throw new ProxyConfigError(where === "" ? message : `${where}: ${message}`, this.file, line, key);
  }
}

/** Strips a comment ("#" at the start or after a space, outside quotes) and trailing space. */
function stripComment(text: string): string {
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== "") {
      if (c === quote) quote = "";
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || text[i - 1] === " " || text[i - 1] === "\t")) return text.slice(0, i).trimEnd();
  }
  return text.trimEnd();
}

/** A scalar's text: unquoted (YAML's escapes in double quotes, '' in single quotes). */
function scalar(r: Reader, raw: string, line: number, key: string): string {
  const s = raw.trim();
  if (s === "") return "";
  const q = s[0];
  if (q === '"' || q === "'") {
    if (s.length < 2 || s[s.length - 1] !== q) r.fail(line, key, `${key}: unterminated quoted value ${s}`);
    const body = s.slice(1, -1);
    if (q === "'") return body.replaceAll("''", "'");
    try {
      return JSON.parse(`"${body}"`) as string;
    } catch {
      r.fail(line, key, `${key}: a double-quoted value with an escape YAML's subset here does not read: ${s}`);
    }
  }
  if ("[{&*!|>%@`".includes(q!)) {
    r.fail(line, key, `${key}: ${JSON.stringify(s)} starts with "${q}": flow collections, anchors, aliases, tags and block scalars are not allowed (nutcracker refuses them too)`);
  }
  return s;
}

/** Reads the file's structure: pools, their keys and their servers, with line numbers. */
function readStructure(text: string, r: Reader): RawPool[] {
  const pools: RawPool[] = [];
  const lines = text.split(/\r?\n/);
  let pool: RawPool | null = null;
  let keyIndent = -1;
  let inServers = false;
  let seqIndent = -1;
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const raw = lines[n]!;
    if (n === 0 && raw.startsWith("\uFEFF")) lines[0] = raw.slice(1);
    const body = stripComment(lines[n]!);
    if (body.trim() === "") continue;
    const lead = /^[ \t]*/.exec(body)![0];
    if (lead.includes("\t")) r.fail(lineNo, "", "a tab in the indentation: YAML indents with spaces only");
    const indent = lead.length;
    const content = body.slice(indent);
    if (content === "---" || content === "..." || content.startsWith("--- ") || content.startsWith("%")) {
      r.fail(lineNo, "", `"${content}": document markers and directives are not allowed (one document, as nutcracker reads it)`);
    }
    if (indent === 0) {
      // A pool: "name:" and nothing after the colon.
      if (content.startsWith("- ") || content === "-") r.fail(lineNo, "", "a sequence at the top level: the file is a mapping of pools (name: then its keys)");
      const m = /^([^:]+?)\s*:\s*(.*)$/.exec(content);
      if (m === null) r.fail(lineNo, "", `"${content}": expected a pool name followed by ":"`);
      const name = scalar(r, m[1]!, lineNo, "pool");
      if (m[2] !== "") r.fail(lineNo, name, `pool "${name}": expected its keys on the following lines, indented, not a value on the same line`);
      if (name === "") r.fail(lineNo, "", "an empty pool name");
      if (pools.some((p) => p.name === name)) r.fail(lineNo, name, `pool "${name}" is defined twice (first on line ${pools.find((p) => p.name === name)!.line})`);
      pool = { name, line: lineNo, keys: new Map(), servers: null, serversLine: 0 };
      pools.push(pool);
      keyIndent = -1;
      inServers = false;
      seqIndent = -1;
      continue;
    }
    if (pool === null) r.fail(lineNo, "", "an indented line before any pool name");
    if (content.startsWith("- ") || content === "-") {
      // A server: only under "servers:", at or below its key's indentation.
      if (!inServers) r.fail(lineNo, "", `a sequence entry outside "servers:" in pool "${pool.name}"`);
      if (indent < keyIndent) r.fail(lineNo, "servers", "a servers entry indented less than the pool's keys");
      if (seqIndent === -1) seqIndent = indent;
      else if (indent !== seqIndent) r.fail(lineNo, "servers", `servers entries must line up (this one is indented ${indent}, the first ${seqIndent})`);
      const value = scalar(r, content.slice(1), lineNo, "servers");
      if (value === "") r.fail(lineNo, "servers", "an empty servers entry");
      pool.servers!.push({ value, line: lineNo });
      continue;
    }
    if (keyIndent === -1) keyIndent = indent;
    else if (indent !== keyIndent) {
      r.fail(lineNo, "", `pool "${pool.name}": keys must line up (this line is indented ${indent}, the pool's keys ${keyIndent})${indent > keyIndent ? "; nested mappings are not allowed" : ""}`);
    }
    inServers = false;
    const m = /^([^:\s]+)\s*:(?:\s+(.*)|)$/.exec(content);
    if (m === null) r.fail(lineNo, "", `pool "${pool.name}": "${content}" is not "key: value"`);
    const key = m[1]!;
    const valueText = m[2] ?? "";
    if (pool.keys.has(key) || (key === "servers" && pool.servers !== null)) {
      r.fail(lineNo, key, `${key}: is a duplicate in pool "${pool.name}" (first on line ${key === "servers" ? pool.serversLine : pool.keys.get(key)!.line})`);
    }
    if (key === "servers") {
      if (valueText.trim() !== "") r.fail(lineNo, key, `servers: expected a list of "- host:port:weight [name]" lines below it, not a value on the same line`);
      pool.servers = [];
      pool.serversLine = lineNo;
      inServers = true;
      seqIndent = -1;
      continue;
    }
    const value = scalar(r, valueText, lineNo, key);
    if (value === "") r.fail(lineNo, key, `${key}: has no value`);
    pool.keys.set(key, { value, line: lineNo });
  }
  return pools;
}

/**
 * Parses and checks a twemproxy configuration file's text. Throws ProxyConfigError naming
 * the file (`file`, for messages), line and key of the first problem.
 */
export function parseProxyConfig(text: string, file = ""): ProxyConfig {
  if (typeof text !== "string") throw new MyriadTypeError("ERR_PROXY_CONFIG", `parseProxyConfig takes the YAML text as a string, got ${typeof text}`);
  const r = new Reader(file);
  const raw = readStructure(text, r);
  if (raw.length === 0) r.fail(0, "", "has no pools (expected \"name:\" followed by indented keys)");
  return checkPools(raw, r);
}

/** Reads and parses a configuration file (see parseProxyConfig); a missing file is a ProxyConfigError. */
export function readProxyConfig(path: string): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message;
    throw new ProxyConfigError(`${path}: ${why}`, path, 0, "");
  }
  return parseProxyConfig(text, path);
}

/** A twemproxy configuration as a JavaScript object: pools by name, values as in the YAML file. */
export type TwemproxyConfigObject = Record<string, Record<string, string | number | boolean | string[]>>;

/**
 * Checks a configuration given as an object (what Bun.YAML.parse makes of a nutcracker file,
 * or one written in code) and returns it in ProxyConfig form. Errors name the pool and key.
 */
export function proxyConfigFromObject(obj: TwemproxyConfigObject): ProxyConfig {
  const r = new Reader("");
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) r.fail(0, "", "the configuration must be an object of pools: { name: { listen, servers, ... } }");
  const raw: RawPool[] = [];
  for (const [name, body] of Object.entries(obj)) {
    if (body === null || typeof body !== "object" || Array.isArray(body)) r.fail(0, name, `pool "${name}": expected an object of keys (listen, servers, ...)`);
    const pool: RawPool = { name, line: 0, keys: new Map(), servers: null, serversLine: 0 };
    for (const [key, value] of Object.entries(body)) {
      if (key === "servers") {
        if (!Array.isArray(value) || value.some((s) => typeof s !== "string")) r.fail(0, key, `pool "${name}": servers must be an array of "host:port:weight [name]" strings`);
        pool.servers = (value as string[]).map((v) => ({ value: v, line: 0 }));
      } else {
        if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
          r.fail(0, key, `pool "${name}": ${key} must be a string, number or boolean`);
        }
        pool.keys.set(key, { value: String(value), line: 0 });
      }
    }
    raw.push(pool);
  }
  if (raw.length === 0) r.fail(0, "", "has no pools");
  return checkPools(raw, r);
}

/** True for a ProxyConfig (as opposed to a twemproxy-shaped object). */
export function isProxyConfig(v: unknown): v is ProxyConfig {
  return v !== null && typeof v === "object" && Array.isArray((v as ProxyConfig).pools) && Object.keys(v as object).length === 1;
}

function checkPools(raw: RawPool[], r: Reader): ProxyConfig {
  const pools = raw.map((p) => checkPool(p, r));
  const listens = new Map<string, ProxyPoolConfig>();
  for (const p of pools) {
    const key = "path" in p.listen ? p.listen.path : `${p.listen.host}:${p.listen.port}`;
    const other = listens.get(key);
    if (other !== undefined && !(("port" in p.listen && p.listen.port === 0))) {
      r.fail(p.line, "listen", `pools "${other.name}" and "${p.name}" have the same listen address ${key}`);
    }
    listens.set(key, p);
  }
  return { pools };
}

function num(r: Reader, k: Located, key: string): number {
  // nutcracker's nc_atoi: decimal digits only.
  if (!/^[0-9]+$/.test(k.value)) r.fail(k.line, key, `${key}: is not a number (expected a whole number >= 0, got "${k.value}")`);
  const n = Number(k.value);
  if (n > 2 ** 31 - 1) r.fail(k.line, key, `${key}: ${k.value} is too large (at most ${2 ** 31 - 1})`);
  return n;
}

function bool(r: Reader, k: Located, key: string): boolean {
  if (k.value === "true") return true;
  if (k.value === "false") return false;
  return r.fail(k.line, key, `${key}: is not "true" or "false" (got "${k.value}")`);
}

function checkPool(p: RawPool, r: Reader): ProxyPoolConfig {
  for (const [key, k] of p.keys) {
    if (Object.hasOwn(REFUSED_KEYS, key)) r.fail(k.line, key, `${key}: ${REFUSED_KEYS[key]}`);
    if (!(POOL_KEYS as readonly string[]).includes(key)) {
      r.fail(k.line, key, `${key}: unknown key in pool "${p.name}"; the keys are ${POOL_KEYS.join(", ")}`);
    }
  }
  const get = (key: string) => p.keys.get(key);
  const redis = get("redis");
  if (redis === undefined || !bool(r, redis, "redis")) {
    r.fail(redis?.line ?? p.line, "redis", `pool "${p.name}" is a memcached pool (${redis === undefined ? "no \"redis: true\"" : "redis: false"}): myriad's proxy speaks the redis protocol only; add "redis: true"`);
  }
  const listenKey = get("listen");
  if (listenKey === undefined) r.fail(p.line, "listen", `pool "${p.name}": directive "listen:" is missing (host:port or a unix socket path)`);
  const listen = parseListen(r, listenKey);

  const hashKey = get("hash");
  let hash: HashName = "fnv1a_64";
  if (hashKey !== undefined) {
    if (!isHashName(hashKey.value)) r.fail(hashKey.line, "hash", `hash: "${hashKey.value}" is not a valid hash; one of ${HASH_NAMES.join(", ")}`);
    hash = hashKey.value;
  }
  const tagKey = get("hash_tag");
  let hashTag = "";
  if (tagKey !== undefined) {
    if (Buffer.byteLength(tagKey.value) !== 2) r.fail(tagKey.line, "hash_tag", `hash_tag: is not a valid hash tag string with two characters (got "${tagKey.value}"; e.g. "{}")`);
    hashTag = tagKey.value;
  }
  const distKey = get("distribution");
  let distribution: DistributionName = "ketama";
  if (distKey !== undefined) {
    if (!(DISTRIBUTION_NAMES as readonly string[]).includes(distKey.value)) {
      r.fail(distKey.line, "distribution", `distribution: "${distKey.value}" is not a valid distribution; one of ${DISTRIBUTION_NAMES.join(", ")}`);
    }
    distribution = distKey.value as DistributionName;
  }
  const opt = (key: string, dflt: number) => {
    const k = get(key);
    return k === undefined ? dflt : num(r, k, key);
  };
  const optBool = (key: string, dflt: boolean) => {
    const k = get(key);
    return k === undefined ? dflt : bool(r, k, key);
  };
  const timeoutMs = opt("timeout", DEFAULT_TIMEOUT_MS);
  if (timeoutMs === 0) r.fail(get("timeout")!.line, "timeout", "timeout: 0 would fail every request; give milliseconds > 0 (leave it out for the default, 10000)");
  const serverConnections = opt("server_connections", DEFAULT_SERVER_CONNECTIONS);
  if (serverConnections === 0) r.fail(get("server_connections")!.line, "server_connections", 'directive "server_connections:" cannot be 0');
  const serverFailureLimit = opt("server_failure_limit", DEFAULT_SERVER_FAILURE_LIMIT);
  const redisDb = opt("redis_db", 0);
  const authKey = get("redis_auth");

  if (p.servers === null || p.servers.length === 0) {
    r.fail(p.servers === null ? p.line : p.serversLine, "servers", `pool "${p.name}" has no servers (add "servers:" with "- host:port:weight [name]" lines)`);
  }
  const servers = p.servers.map((s) => parseServer(r, s));
  servers.sort((a, b) => compareServerNames(a.name, b.name));
  for (let i = 1; i < servers.length; i++) {
    if (servers[i]!.name === servers[i - 1]!.name) {
      const [a, b] = [servers[i - 1]!, servers[i]!].sort((x, y) => x.line - y.line);
      r.fail(b!.line, "servers", `pool "${p.name}" has servers with the same name "${b!.name}" (lines ${a!.line} and ${b!.line}); give each a distinct name after its weight`);
    }
  }
  return {
    name: p.name,
    line: p.line,
    listen,
    hash,
    hashTag,
    distribution,
    timeoutMs,
    clientConnections: opt("client_connections", 0),
    redisAuth: authKey?.value ?? "",
    redisDb,
    preconnect: optBool("preconnect", false),
    autoEjectHosts: optBool("auto_eject_hosts", false),
    serverConnections,
    serverRetryTimeoutMs: opt("server_retry_timeout", DEFAULT_SERVER_RETRY_TIMEOUT_MS),
    serverFailureLimit,
    servers,
  };
}

function port(r: Reader, text: string, k: Located, key: string, what: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) > 65535) r.fail(k.line, key, `${key}: has an invalid port in "${what}" (got "${k.value}")`);
  return Number(text);
}

function parseListen(r: Reader, k: Located): ProxyListen {
  const v = k.value;
  if (v.startsWith("/")) {
    const sp = v.lastIndexOf(" ");
    if (sp < 0) return { path: v, mode: undefined };
    const perm = v.slice(sp + 1);
    if (!/^[0-7]{1,4}$/.test(perm) || Number.parseInt(perm, 8) > 0o777) {
      r.fail(k.line, "listen", `listen: has an invalid file permission in "socket_path permission" (got "${perm}"; e.g. 0666)`);
    }
    return { path: v.slice(0, sp), mode: Number.parseInt(perm, 8) };
  }
  const colon = v.lastIndexOf(":");
  if (colon <= 0) r.fail(k.line, "listen", `listen: has an invalid "hostname:port" (got "${v}")`);
  let host = v.slice(0, colon);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host, port: port(r, v.slice(colon + 1), k, "listen", "hostname:port") };
}

/** "host:port:weight [name]", parsed from the end as nutcracker does. */
function parseServer(r: Reader, s: Located): ProxyServerConfig {
  const v = s.value;
  const form = '"host:port:weight [name]"';
  if (v.startsWith("/")) r.fail(s.line, "servers", `servers: unix socket servers ("${v}") are not supported: the pooled upstream client connects over TCP; give host:port:weight`);
  let addr = v;
  let givenName = "";
  const sp = v.lastIndexOf(" ");
  if (sp >= 0) {
    givenName = v.slice(sp + 1);
    addr = v.slice(0, sp).trimEnd();
  }
  const c2 = addr.lastIndexOf(":");
  const c1 = c2 > 0 ? addr.lastIndexOf(":", c2 - 1) : -1;
  if (c1 <= 0) r.fail(s.line, "servers", `servers: "${v}" is not a valid ${form}`);
  let host = addr.slice(0, c1);
  const portText = addr.slice(c1 + 1, c2);
  const weightText = addr.slice(c2 + 1);
  if (!/^[0-9]+$/.test(weightText)) r.fail(s.line, "servers", `servers: "${v}" has an invalid weight in ${form}`);
  const weight = Number(weightText);
  if (weight === 0) r.fail(s.line, "servers", `servers: "${v}" has a zero weight in ${form}`);
  if (weight > 1_000_000) r.fail(s.line, "servers", `servers: "${v}" has a weight above 1000000`);
  const p = port(r, portText, s, "servers", form);
  if (p === 0) r.fail(s.line, "servers", `servers: "${v}" has port 0 in ${form}`);
  const ketamaName = p === KETAMA_DEFAULT_PORT ? host : `${host}:${portText}`;
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return {
    host,
    port: p,
    weight,
    name: givenName !== "" ? givenName : ketamaName,
    givenName,
    address: host.includes(":") ? `[${host}]:${p}` : `${host}:${p}`,
    line: s.line,
  };
}

/**
 * The configuration of `--listen host:port --servers a:p,b:p`: one pool named "proxy",
 * redis, ketama over fnv1a_64, weight 1 each, every other key at its default.
 */
export function quickProxyConfig(listen: string, servers: readonly string[], extra: Record<string, string | number | boolean> = {}): ProxyConfig {
  return proxyConfigFromObject({
    proxy: {
      listen,
      redis: true,
      ...extra,
      servers: servers.map((s) => (/^.+:[0-9]+:[0-9]+(\s.*)?$/.test(s) ? s : `${s}:1`)),
    },
  });
}
