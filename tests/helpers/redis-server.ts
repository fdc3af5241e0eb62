/**
 * A real redis-server for tests and benchmarks: started on a free loopback port with no
 * persistence, awaited until it answers PING, stopped or killed by pid, restartable on the
 * same port. A missing redis-server is an error that says how to install it.
 */
import type { Subprocess } from "bun";
import { isSelfConnect } from "../../src/pool/index.ts";
import { freePort } from "./ports.ts";
import { terminate } from "./process.ts";
import { respConnect } from "./resp-conn.ts";
import { GiveUp, until } from "./until.ts";

const INSTALL_HINT =
  "redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server redis-tools; macOS: brew install redis) — the pool tests need a real redis-server";

/** Sends one inline command over a fresh connection and resolves the raw reply text. */
export async function rawCommand(port: number, command: string, timeoutMs = 1_000): Promise<string> {
  let reply = "";
  let settle!: (v: string) => void;
  let fail!: (e: Error) => void;
  const done = new Promise<string>((res, rej) => {
    settle = res;
    fail = rej;
  });
  done.catch(() => {}); // a connect failure surfaces through Bun.connect's own rejection
  const timer = setTimeout(() => fail(new Error(`no reply to ${command} from 127.0.0.1:${port} within ${timeoutMs} ms`)), timeoutMs);
  try {
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data(s, chunk) {
          reply += chunk.toString();
          if (reply.endsWith("\r\n")) {
            settle(reply);
            s.end();
          }
        },
        close() {
          fail(new Error(`connection to 127.0.0.1:${port} closed before a reply to ${command}`));
        },
        connectError(_s, err) {
          fail(err);
        },
      },
    });
    // Polled while redis starts, on a port in the ephemeral range: a socket that connected to
    // itself would read this command back as the reply, and hold the port redis is binding.
    if (isSelfConnect(socket)) {
      socket.terminate();
      throw new Error(`connected to itself on 127.0.0.1:${port} (nothing listens there yet)`);
    }
    socket.write(`${command}\r\n`);
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

export class RedisServer {
  private proc: Subprocess | null = null;
  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[] = [],
  ) {}

  /**
   * Starts redis-server on a free port (or `port`), with `args` added to its command line
   * (e.g. ["--requirepass", "pw"]), and waits until it answers PING (or refuses it for want
   * of AUTH).
   */
  static async start(options: { port?: number; args?: readonly string[] } = {}): Promise<RedisServer> {
    if (!Bun.which("redis-server")) throw new Error(INSTALL_HINT);
    let lastErr: unknown;
    // A port picked free may be taken before redis binds it: try another.
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = new RedisServer(options.port ?? freePort(), options.args);
      try {
        await server.spawn();
        return server;
      } catch (err) {
        lastErr = err;
        server.kill();
        if (options.port !== undefined) break;
      }
    }
    throw lastErr;
  }

  /** The running process id, or -1. */
  get pid(): number {
    return this.proc?.pid ?? -1;
  }
  /** True while the process runs. */
  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private async spawn(): Promise<void> {
    this.proc = Bun.spawn(
      [
        "redis-server",
        "--port", String(this.port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--loglevel", "warning",
        "--maxclients", "10000",
        ...this.extraArgs,
      ],
      { stdout: "ignore", stderr: "pipe" },
    );
    await until(`redis-server to answer PING on 127.0.0.1:${this.port}`, async () => {
      if (!this.running) {
        const err = this.proc?.stderr instanceof ReadableStream ? await new Response(this.proc.stderr).text() : "";
        throw new GiveUp(`redis-server exited at start on port ${this.port}: ${err.trim()}`);
      }
      const reply = await rawCommand(this.port, "PING", 500);
      return reply.startsWith("+PONG") || reply.startsWith("-NOAUTH");
    }, 5_000);
  }

  /** Sends SIGKILL to the pid and waits for the process to exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === null) return;
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, "SIGKILL");
    await proc.exited;
    this.proc = null;
  }

  /** SIGTERM by pid, SIGKILL if it has not exited within 2 s. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc === null) return;
    await terminate(proc);
    this.proc = null;
  }

  /** Starts it again on the same port (after kill/stop) and waits until it answers. */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.spawn();
  }

  /** Sends one inline command (e.g. "CLIENT KILL TYPE normal") on its own connection; resolves the raw reply. */
  command(command: string): Promise<string> {
    return rawCommand(this.port, command);
  }

  /** Connections to it from clients other than the asker, by CLIENT LIST on a connection of its own. */
  async otherClients(): Promise<number> {
    const c = await respConnect(this.port);
    try {
      const [list] = await c.call(["CLIENT", "LIST"]);
      return (list as string).trim().split("\n").length - 1;
    } finally {
      c.close();
    }
  }
}
