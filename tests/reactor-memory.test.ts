/**
 * What a connection costs the server's JS heap: Bun's own socket object and nothing else.
 * No closure, Map entry or object per connection, even with timeouts armed on the wheel and
 * a partial frame held per connection (those live in typed arrays and pooled segments).
 *
 * The server runs in tests/fixtures/reactor-heap.ts, a process of its own, so that its heap
 * holds nothing left over from other test files (see that file for why it matters).
 */
import { expect, test } from "bun:test";
import { runFixture } from "./helpers/fixture.ts";

interface HeapReport {
  n: number;
  before: Record<string, number>;
  during: Record<string, number>;
  after: Record<string, number>;
  opened: number;
  closed: number;
  framesIn: number;
  refsDuring: number;
  refsAfter: number;
}

test("per connection the heap holds Bun's socket and no other object (timeouts armed, a partial frame held)", async () => {
  const n = 1500;
  const r = await runFixture<HeapReport>("reactor-heap.ts", [String(n)]);

  const grown = Object.entries(r.during)
    .map(([type, count]) => [type, count - (r.before[type] ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .sort((a, b) => b[1] - a[1]);
  console.log(`heap objects grown with ${n} connections:`, grown.slice(0, 6).map(([t, d]) => `${t} +${d}`).join(", "));
  expect(r.during.TCPSocket! - (r.before.TCPSocket ?? 0)).toBeGreaterThanOrEqual(n); // the measurement sees sockets
  // Anything made per connection would grow by n; JIT structures and code blocks grow by a fixed ~100.
  const perConnection = grown.filter(([type, d]) => type !== "TCPSocket" && d >= n / 4).map(([type, d]) => `${type} +${d}`);
  expect(perConnection).toEqual([]);
  expect(r.opened).toBe(20 + n);
  expect(r.framesIn).toBe(20 + n);
  expect(r.refsDuring).toBe(n); // one segment per connection for its partial line

  // Closed connections leave nothing behind.
  expect(r.closed).toBe(20 + n);
  expect(r.refsAfter).toBe(0);
  expect((r.after.TCPSocket ?? 0) - (r.before.TCPSocket ?? 0)).toBeLessThan(n / 10);
}, 60_000);
