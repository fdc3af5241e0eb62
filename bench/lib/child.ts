/**
 * A child process of a benchmark that speaks JSON lines: one object per line on its stdout
 * (read with next()), commands as lines on its stdin (send()). Stopped by pid (SIGKILL).
 */
export class Child {
  readonly proc: ReturnType<typeof Bun.spawn>;
  private buffered: string[] = [];
  private waiters: ((l: string) => void)[] = [];

  /** Spawns cmd with piped stdin and stdout; stderr goes to ours. */
  constructor(cmd: string[]) {
    this.proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    void this.pump();
  }

  private async pump(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of this.proc.stdout as ReadableStream<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.buffered.push(line);
      }
    }
  }

  /** The next line, parsed; rejects after timeoutMs. */
  next(timeoutMs = 120_000): Promise<any> {
    const l = this.buffered.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l));
    return new Promise((resolve, reject) => {
      const waiter = (line: string) => {
        clearTimeout(t);
        resolve(JSON.parse(line));
      };
      // A waiter that timed out leaves the queue, so the next line goes to the next caller.
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`child ${this.proc.pid}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Writes one line to the child's stdin. */
  send(line: string): void {
    const stdin = this.proc.stdin as import("bun").FileSink;
    stdin.write(line + "\n");
    stdin.flush();
  }

  /** Kills the child (SIGKILL) and waits for it to exit. */
  async stop(): Promise<void> {
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }
}
