/**
 * TxOffload on loopback (no root needed): super-frames, partial checksums and garbage placed
 * in its input slots leave as ordinary L2TP packets (own header, cookie, consecutive
 * sequence numbers, valid inner frames), with sendmmsg and with UDP GSO; malformed input is
 * counted in tx_errors and never throws.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import type { SessionConfig, TunnelConfig } from '../../../src/engine/config.js';
import { HEADROOM } from '../../../src/engine/layout.js';
import { Session } from '../../../src/engine/session.js';
import { SLOT_SIZE, TX_ERRORS, TX_PACKETS } from '../../../src/engine/stats.js';
import { Tunnel } from '../../../src/engine/tunnel.js';
import { closeFd } from '../../../src/io/koffi/epoll.js';
import { enableUdpGro, openUdpTunnelSocket } from '../../../src/io/koffi/udp.js';
import { Batch, recvBatch } from '../../../src/io/koffi/batch.js';
import { koffiAvailable, MSG_DONTWAIT } from '../../../src/io/koffi/libc.js';
import { Table } from '../../../src/engine/table.js';
import { UdpSocket } from '../../../src/io/koffi/devices.js';
import { GsoSender } from '../../../src/io/koffi/gso.js';
import { Pump, TunnelPort } from '../../../src/io/pump.js';
import { OFFLOAD_SLOT_BYTES, OFFLOAD_SLOTS, TxOffload } from '../../../src/io/stages/offload.js';
import { emitVnet, GSO_NONE, GSO_TCPV4, GSO_TCPV6, VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from '../../../src/io/offload/vnet.js';
import { bytes, parseFrame, refSum, tcpFrame, TS_OPT } from '../../unit/offload/frames.js';

/** The offload stage in a pump sending on UDP socket `fd` (with UDP GSO when `gso`), as a koffi worker runs it. */
function offloadRig(s: Session, fd: number, gso: boolean) {
  const g = gso ? new GsoSender() : null;
  s.tunnel.ctx = new TunnelPort(new UdpSocket(fd, g), Buffer.alloc(0));
  const io = new Batch(OFFLOAD_SLOTS, OFFLOAD_SLOT_BYTES);
  const txo = new TxOffload(io);
  new Pump(new Table(), { offload: txo });
  return { txo, io, gsoSends: () => g?.sends ?? 0 };
}

const skip = koffiAvailable() ? '' : 'koffi not available';
const PORT = 20000 + (process.pid % 20000);

function udpFrame(n: number): Buffer {
  const f = Buffer.alloc(14 + 20 + 8 + n);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(28 + n, 16);
  f[22] = 64;
  f[23] = 17;
  f.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
  f.writeUInt16BE(~refSum(f.subarray(14, 34)) & 0xffff, 24);
  f.writeUInt16BE(1234, 34);
  f.writeUInt16BE(5678, 36);
  f.writeUInt16BE(8 + n, 38);
  bytes(n, 5).copy(f, 42);
  f.writeUInt16BE(refSum(f.subarray(26, 34), 17 + 8 + n), 40); // partial: pseudo-header sum
  return f;
}

describe('TxOffload on loopback', { skip: skip || undefined }, () => {
  let rx: Socket;
  const got: Buffer[] = [];
  before(async () => {
    rx = createSocket('udp4');
    rx.on('message', (m) => got.push(m));
    await new Promise<void>((r) => rx.bind(PORT + 1, '127.0.0.1', () => r()));
  });
  after(() => rx?.close());

  for (const csum of [false, true]) {
    it(`segments and sends ordinary L2TP packets (${csum ? 'UDP checksums: UDP GSO' : 'no UDP checksums: sendmmsg'})`, async () => {
      got.length = 0;
      const stats = new Float64Array(2 * SLOT_SIZE);
      const tcfg: TunnelConfig = {
        tunnelId: 1, peerTunnelId: 2, encap: 'udp', family: 4, local: '127.0.0.1', remote: '127.0.0.1',
        udpSport: PORT + (csum ? 2 : 3), udpDport: PORT + 1, udpCsum: csum, udp6CsumTx: true, udp6CsumRx: true,
      };
      const scfg: SessionConfig = {
        tunnelId: 1, sessionId: 10, peerSessionId: 20, ifname: '', cookie: 'a1a2a3a4', peerCookie: '',
        l2specType: 'default', sendSeq: true, recvSeq: false, reorderTimeoutMs: 0,
      };
      const t = new Tunnel(tcfg, stats, 0);
      const s = new Session(scfg, t, stats, SLOT_SIZE);
      const fd = openUdpTunnelSocket(tcfg);
      const { txo, io, gsoSends } = offloadRig(s, fd, csum);
      const put = (j: number, vnet: Buffer, frame: Buffer, cut = frame.length) => {
        const at = j * io.slotSize + HEADROOM;
        vnet.copy(io.buf, at);
        frame.copy(io.buf, at + VNET_HDR_LEN, 0, cut);
        io.off[j] = HEADROOM;
        io.len[j] = VNET_HDR_LEN + cut;
      };
      const vnet = (flags: number, gso: number, size: number, start = 0, off = 0) => {
        const v = Buffer.alloc(10);
        emitVnet(v, 0, flags, gso, 0, size, start, off);
        return v;
      };
      try {
        const p4 = bytes(30000, 1);
        const p6 = bytes(20000, 2);
        put(0, vnet(0, GSO_NONE, 0), udpFrame(1), 10); // runt (< 14 bytes): an error
        put(1, vnet(VNET_F_NEEDS_CSUM, GSO_NONE, 0, 34, 6), udpFrame(300));
        put(2, vnet(VNET_F_NEEDS_CSUM, GSO_TCPV4, 1448, 34, 16), tcpFrame({ payload: p4, options: TS_OPT, csum: 'pseudo', flags: 0x18 }));
        put(3, vnet(0, 0x33, 1000), udpFrame(50)); // unknown gso_type: an error
        put(4, vnet(VNET_F_NEEDS_CSUM, GSO_TCPV6, 1428, 54, 16), tcpFrame({ v6: true, payload: p6, csum: 'pseudo', seq: 5 }));
        put(5, vnet(VNET_F_NEEDS_CSUM, GSO_NONE, 0, 34, 6), udpFrame(1000));
        txo.run(s, 6);
        const n4 = Math.ceil(30000 / 1448);
        const n6 = Math.ceil(20000 / 1428);
        const want = 1 + n4 + n6 + 1;
        for (let i = 0; i < 100 && got.length < want; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(got.length, want);
        assert.equal(stats[SLOT_SIZE + TX_PACKETS], want);
        assert.equal(stats[SLOT_SIZE + TX_ERRORS], 2, 'runt and unknown gso_type counted');
        if (csum) assert.ok(gsoSends() >= 2, `GSO sends: ${gsoSends()}`);
        const pay4: Buffer[] = [];
        const pay6: Buffer[] = [];
        got.forEach((m, i) => {
          assert.equal(m.readUInt32BE(0), 0x00030000);
          assert.equal(m.readUInt32BE(4), 20, 'peer session id');
          assert.equal(m.readUInt32BE(8), 0xa1a2a3a4, 'cookie');
          assert.equal(m.readUInt32BE(12), 0x40000000 | i, 'consecutive sequence numbers');
          const f = m.subarray(16);
          if (f.readUInt16BE(12) === 0x0800 && f[23] === 17) {
            const udpLen = f.readUInt16BE(38);
            assert.equal(refSum(f.subarray(34, 34 + udpLen), refSum(f.subarray(26, 34), 17 + udpLen)), 0xffff, 'UDP checksum completed');
            return;
          }
          const p = parseFrame(Buffer.from(f));
          assert.ok(p.tcpOk && p.ipOk, `packet ${i}: inner checksums`);
          (p.v6 ? pay6 : pay4).push(p.payload);
        });
        assert.ok(Buffer.concat(pay4).equals(p4));
        assert.ok(Buffer.concat(pay6).equals(p6));
      } finally {
        closeFd(fd);
      }
    });
  }

  it('a UDP_GRO socket reads GSO sends back coalesced (gso[i] set); cut at gso[i] they are the packets sent', async () => {
    const stats = new Float64Array(2 * SLOT_SIZE);
    const cfg = (local: number, remote: number): TunnelConfig => ({
      tunnelId: 1, peerTunnelId: 2, encap: 'udp', family: 4, local: '127.0.0.1', remote: '127.0.0.1',
      udpSport: local, udpDport: remote, udpCsum: true, udp6CsumTx: true, udp6CsumRx: true,
    });
    const scfg: SessionConfig = {
      tunnelId: 1, sessionId: 10, peerSessionId: 20, ifname: '', cookie: '', peerCookie: '',
      l2specType: 'default', sendSeq: true, recvSeq: false, reorderTimeoutMs: 0,
    };
    const s = new Session(scfg, new Tunnel(cfg(PORT + 6, PORT + 5), stats, 0), stats, SLOT_SIZE);
    const tx = openUdpTunnelSocket(cfg(PORT + 6, PORT + 5));
    const rx = openUdpTunnelSocket(cfg(PORT + 5, PORT + 6));
    try {
      assert.ok(enableUdpGro(rx), 'UDP_GRO accepted');
      const { txo, io, gsoSends } = offloadRig(s, tx, true);
      const payload = bytes(40000, 3);
      const at = HEADROOM;
      emitVnet(io.buf, at, VNET_F_NEEDS_CSUM, GSO_TCPV4, 0, 1448, 34, 16);
      const f = tcpFrame({ payload, options: TS_OPT, csum: 'pseudo', flags: 0x18 });
      f.copy(io.buf, at + VNET_HDR_LEN);
      io.off[0] = HEADROOM;
      io.len[0] = VNET_HDR_LEN + f.length;
      txo.run(s, 1);
      const want = Math.ceil(40000 / 1448);
      assert.equal(stats[SLOT_SIZE + TX_PACKETS], want);
      assert.ok(gsoSends() >= 1, 'sent with UDP GSO');
      const b = new Batch({ n: 8, slotSize: 65536 + HEADROOM, cmsg: true });
      const pkts: Buffer[] = [];
      let coalesced = 0;
      for (let tries = 0; tries < 100 && pkts.length < want; tries++) {
        const n = recvBatch(rx, b, 8, HEADROOM, MSG_DONTWAIT);
        if (n <= 0) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        for (let j = 0; j < n; j++) {
          const base = j * b.slotSize + b.off[j];
          const len = b.len[j];
          const seg = b.gso[j];
          if (seg !== 0 && seg < len) coalesced++;
          const step = seg === 0 ? len : seg;
          for (let o = 0; o < len; o += step) pkts.push(Buffer.from(b.buf.subarray(base + o, base + Math.min(len, o + step))));
        }
      }
      assert.equal(pkts.length, want);
      assert.ok(coalesced >= 1, 'at least one slot held several datagrams');
      const data: Buffer[] = [];
      pkts.forEach((m, i) => {
        assert.equal(m.readUInt32BE(0), 0x00030000);
        assert.equal(m.readUInt32BE(4), 20, 'peer session id');
        assert.equal(m.readUInt32BE(8), 0x40000000 | i, 'consecutive sequence numbers');
        const p = parseFrame(Buffer.from(m.subarray(12)));
        assert.ok(p.tcpOk && p.ipOk, `packet ${i}: inner checksums`);
        data.push(p.payload);
      });
      assert.ok(Buffer.concat(data).equals(payload));
    } finally {
      closeFd(tx);
      closeFd(rx);
    }
  });

  it('fuzzed slots never throw; every frame is sent or counted as an error', () => {
    const stats = new Float64Array(2 * SLOT_SIZE);
    const tcfg: TunnelConfig = {
      tunnelId: 1, peerTunnelId: 2, encap: 'udp', family: 4, local: '127.0.0.1', remote: '127.0.0.1',
      udpSport: PORT + 4, udpDport: PORT + 1, udpCsum: true, udp6CsumTx: true, udp6CsumRx: true,
    };
    const scfg: SessionConfig = {
      tunnelId: 1, sessionId: 10, peerSessionId: 20, ifname: '', cookie: '', peerCookie: '',
      l2specType: 'none', sendSeq: false, recvSeq: false, reorderTimeoutMs: 0,
    };
    const s = new Session(scfg, new Tunnel(tcfg, stats, 0), stats, SLOT_SIZE);
    const fd = openUdpTunnelSocket(tcfg);
    const { txo, io } = offloadRig(s, fd, true);
    let x = 12345;
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) >>> 0;
      return (x >>> 8) % n;
    };
    const base = [tcpFrame({ payload: bytes(5000), csum: 'pseudo' }), tcpFrame({ v6: true, payload: bytes(3000), csum: 'pseudo' }), udpFrame(100)];
    try {
      for (let round = 0; round < 40; round++) {
        const n = 1 + rnd(64);
        for (let j = 0; j < n; j++) {
          const f = Buffer.from(base[rnd(3)]);
          for (let k = rnd(4); k > 0; k--) f[rnd(60)] = rnd(256);
          const at = j * io.slotSize + HEADROOM;
          for (let k = 0; k < 10; k++) io.buf[at + k] = rnd(3) === 0 ? rnd(256) : 0;
          io.buf[at + 1] = [0, 1, 4, 3, 5, rnd(256)][rnd(6)]!;
          io.buf.writeUInt16LE(rnd(2000), at + 4);
          const len = rnd(5) === 0 ? rnd(f.length) : f.length;
          f.copy(io.buf, at + 10, 0, len);
          io.off[j] = HEADROOM;
          io.len[j] = 10 + len;
        }
        txo.run(s, n);
      }
      assert.ok(stats[SLOT_SIZE + TX_PACKETS] > 100);
      assert.ok(stats[SLOT_SIZE + TX_ERRORS] > 10);
      assert.equal(txo.malformed, stats[SLOT_SIZE + TX_ERRORS]);
    } finally {
      closeFd(fd);
    }
  });
});
