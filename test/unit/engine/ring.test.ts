/** The FIFO ring's index arithmetic: slots wrap at capacity, push/shift keep FIFO order, clear restarts at slot 0. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ring } from '../../../src/engine/ring.js';
import { Rng } from '../../../src/io/mem/fault-injector.js';

test('push hands out slots in order and wraps at capacity; shift(n) advances the head across the wrap', () => {
  const r = new Ring(4);
  assert.deepEqual([r.push(), r.push(), r.push()], [0, 1, 2]);
  r.shift(2);
  assert.equal(r.head, 2);
  assert.deepEqual([r.push(), r.push(), r.push()], [3, 0, 1], 'tail wraps to slot 0');
  assert.equal(r.full, true);
  assert.deepEqual([0, 1, 2, 3].map((i) => r.slot(i)), [2, 3, 0, 1]);
  r.shift(3);
  assert.equal(r.head, 1, 'head wraps too');
  assert.equal(r.count, 1);
  r.clear();
  assert.equal(r.head, 0);
  assert.equal(r.count, 0);
  assert.equal(r.push(), 0);
});

test('against an array model: every slot holds the value pushed into it, in FIFO order, never two live entries in one slot', () => {
  const rng = new Rng(7);
  const cap = 5;
  const r = new Ring(cap);
  const store = new Int32Array(cap);
  const model: number[] = [];
  for (let step = 0; step < 5000; step++) {
    if (r.count > 0 && (r.full || rng.int(2) === 0)) {
      const n = 1 + rng.int(r.count);
      r.shift(n);
      model.splice(0, n);
    } else {
      store[r.push()] = step;
      model.push(step);
    }
    assert.equal(r.count, model.length);
    assert.equal(r.full, model.length === cap);
    const seen = Array.from({ length: r.count }, (_, i) => store[r.slot(i)]);
    assert.deepEqual(seen, model);
    assert.ok(r.head >= 0 && r.head < cap);
  }
});
