/**
 * native-free's tunnel socket (node:dgram, connected) against a peer whose port
 * is closed (QEMU not started yet, a peer daemon down): the ICMP port-unreachable
 * error queued on the socket by one datagram is returned by the next send, which
 * then does not go out. dgram reports that only in the completion callback; the
 * socket must hand it to its LateFailures sink (the pump counts a tx error), else
 * a sequenced session shows a gap in its numbers with tx_errors 0 (seen in the
 * QEMU interop test's "seq send towards QEMU" on this backend).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import type { Session } from '../../../src/engine/session.js';
import type { LateFailures, PacketBatch } from '../../../src/io/device.js';
import { DgramSocket } from '../../../native-free/devices.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function closedPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(r));
  return port;
}

test('a datagram the connected socket refuses after an ICMP error reaches the LateFailures sink with its session', async () => {
  const port = await closedPort();
  const sock = dgram.createSocket('udp4');
  sock.on('error', () => {}); // the receive side reports ECONNREFUSED too (the dataplane logs it)
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  await new Promise<void>((r, j) => sock.connect(port, '127.0.0.1', (e?: Error) => (e ? j(e) : r())));
  const failed: Session[] = [];
  const sink: LateFailures = { sendFailed: (s) => failed.push(s) };
  const owner = { ctx: {}, tunnel: { ctx: {} } } as unknown as Session; // a live session of a live tunnel
  const ds = new DgramSocket(sock, sink);
  const b: PacketBatch = { n: 1, slotSize: 64, buf: Buffer.alloc(64, 0xab), off: new Uint32Array(1), len: new Uint32Array([32]) };
  try {
    // Each send is accepted. On loopback the ICMP error is queued during the first
    // send of a pair, so the second one (same tick: before the receive path could
    // take the error) meets it.
    for (let k = 0; k < 6; k++) {
      assert.equal(ds.send(b, 0, 1, owner), 1, 'accepted');
      assert.equal(ds.send(b, 0, 1, owner), 1, 'accepted');
      await sleep(20);
    }
    assert.ok(failed.length >= 2, `late failures reported: ${failed.length} of 12`);
    assert.ok(failed.every((s) => s === owner), 'with the session that sent them');
  } finally {
    sock.close();
  }
});
