// Answers in order, and requests coalesced: the rules that keep a slow answer from undoing a newer one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Coalescer, Generations } from '../src/sync';

test('an older answer is never applied after a newer one', () => {
  const g = new Generations();
  const first = g.next();
  const second = g.next();
  assert.equal(g.accept(second), true);
  assert.equal(g.accept(first), false, 'the slow first answer arrives last: dropped');
  assert.equal(g.accept(second), false, 'the same answer twice: once');
  assert.equal(g.accept(g.next()), true);
});

test('a change drops every answer to a request sent before it', () => {
  const g = new Generations();
  const before = g.next(); // a list request in flight while a destroy runs
  g.invalidate(); // the destroy finished
  assert.equal(g.current(before), false);
  assert.equal(g.accept(before), false);
  const after = g.next();
  assert.equal(g.accept(after), true);
});

test('calls in a burst make one run; calls during a run make exactly one more', async () => {
  let runs = 0;
  let release: () => void = () => undefined;
  const c = new Coalescer(async () => {
    runs++;
    await new Promise<void>(resolve => (release = resolve));
  }, 20);
  const burst = Array.from({ length: 30 }, () => c.request()); // Run All: one call per executed cell
  await sleep(60);
  assert.equal(runs, 1);
  const during = [c.request(), c.request(), c.request(true)];
  release();
  await Promise.all(burst);
  await sleep(10);
  assert.equal(runs, 2, 'the calls made during the first run are one second run');
  release();
  await Promise.all(during);
  assert.equal(c.runs, 2);
});

test('a debounced call waits for quiet, but a stream of calls still runs within the bound', async () => {
  let runs = 0;
  const c = new Coalescer(async () => void runs++, 30, 90);
  const started = Date.now();
  for (let i = 0; i < 12; i++) {
    void c.request();
    await sleep(15); // never 30 ms of quiet
  }
  assert.ok(runs >= 1, `ran within the 90 ms bound while calls kept coming (${Date.now() - started} ms)`);
  assert.ok(runs <= 3, `${runs} runs for 12 calls`);
  await c.request(true);
  c.dispose();
  await c.request(); // settles at once after dispose
});

test('a failed run still settles its callers', async () => {
  const c = new Coalescer(async () => {
    throw new Error('server gone');
  }, 0);
  await c.request(true);
  assert.equal(c.runs, 1);
});
