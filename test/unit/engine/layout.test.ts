import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rxLayout, txLayout, MAX_HDR_LEN, HEADROOM } from '../../../src/engine/layout.js';

test('hdr_len for every encap × cookie × l2spec (docs/protocol.md §3.4 table)', () => {
  const rows: Array<['udp' | 'ip', number, 'none' | 'default', number]> = [
    ['udp', 0, 'default', 12], ['udp', 0, 'none', 8], ['udp', 4, 'default', 16], ['udp', 4, 'none', 12],
    ['udp', 8, 'default', 20], ['udp', 8, 'none', 16], ['ip', 0, 'default', 8], ['ip', 0, 'none', 4],
    ['ip', 4, 'default', 12], ['ip', 4, 'none', 8], ['ip', 8, 'default', 16], ['ip', 8, 'none', 12],
  ];
  for (const [e, c, l, h] of rows) {
    const t = txLayout(e, c, l);
    assert.equal(t.hdrLen, h, `${e} ${c} ${l}`);
    assert.equal(t.cookieOff, e === 'udp' ? 8 : 4);
    assert.equal(t.l2specOff, l === 'default' ? t.cookieOff + c : -1);
    assert.deepEqual(rxLayout(e, c, l), t);
    assert.ok(h <= MAX_HDR_LEN);
  }
  assert.equal(MAX_HDR_LEN, 20);
  assert.equal(HEADROOM, 32);
});
