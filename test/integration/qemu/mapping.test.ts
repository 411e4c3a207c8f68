/**
 * The ip-l2tp → QEMU `-netdev l2tpv3` option mapping (docs/protocol.md §6.1,
 * docs/qemu-interop.md) as pure functions: no root, no QEMU needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { qemuAsL2tpOptions, qemuArgs, qemuL2tpv3Options, type L2tpPeer } from '../lib/qemu.js';

const base: L2tpPeer = {
  encap: 'udp',
  local: '192.0.2.1',
  remote: '192.0.2.2',
  udpSport: 5000,
  udpDport: 6000,
  sessionId: 1000,
  peerSessionId: 2000,
};

describe('ip l2tp → QEMU l2tpv3 option mapping', () => {
  it("reproduces QEMU's documented Linux pairing (docs/protocol.md §6.1)", () => {
    // Linux: remote 4.3.2.1 local 1.2.3.4 encap udp udp_sport 16384 udp_dport 16384
    //        session_id 0xFFFFFFFF peer_session_id 0xFFFFFFFF (l2spec default)
    // QEMU:  udp,srcport=16384,dstport=16384,rxsession=0xffffffff,txsession=0xffffffff,counter
    const o = qemuL2tpv3Options({
      encap: 'udp',
      local: '1.2.3.4',
      remote: '4.3.2.1',
      udpSport: 16384,
      udpDport: 16384,
      sessionId: 0xffffffff,
      peerSessionId: 0xffffffff,
    });
    assert.equal(o, 'src=4.3.2.1,dst=1.2.3.4,udp=on,srcport=16384,dstport=16384,txsession=4294967295,rxsession=4294967295,counter=on');
  });

  it('swaps addresses and ports; txsession = session_id, rxsession = peer_session_id', () => {
    const o = qemuL2tpv3Options({ ...base, l2specType: 'none' });
    assert.equal(o, 'src=192.0.2.2,dst=192.0.2.1,udp=on,srcport=6000,dstport=5000,txsession=1000,rxsession=2000');
  });

  it('cookie → rxcookie, peer_cookie → txcookie; 8-byte cookies add cookie64=on', () => {
    const o4 = qemuL2tpv3Options({ ...base, cookie: 'a1b2c3d4', peerCookie: '0badf00d' });
    assert.match(o4, /,txcookie=0x0badf00d,rxcookie=0xa1b2c3d4,counter=on$/);
    assert.doesNotMatch(o4, /cookie64/);
    const o8 = qemuL2tpv3Options({ ...base, cookie: '0102030405060708', peerCookie: 'f0e0d0c0b0a09080', l2specType: 'none' });
    assert.match(o8, /,txcookie=0xf0e0d0c0b0a09080,rxcookie=0x0102030405060708,cookie64=on$/);
  });

  it('encap ip has no udp/ports; IPv6 adds ipv6=on', () => {
    const o = qemuL2tpv3Options({ ...base, encap: 'ip', local: '2001:db8::1', remote: '2001:db8::2' });
    assert.equal(o, 'src=2001:db8::2,dst=2001:db8::1,ipv6=on,txsession=1000,rxsession=2000,counter=on');
  });

  it('refuses what QEMU cannot express', () => {
    assert.throws(() => qemuL2tpv3Options({ ...base, cookie: 'a1b2c3d4' }), /both/);
    assert.throws(() => qemuL2tpv3Options({ ...base, cookie: 'a1b2c3d4', peerCookie: '0102030405060708' }), /length/);
    assert.throws(() => qemuL2tpv3Options({ ...base, cookie: 'a1b2', peerCookie: 'c3d4' }), /4 or 8/);
    assert.throws(() => qemuL2tpv3Options({ ...base, seq: 'both' }), /S bit/);
    assert.throws(() => qemuL2tpv3Options({ ...base, seq: 'recv' }), /S bit/);
    assert.throws(() => qemuL2tpv3Options({ ...base, udpDport: undefined }), /ports/);
    assert.throws(() => qemuL2tpv3Options({ ...base, remote: '2001:db8::2' }), /family/);
    assert.doesNotThrow(() => qemuL2tpv3Options({ ...base, seq: 'send' }));
  });

  it('the mirror (a QEMU standing in for ul2tp) is the exact inverse', () => {
    const p: L2tpPeer = { ...base, cookie: 'a1b2c3d4', peerCookie: '0badf00d' };
    const peer = new Map(qemuL2tpv3Options(p).split(',').map((kv) => kv.split('=') as [string, string]));
    const self = new Map(qemuAsL2tpOptions(p).split(',').map((kv) => kv.split('=') as [string, string]));
    for (const [a, b] of [
      ['src', 'dst'],
      ['srcport', 'dstport'],
      ['txsession', 'rxsession'],
      ['txcookie', 'rxcookie'],
    ]) {
      assert.equal(peer.get(a), self.get(b), `${a} of one side = ${b} of the other`);
      assert.equal(peer.get(b), self.get(a));
    }
  });

  it('builds a guest-less QEMU command line with tap and l2tpv3 on one hub', () => {
    const a = qemuArgs('qt0', 'src=1.1.1.1');
    assert.deepEqual(a.slice(0, 2), ['-M', 'none']);
    assert.ok(a.includes('tap,id=t0,ifname=qt0,script=no,downscript=no'));
    assert.ok(a.includes('l2tpv3,id=l0,src=1.1.1.1'));
    assert.ok(a.includes('hubport,id=h0,hubid=0,netdev=t0'));
    assert.ok(a.includes('hubport,id=h1,hubid=0,netdev=l0'));
  });
});
