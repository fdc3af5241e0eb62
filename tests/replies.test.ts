import { describe, expect, test } from "bun:test";
import { allWithin, ReplyWaiters } from "../src/system/index.ts";

/** Which of `waits` have resolved, after the microtasks queued so far ran. */
async function settled(waits: Promise<void>[]): Promise<boolean[]> {
  const done = waits.map(() => false);
  waits.forEach((w, i) => void w.then(() => (done[i] = true)));
  await Bun.sleep(0);
  return done;
}

describe("ReplyWaiters: answers matched to requests by id", () => {
  test("an answer resolves its request and every earlier one, not later ones; an unrequested report none", async () => {
    const w = new ReplyWaiters();
    const waits = [w.wait(1), w.wait(2), w.wait(3)];
    w.answered(undefined);
    expect(await settled(waits)).toEqual([false, false, false]);
    w.answered(2);
    expect(await settled(waits)).toEqual([true, true, false]);
    w.answered(Infinity);
    expect(await settled(waits)).toEqual([true, true, true]);
  });

  test("release() resolves every wait: a child that exited will not answer", async () => {
    const w = new ReplyWaiters();
    const waits = [w.wait(5), w.wait(6)];
    w.release();
    expect(await settled(waits)).toEqual([true, true]);
  });

  test("allWithin: true when all resolve in time, false when the time runs out first", async () => {
    expect(await allWithin([Promise.resolve(), Bun.sleep(1)], 10_000)).toBe(true);
    const never = new Promise<void>(() => {});
    expect(await allWithin([Promise.resolve(), never], 20)).toBe(false);
  });
});
