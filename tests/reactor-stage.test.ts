/**
 * The protocol-stage seam (src/reactor/input.ts): a stage in front of the codec takes a
 * connection at open, sees all its unconsumed input until it lets go, and then hands the rest
 * to the codec. The WebSocket upgrade and the PROXY header are built on it; here a minimal
 * stage stands in for them: a "HELLO <name>\n" line first, answered "WELCOME <name>\n",
 * then lines frames as usual. It is installed the way createServer's own options install
 * theirs, on the server's state before any connection opens.
 */
import { expect, test } from "bun:test";
import { createServer, type Server } from "../src/reactor/index.ts";
import { feed, hold, unstage } from "../src/reactor/input.ts";
import type { InputStage, ReactorState } from "../src/reactor/state.ts";
import { trackPeers } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";

const peers = trackPeers();
const dec = new TextDecoder();

const seen = { opened: 0, closedBeforeHello: 0 };

/** Waits for "HELLO <name>\n"; holds a partial header across reads. */
const helloStage: InputStage = {
  open(): boolean {
    seen.opened++;
    return true;
  },
  data(s: ReactorState, h: number, slot: number, buf: Uint8Array): void {
    const lf = buf.indexOf(10);
    if (lf < 0) return hold(s, slot, buf, 0, buf.length);
    const line = dec.decode(buf.subarray(0, lf));
    if (!line.startsWith("HELLO ")) {
      s.write(h, "NO\n");
      s.close(h, "protocol");
      return;
    }
    s.write(h, `WELCOME ${line.slice(6)}\n`);
    unstage(s, h, slot);
    feed(s, h, slot, buf, lf + 1, buf.length);
  },
  close(): boolean {
    seen.closedBeforeHello++;
    return false;
  },
};

test("a stage before the codec: header split across reads, frames in the same read as its end, open and close only after it", async () => {
  const events: string[] = [];
  const server: Server = await createServer({
    protocol: "lines",
    handler: {
      open: () => void events.push("open"),
      message(conn, line: Uint8Array) {
        events.push(`msg ${dec.decode(line)}`);
        conn.write(`echo ${dec.decode(line)}\n`);
      },
      close: (_c, reason) => void events.push(`close ${reason}`),
    },
  });
  peers.servers.push(server);
  (server as unknown as ReactorState).stage = helloStage;

  const c = await peers.client(server.port);
  await c.sendSlowly("HEL", 1, 1);
  await c.send("LO ann\nfirst\nsec");
  await c.waitBytes("WELCOME ann\necho first\n".length);
  await c.send("ond\n");
  await c.waitBytes("WELCOME ann\necho first\necho second\n".length);
  expect(c.text()).toBe("WELCOME ann\necho first\necho second\n");
  c.close();
  await until("the close hook", () => events.includes("close peer"));
  expect(events).toEqual(["open", "msg first", "msg second", "close peer"]);

  // Refused by the stage, and one that leaves before its header: the handler never sees either.
  const bad = await peers.client(server.port);
  await bad.send("GET / HTTP/1.1\r\n");
  await bad.waitClosed();
  expect(bad.text()).toBe("NO\n");
  const gone = await peers.client(server.port);
  await gone.send("HELLO");
  await until("the server saw three connections", () => seen.opened === 3);
  gone.close();
  await until("both closed", () => server.connections === 0);
  expect(seen.closedBeforeHello).toBe(2);
  expect(events).toEqual(["open", "msg first", "msg second", "close peer"]);
  expect(server.stats().inputBufferBytes).toBe(0);
});
