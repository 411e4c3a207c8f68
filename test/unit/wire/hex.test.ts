import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToHex, formatHexDump, hexDumpToBytes, hexToBytes, isHex } from '../../../src/wire/hex.js';

test('hexToBytes: two digits per byte, left to right, no byte-order conversion (docs/protocol.md §1.4)', () => {
  assert.deepEqual([...hexToBytes('0102030405060708')], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...hexToBytes('DEADBEEF')], [0xde, 0xad, 0xbe, 0xef]);
  assert.deepEqual([...hexToBytes('a1B2c3D4')], [0xa1, 0xb2, 0xc3, 0xd4]);
  assert.equal(hexToBytes('').length, 0);
});

test('hexToBytes rejects odd length and non-hex digits', () => {
  for (const bad of ['abc', 'zz', '0x12', '12 34', 'g0']) assert.throws(() => hexToBytes(bad), RangeError, bad);
  assert.equal(isHex('abc'), false);
  assert.equal(isHex('ABCD'), true);
});

test('bytesToHex prints lowercase, honours offset and length', () => {
  const b = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0a, 0x00]);
  assert.equal(bytesToHex(b), 'deadbeef0a00');
  assert.equal(bytesToHex(b, 1, 3), 'adbeef');
  assert.equal(bytesToHex(b, 4), '0a00');
  assert.equal(bytesToHex(hexToBytes('DEADBEEF')), 'deadbeef');
});

test('hexDumpToBytes skips offsets, comments and separators', () => {
  const text = '# comment\n0000  45 00 | 00 4e  # trailing\n0010  c0 00\n  de ad be ef\n';
  assert.deepEqual([...hexDumpToBytes(text)], [0x45, 0, 0, 0x4e, 0xc0, 0, 0xde, 0xad, 0xbe, 0xef]);
  assert.throws(() => hexDumpToBytes('0000  4'), RangeError);
  assert.equal(formatHexDump(Buffer.from([1, 2, 3])), '0000  01 02 03');
});
