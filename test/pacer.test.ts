/**
 * listen()'s request pacer (src/node/pacer.ts): requests served in arrival order, in turns bounded
 * by the work they took, and turns given to accepting connections while a burst of them arrives.
 * Clock and scheduling are the test's, so nothing here depends on the machine's speed.
 */
import { describe, expect, it } from 'vitest';
import { RequestPacer } from '../src/node/pacer.js';

/** A pacer over a manual clock and a manual turn queue; `costMs` is what serving one item takes. */
function harness(options: { turnMs?: number; acceptStreakMs?: number; costMs?: number } = {}) {
  let now = 0;
  const turns: Array<() => void> = [];
  const served: Array<{ item: number; waited: number; turn: number }> = [];
  let turn = 0;
  const pacer = new RequestPacer<number>(
    (item, waited) => {
      served.push({ item, waited, turn });
      now += options.costMs ?? 0;
    },
    {
      ...(options.turnMs !== undefined && { turnMs: options.turnMs }),
      ...(options.acceptStreakMs !== undefined && { acceptStreakMs: options.acceptStreakMs }),
      now: () => now,
      schedule: (callback) => turns.push(callback),
    },
  );
  return {
    pacer,
    served,
    get scheduled() {
      return turns.length;
    },
    advance(ms: number) {
      now += ms;
    },
    /** Runs the one scheduled turn. */
    turn() {
      expect(turns).toHaveLength(1);
      turn++;
      turns.shift()!();
    },
    /** Items served in the last turn. */
    lastTurn() {
      return served.filter((s) => s.turn === turn).map((s) => s.item);
    },
  };
}

describe('RequestPacer', () => {
  it('serves in arrival order, in a later turn, with how long each waited', () => {
    const h = harness();
    h.pacer.push(1);
    h.advance(3);
    h.pacer.push(2);
    expect(h.served).toEqual([]);
    expect(h.scheduled).toBe(1); // one turn, however many requests
    h.advance(2);
    h.turn();
    expect(h.served.map((s) => [s.item, s.waited])).toEqual([
      [1, 5],
      [2, 2],
    ]);
    expect(h.pacer.size).toBe(0);
    expect(h.scheduled).toBe(0);
  });

  it('bounds a turn by the work recent turns took', () => {
    // turnMs 10, each request 1 ms of work: turns settle at about ten requests.
    const h = harness({ turnMs: 10, costMs: 1 });
    for (let i = 0; i < 200; i++) h.pacer.push(i);
    h.turn();
    expect(h.lastTurn()).toHaveLength(20); // the first guess: 0.5 ms a request
    const sizes: number[] = [];
    while (h.pacer.size > 0) {
      h.turn();
      sizes.push(h.lastTurn().length);
    }
    expect(sizes.at(-2)).toBeGreaterThanOrEqual(9);
    expect(sizes.at(-2)).toBeLessThanOrEqual(11);
    expect(h.served.map((s) => s.item)).toEqual([...Array(200).keys()]);
  });

  it('serves at least one request a turn, however slow requests are', () => {
    const h = harness({ turnMs: 10, costMs: 500 });
    for (let i = 0; i < 5; i++) h.pacer.push(i);
    h.turn();
    while (h.pacer.size > 0) {
      h.turn();
      expect(h.lastTurn()).toHaveLength(1);
    }
  });

  it('gives the turns after an accepted connection to accepting, for at most acceptStreakMs', () => {
    const h = harness({ turnMs: 10, acceptStreakMs: 20 });
    for (let i = 0; i < 100; i++) h.pacer.push(i);
    h.pacer.accepted();
    h.turn();
    expect(h.lastTurn()).toEqual([]); // accepting: nothing served
    // connections keep coming, one per turn
    for (let i = 0; i < 5; i++) {
      h.advance(3);
      h.pacer.accepted();
      h.turn();
      expect(h.lastTurn()).toEqual([]);
    }
    // the streak has lasted 15 ms; at 21 ms a turn serves again, accepted or not
    h.advance(6);
    h.pacer.accepted();
    h.turn();
    expect(h.lastTurn().length).toBeGreaterThan(0);
    // no connection in the last turn: serving
    h.turn();
    expect(h.lastTurn().length).toBeGreaterThan(0);
  });

  it('ignores accepted connections while nothing waits', () => {
    const h = harness();
    h.pacer.accepted();
    h.pacer.push(1);
    h.turn();
    expect(h.lastTurn()).toEqual([1]);
  });
});
