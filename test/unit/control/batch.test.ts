/**
 * The daemon's `batch` op (Controller.batch) on a recording dataplane: lines
 * run in order, a line fails by its last request, stop_on_error stops after a
 * failed line, and consecutive session deletions reach the dataplane as one
 * removeSessions call (their interfaces in one rtnetlink request), with
 * unknown and repeated ids answered ENODEV one by one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Controller } from '../../../src/control/handlers.js';
import type { BatchRequest } from '../../../src/control/protocol.js';
import { SLOT_SIZE } from '../../../src/engine/stats.js';
import type { Dataplane } from '../../../src/io/types.js';

function recordingDataplane(): Dataplane & { calls: string[] } {
  let next = 1;
  const calls: string[] = [];
  const dp = {
    name: 'recording',
    stats: new Float64Array(SLOT_SIZE * 256),
    calls,
    async addTunnel() {
      return { statsBase: SLOT_SIZE * next++ };
    },
    async addSession(cfg: { ifname: string }) {
      return { statsBase: SLOT_SIZE * next++, ifname: cfg.ifname };
    },
    async removeSession(t: number, s: number) {
      calls.push(`rm ${t}/${s}`);
    },
    async removeTunnel(t: number) {
      calls.push(`rmt ${t}`);
    },
    async removeSessions(keys: ReadonlyArray<readonly [number, number]>) {
      calls.push(`rm* ${keys.map(([t, s]) => `${t}/${s}`).join(',')}`);
    },
    async close() {},
  } as unknown as Dataplane & { calls: string[] };
  return dp;
}

const tunnel: BatchRequest = {
  op: 'tunnel_create',
  attrs: { tunnel_id: 1, peer_tunnel_id: 1, encap: 'udp', local: '127.0.0.1', remote: '127.0.0.2', udp_sport: 1, udp_dport: 2, udp_csum: false, udp6_csum_tx: true, udp6_csum_rx: true },
};
const session = (s: number): BatchRequest => ({
  op: 'session_create',
  attrs: { tunnel_id: 1, session_id: s, peer_session_id: s, name: `ut${process.pid % 10000}x${s}`, l2spec_type: 'default', send_seq: false, recv_seq: false },
});
const del = (s: number): BatchRequest => ({ op: 'session_delete', attrs: { tunnel_id: 1, session_id: s } });

test('batch: consecutive session deletions go to the dataplane together; bad ones are answered one by one', async () => {
  const dp = recordingDataplane();
  const ctl = new Controller(dp);
  let r = await ctl.batch({ lines: [[tunnel], ...[1, 2, 3, 4, 5].map((s) => [session(s)])], stop_on_error: true });
  assert.ok(r.lines.every((l) => l.every((o) => o.ok)), JSON.stringify(r));
  assert.equal(ctl.counts().sessions, 5);

  r = await ctl.batch({ lines: [[del(1)], [del(2)], [del(9)], [del(2)], [del(3)]], stop_on_error: false });
  assert.deepEqual(
    r.lines.map((l) => (l[0].ok ? 'ok' : l[0].error.errno)),
    ['ok', 'ok', 'ENODEV', 'ENODEV', 'ok'],
  );
  assert.deepEqual(dp.calls, ['rm* 1/1,1/2,1/3'], 'one dataplane call for the three');
  assert.equal(ctl.counts().sessions, 2);

  // stop_on_error: the deletions before the failed line happen (together), nothing after it.
  dp.calls.length = 0;
  r = await ctl.batch({ lines: [[del(4)], [del(8)], [del(5)]], stop_on_error: true });
  assert.equal(r.lines.length, 2);
  assert.deepEqual(dp.calls, ['rm* 1/4']);
  assert.equal(ctl.counts().sessions, 1);

  // A failed create line stops the batch too; a line's status is its last request's.
  r = await ctl.batch({ lines: [[tunnel, session(6)], [session(6)], [session(7)]], stop_on_error: true });
  assert.deepEqual(r.lines.map((l) => l.map((o) => (o.ok ? 'ok' : o.error.errno))), [['EEXIST', 'ok'], ['EEXIST']]);
  assert.equal(ctl.counts().sessions, 2, 'session 7 was not created');
});
