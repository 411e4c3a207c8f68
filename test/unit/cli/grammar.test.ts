import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getAddr, getU16, getU32, matches, parseCookie, strtoul } from '../../../src/api/grammar.js';
import { L2tpError } from '../../../src/errors.js';

test('strtoul base 0: decimal, hex, octal, sign, whitespace, end pointer', () => {
  assert.deepEqual(strtoul('123'), { value: 123n, end: 3, overflow: false });
  assert.deepEqual(strtoul('0x1F'), { value: 31n, end: 4, overflow: false });
  assert.deepEqual(strtoul('0X1f'), { value: 31n, end: 4, overflow: false });
  assert.deepEqual(strtoul('010'), { value: 8n, end: 3, overflow: false });
  assert.deepEqual(strtoul('08'), { value: 0n, end: 1, overflow: false }, '8 is not an octal digit');
  assert.deepEqual(strtoul('0x'), { value: 0n, end: 1, overflow: false }, '"0x" without hex digit parses the 0');
  assert.deepEqual(strtoul('0xg'), { value: 0n, end: 1, overflow: false });
  assert.deepEqual(strtoul(' \t+7'), { value: 7n, end: 4, overflow: false });
  assert.deepEqual(strtoul('-1'), { value: (1n << 64n) - 1n, end: 2, overflow: false });
  assert.deepEqual(strtoul('-0'), { value: 0n, end: 2, overflow: false });
  assert.deepEqual(strtoul(''), { value: 0n, end: 0, overflow: false });
  assert.deepEqual(strtoul('+'), { value: 0n, end: 0, overflow: false });
  assert.deepEqual(strtoul('  '), { value: 0n, end: 0, overflow: false });
  assert.deepEqual(strtoul('18446744073709551616'), { value: (1n << 64n) - 1n, end: 20, overflow: true });
  assert.deepEqual(strtoul('1.2', 2), { value: 2n, end: 3, overflow: false });
});

test('get_u32: whole string, at most 2^32-1, strtoul quirks', () => {
  const ok: Array<[string, number]> = [
    ['0', 0],
    ['1', 1],
    ['010', 8],
    ['0x10', 16],
    ['0XfF', 255],
    [' 5', 5],
    ['\t5', 5],
    ['+5', 5],
    ['-0', 0],
    ['4294967295', 4294967295],
    ['0xffffffff', 4294967295],
    ['037777777777', 4294967295],
  ];
  for (const [s, v] of ok) assert.equal(getU32(s), v, JSON.stringify(s));
  const bad = ['', 'abc', '08', '09', '0x', '4294967296', '0x100000000', '-1', '-5', '5 ', '5x', '1e3', '1.0', '++5', ' ', '99999999999999999999999'];
  for (const s of bad) assert.equal(getU32(s), null, JSON.stringify(s));
});

test('get_u16: at most 65535', () => {
  assert.equal(getU16('65535'), 65535);
  assert.equal(getU16('0xffff'), 65535);
  assert.equal(getU16('0'), 0);
  assert.equal(getU16('017'), 15);
  assert.equal(getU16('65536'), null);
  assert.equal(getU16('70000'), null);
  assert.equal(getU16('-1'), null);
});

test('matches: non-empty prefix', () => {
  assert.equal(matches('h', 'help'), true);
  assert.equal(matches('help', 'help'), true);
  assert.equal(matches('helpx', 'help'), false);
  assert.equal(matches('', 'help'), false);
  assert.equal(matches('H', 'help'), false);
});

test('get_addr: IPv4 parts by strtoul base 0, IPv6 by inet_pton, any/all/default unset', () => {
  const ok: Array<[string, number, string]> = [
    ['1.2.3.4', 4, '1.2.3.4'],
    ['10.1', 4, '10.1.0.0'],
    ['10', 4, '10.0.0.0'],
    ['0x0a.1.2.3', 4, '10.1.2.3'],
    ['010.0.0.1', 4, '8.0.0.1'],
    [' 1.2.3.4', 4, '1.2.3.4'],
    ['1.+2.3.4', 4, '1.2.3.4'],
    ['1.-0.2.3', 4, '1.0.2.3'], // strtoul negates modulo 2^64: -0 is 0
    ['255.255.255.255', 4, '255.255.255.255'],
    ['2001:db8::1', 6, '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', 6, '2001:db8::1'],
    ['::', 6, '::'],
    ['::1', 6, '::1'],
    ['::ffff:1.2.3.4', 6, '::ffff:1.2.3.4'],
    ['1:0:0:2:0:0:0:3', 6, '1:0:0:2::3'],
    ['1:0:0:2:0:0:3:4', 6, '1::2:0:0:3:4'],
    ['fe80:0000:0000:0000:0000:0000:0000:0001', 6, 'fe80::1'],
    ['1:2:3:4:5:6:7::', 6, '1:2:3:4:5:6:7:0'],
  ];
  for (const [s, fam, text] of ok) assert.deepEqual(getAddr(s), { family: fam, text }, s);
  for (const s of ['any', 'all', 'default']) assert.deepEqual(getAddr(s), { family: 0, text: '' }, s);
  const bad = ['1.2.3.256', '1.2.3.4.5', '1.2.3.', '.1.2.3', '1..2', 'abc', '', '1.2.3.4/24', '4294967297', '1.2.3.08',
    'fe80::1%eth0', '1:2:3:4:5:6:7:8:9', '1::2::3', ':1', '1:', '12345::', '::1.2.3', '::01.2.3.4', '[::1]', 'ANY', 'localhost'];
  for (const s of bad) assert.equal(getAddr(s), null, s);
});

test('cookie: the length is checked before the digits', () => {
  assert.equal(parseCookie('DEADBEEF'), 'deadbeef');
  assert.equal(parseCookie('0102030405060708'), '0102030405060708');
  const err = (s: string): string => {
    try {
      parseCookie(s);
    } catch (e) {
      assert.ok(e instanceof L2tpError);
      assert.equal(e.code, 'BAD_ARG');
      return e.message;
    }
    assert.fail(`cookie ${s} accepted`);
  };
  assert.equal(err('0102'), 'Error: argument "0102" is wrong: cookie must be either 8 or 16 hex digits\n');
  assert.equal(err('zz02'), 'Error: argument "zz02" is wrong: cookie must be either 8 or 16 hex digits\n');
  assert.equal(err('0102030405'), 'Error: argument "0102030405" is wrong: cookie must be either 8 or 16 hex digits\n');
  assert.equal(err('zz020304'), 'Error: argument "zz020304" is wrong: cookie must be a hex string\n');
  assert.equal(err('01020304050607g8'), 'Error: argument "01020304050607g8" is wrong: cookie must be a hex string\n');
  // strlen counts bytes: 7 characters, 8 bytes in UTF-8.
  assert.equal(err('\u00e9abcdef'), 'Error: argument "\u00e9abcdef" is wrong: cookie must be a hex string\n');
});
