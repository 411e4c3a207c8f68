/**
 * The pump's send policy and delivery, over fake devices: backpressure waits up to
 * SEND_RETRY_LIMIT times, other errors drop the packet at the head, partial sends
 * resume, every packet is counted once (tx_packets or tx_errors); a failed device
 * write counts rx_dev_drops.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEADROOM } from '../../../src/engine/layout.js';
import { RX_DEV_DROPS, TX_BYTES, TX_ERRORS, TX_PACKETS } from '../../../src/engine/stats.js';
import { CAP_VNET_HDR, EAGAIN, type FrameDevice, type PacketBatch, type TunnelSocket } from '../../../src/io/device.js';
import { Coalescer } from '../../../src/io/offload/gro.js';
import { MemBatch } from '../../../src/io/mem/link.js';
import { Pump, SEND_RETRY_LIMIT, SessionPort, TunnelPort } from '../../../src/io/pump.js';
import { sessionCfg, tunnelCfg } from './helpers.js';
import { Table } from '../../../src/engine/table.js';
import { newSlot } from '../../../src/engine/stats.js';

/** A socket that answers from a script of results (count accepted or -errno), then accepts all. */
class ScriptedSocket implements TunnelSocket {
  readonly caps = 0;
  waits = 0;
  sent: number[] = [];
  constructor(private readonly script: number[]) {}
  send(b: PacketBatch, first: number, n: number): number {
    const r = this.script.length > 0 ? this.script.shift()! : n;
    const k = r > 0 ? Math.min(r, n) : r;
    for (let j = first; j < first + (k > 0 ? k : 0); j++) this.sent.push(b.len[j]);
    return k;
  }
  waitWritable(): void {
    this.waits++;
  }
}

class NullDevice implements FrameDevice {
  readonly caps = 0;
  readonly id = -1;
  writes = 0;
  constructor(private readonly fail: boolean) {}
  read(): number {
    return 0;
  }
  write(_b: Buffer, _o: number, len: number): number {
    this.writes++;
    return this.fail ? -5 : len;
  }
}

function rig(script: number[]) {
  const table = new Table();
  const t = table.addTunnel(tunnelCfg(), newSlot(), 0);
  const s = table.addSession(sessionCfg({ tunnelId: t.tunnelId }), newSlot(), 0);
  const sock = new ScriptedSocket(script);
  t.ctx = new TunnelPort(sock, Buffer.alloc(0));
  s.ctx = new SessionPort(new NullDevice(true));
  const pump = new Pump(table);
  const b = new MemBatch(8, HEADROOM + 2048);
  const send = (n: number): void => {
    for (let j = 0; j < n; j++) {
      b.off[j] = HEADROOM;
      b.len[j] = 60 + j;
    }
    pump.txFrames(s, b, 0, n);
  };
  return { s, sock, pump, send };
}

test('pump send: partial sends resume; every packet counted once', () => {
  const r = rig([2, 1]);
  r.send(5);
  assert.equal(r.s.stats[r.s.base + TX_PACKETS], 5);
  assert.equal(r.s.stats[r.s.base + TX_ERRORS], 0);
  assert.equal(r.sock.sent.length, 5);
  assert.equal(r.s.stats[r.s.base + TX_BYTES], r.sock.sent.reduce((a, x) => a + x, 0));
});

test('pump send: backpressure waits and retries; beyond SEND_RETRY_LIMIT the head packet is a tx error', () => {
  const r = rig([-EAGAIN, -EAGAIN, 3]);
  r.send(3);
  assert.equal(r.sock.waits, 2);
  assert.equal(r.s.stats[r.s.base + TX_PACKETS], 3);
  const stuck = rig(new Array<number>(SEND_RETRY_LIMIT + 1).fill(-EAGAIN));
  stuck.send(2);
  assert.equal(stuck.sock.waits, SEND_RETRY_LIMIT);
  assert.equal(stuck.s.stats[stuck.s.base + TX_ERRORS], 1, 'the head packet gave up');
  assert.equal(stuck.s.stats[stuck.s.base + TX_PACKETS], 1, 'the next one went out');
  assert.equal(stuck.s.tunnel.stats[stuck.s.tunnel.base + TX_ERRORS], 1, 'counted in the tunnel too');
});

test('pump send: a hard error drops one packet and the rest are sent', () => {
  const r = rig([-101 /* ENETUNREACH */]);
  r.send(4);
  assert.equal(r.sock.waits, 0);
  assert.equal(r.s.stats[r.s.base + TX_ERRORS], 1);
  assert.equal(r.s.stats[r.s.base + TX_PACKETS], 3);
});

test('pump deliver: a failed device write counts rx_dev_drops; no port counts too', () => {
  const r = rig([]);
  const frame = Buffer.alloc(60);
  r.pump.deliver(r.s, frame, 0, 60);
  assert.equal(r.s.stats[r.s.base + RX_DEV_DROPS], 1);
  r.s.ctx = null;
  r.pump.deliver(r.s, frame, 0, 60);
  assert.equal(r.s.stats[r.s.base + RX_DEV_DROPS], 2);
});

test('pump with a queuing coalescer: frames for a virtio_net_hdr TAP are written at the end of the receive batch, and at idle()', () => {
  const table = new Table();
  const t = table.addTunnel(tunnelCfg(), newSlot(), 0);
  const s = table.addSession(sessionCfg({ tunnelId: t.tunnelId }), newSlot(), 0);
  s.ctx = new SessionPort({ caps: CAP_VNET_HDR, id: 7, read: () => 0, write: () => -22 });
  const written: number[] = [];
  let frames = 0;
  const queue = {
    get queued() {
      return frames;
    },
    address: () => 0,
    begin: () => void frames++,
    piece: () => {},
    sync: () => {
      written.push(frames);
      frames = 0;
    },
  };
  const co = new Coalescer(() => -22, new Float64Array(4), 1, 2, undefined, 0, 0, queue);
  const pump = new Pump(table, { coalesce: co });
  const slab = Buffer.alloc(4096);
  pump.rxSlab = slab;
  slab.writeUInt16BE(0x0806, 12 + 100); // an ARP frame at 100: not TCP, never held
  pump.deliver(s, slab, 100, 60);
  pump.deliver(s, slab, 100, 60);
  assert.equal(co.held, 0);
  assert.deepEqual(written, [], 'queued, not yet written');
  pump.rxBatchDone();
  assert.deepEqual(written, [2], 'written at the end of the receive batch');
  pump.deliver(s, Buffer.from(slab), 100, 60); // e.g. a reorder-queue release
  pump.idle(pump.clock(), false);
  assert.deepEqual(written, [2, 1], 'and at the end of the wake-up');
});

test("the pump's clock is monotonic with sub-millisecond resolution, not the wall clock", () => {
  // Deadlines (impairment delays, reorder timeouts) are kept on it: with Date.now() a packet
  // read at x.9 ms was stamped x.0 and a delayed one left up to 1 ms early.
  const pump = new Pump(new Table());
  const times: number[] = [];
  const until = performance.now() + 5;
  while (performance.now() < until) times.push(pump.clock());
  assert.ok(times.every((t, i) => i === 0 || t >= times[i - 1]), 'never goes back');
  assert.ok(times.some((t) => !Number.isInteger(t)), 'finer than 1 ms');
  assert.ok(Math.abs(times[0] - Date.now()) > 1e9, 'not the wall clock (its steps must not move deadlines)');
});
