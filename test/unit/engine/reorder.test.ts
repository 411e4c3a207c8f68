/** The fixed-capacity reorder ring: ordering rule, wrap-around, copies, full/oversize refusal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReorderQueue } from '../../../src/engine/reorder.js';
import { Rng } from '../../../src/io/mem/fault-injector.js';

function contents(q: ReorderQueue): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  for (let i = 0; i < q.count; i++) {
    const s = q.slotAt(i);
    out.push([q.hasSeq[s] ? q.ns[s] : -1, q.pktLen[s], q.data.toString('latin1', q.offsetOf(s), q.offsetOf(s) + q.frameLen[s])]);
  }
  return out;
}

test('insertPos: before the first queued packet with a greater ns (plain compare), unsequenced at the tail', () => {
  const q = new ReorderQueue(8, 16);
  const put = (hasSeq: boolean, ns: number, tag: string) => {
    const f = Buffer.from(tag, 'latin1');
    q.insert(q.insertPos(hasSeq, ns), f, 0, f.length, hasSeq, ns, f.length + 8, 0);
  };
  put(true, 5, 'e');
  put(true, 3, 'c');
  put(false, 0, 'u');
  put(true, 4, 'd');
  put(true, 9, 'x');
  assert.deepEqual(contents(q).map((c) => c[2]), ['c', 'd', 'e', 'u', 'x']);
  // not wrap-aware: 0xFFFFFF sorts after 1 even though it comes before it in sequence space
  put(true, 0xffffff, 'w');
  put(true, 1, 'a');
  assert.deepEqual(contents(q).map((c) => c[2]), ['a', 'c', 'd', 'e', 'u', 'x', 'w']);
});

test('wrap-around of the ring: shifting at the head and inserting in the middle keep order and bytes', () => {
  const rng = new Rng(99);
  const q = new ReorderQueue(5, 8);
  const model: Array<[number, string]> = [];
  for (let step = 0; step < 5000; step++) {
    if (q.count > 0 && (q.count === q.capacity || rng.int(2) === 0)) {
      q.shift();
      model.shift();
    } else {
      const ns = rng.int(50);
      const tag = `n${ns}-${step % 100}`.slice(0, 8);
      const f = Buffer.from(tag, 'latin1');
      assert.ok(q.canQueue(f.length));
      const pos = q.insertPos(true, ns);
      q.insert(pos, f, 0, f.length, true, ns, 0, 0);
      let mpos = model.findIndex(([n]) => n > ns);
      if (mpos < 0) mpos = model.length;
      assert.equal(pos, mpos);
      model.splice(mpos, 0, [ns, tag]);
    }
    assert.deepEqual(contents(q).map((c) => [c[0], c[2]]), model);
  }
});

test('capacity and slot size limits; clear frees every slot; zero capacity never queues', () => {
  const q = new ReorderQueue(2, 4);
  const f = Buffer.from('abcd');
  assert.equal(q.canQueue(5), false, 'larger than a slot');
  q.insert(0, f, 0, 4, true, 1, 4, 0);
  q.insert(1, f, 0, 4, true, 2, 4, 0);
  assert.equal(q.canQueue(1), false, 'full');
  assert.equal(q.clear(), 2);
  assert.equal(q.count, 0);
  assert.equal(q.canQueue(4), true);
  assert.equal(new ReorderQueue().canQueue(0), false);
});
