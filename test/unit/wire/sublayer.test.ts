import { test } from 'node:test';
import assert from 'node:assert/strict';
import { L2SPEC_LEN, L2SPEC_S, SublayerRepr, sublayerSeqAt, sublayerSequencedAt, sublayerWordAt, writeSublayer } from '../../../src/wire/sublayer.js';

test('deconstruct: S bit is 0x40 of byte 0, sequence is the low 24 bits, other bits ignored', () => {
  const b = Buffer.from([0xbf, 0x12, 0x34, 0x56]); // x bits all set, S=0
  assert.equal(sublayerSequencedAt(b, 0), false);
  const c = Buffer.from([0x40, 0xff, 0xff, 0xff]);
  assert.equal(sublayerSequencedAt(c, 0), true);
  assert.equal(sublayerSeqAt(c, 0), 0xffffff);
  const d = Buffer.from([0xff, 0x00, 0x00, 0x07]); // all x bits + S
  assert.deepEqual(SublayerRepr.parse(d, 0), { sequenced: true, ns: 7 });
  assert.equal(sublayerWordAt(Buffer.from([0x40, 0, 0, 1]), 0), (L2SPEC_S | 1) >>> 0);
});

test('construct: Linux writes 0x40000000|ns when sequenced, else 0; exactly 4 bytes at the offset', () => {
  const b = Buffer.alloc(12, 0xa5);
  writeSublayer(b, 3, true, 0x0a0b0c);
  assert.deepEqual([...b], [0xa5, 0xa5, 0xa5, 0x40, 0x0a, 0x0b, 0x0c, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5]);
  writeSublayer(b, 3, false, 0x0a0b0c);
  assert.deepEqual([...b.subarray(2, 8)], [0xa5, 0, 0, 0, 0, 0xa5]);
  const e = Buffer.alloc(8, 0xa5);
  assert.equal(SublayerRepr.emit({ sequenced: true, ns: 0 }, e, 4), L2SPEC_LEN);
  assert.deepEqual([...e], [0xa5, 0xa5, 0xa5, 0xa5, 0x40, 0, 0, 0]);
  assert.throws(() => SublayerRepr.emit({ sequenced: true, ns: 0 }, e, 5), RangeError);
  assert.throws(() => SublayerRepr.parse(e, 6), RangeError);
});
