import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient, connectDaemon, isDaemonReply, request } from '../../../src/control/client.js';
import { PROTOCOL_VERSION } from '../../../src/control/protocol.js';
import { rejection, serveLines, type LineServer } from '../../../support/fake-daemon.js';

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), `ul2tp-client-${process.pid}-`));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A server whose reaction to each request is `onLine`. */
function serve(name: string, onLine: (sock: Socket, req: { id: number; op: string; attrs: unknown }) => void): Promise<LineServer> {
  return serveLines(join(tmp, name), (sock, line) => onLine(sock, JSON.parse(line) as { id: number; op: string; attrs: unknown }));
}

test('requests carry increasing ids; replies may come out of order', async () => {
  const seen: unknown[] = [];
  const held: Array<() => void> = [];
  const { server, path } = await serve('order.sock', (sock, req) => {
    seen.push(req);
    held.push(() => sock.write(JSON.stringify({ id: req.id, ok: true, result: { op: req.op } }) + '\n'));
    if (held.length === 2) {
      held[1]();
      held[0]();
    }
  });
  const c = await connectDaemon({ path, autostart: false });
  try {
    const [a, b] = await Promise.all([c.request('tunnel_get', {}), c.request('status', {})]);
    assert.deepEqual(a, { op: 'tunnel_get' });
    assert.deepEqual(b, { op: 'status' });
    assert.deepEqual(seen, [
      { id: 1, version: PROTOCOL_VERSION, op: 'tunnel_get', attrs: {} },
      { id: 2, version: PROTOCOL_VERSION, op: 'status', attrs: {} },
    ]);
  } finally {
    c.close();
    server.close();
  }
});

test('error replies become L2tpError {code, errno, message} marked as daemon replies', async () => {
  const { server, path } = await serve('err.sock', (sock, req) => {
    if (req.op === 'tunnel_delete') sock.write(JSON.stringify({ id: req.id, ok: false, error: { code: 'KERNEL', errno: 'ENODEV', message: 'No such device' } }) + '\n');
    else sock.write(JSON.stringify({ id: null, ok: false, error: { code: 'PROTOCOL', message: 'request is not JSON' } }) + '\n');
  });
  try {
    const e = await rejection(request('tunnel_delete', { tunnel_id: 9 }, { path, autostart: false }));
    assert.equal(e.code, 'KERNEL');
    assert.equal(e.errno, 'ENODEV');
    assert.equal(e.message, 'No such device');
    assert.equal(isDaemonReply(e), true);
    const p = await rejection(request('status', {}, { path, autostart: false }));
    assert.equal(p.code, 'PROTOCOL', 'an id-less error goes to the pending request');
    assert.equal(isDaemonReply(p), true);
  } finally {
    server.close();
  }
});

test('garbage or a closed connection fails the pending request, not the process', async () => {
  const { server, path } = await serve('bad.sock', (sock, req) => {
    if (req.op === 'status') sock.write('this is not json\n');
    else sock.destroy();
  });
  try {
    const g = await rejection(request('status', {}, { path, autostart: false }));
    assert.equal(g.code, 'PROTOCOL');
    assert.equal(isDaemonReply(g), false);
    const c = await rejection(request('tunnel_get', {}, { path, autostart: false }));
    assert.equal(c.code, 'DAEMON');
    assert.match(c.message, /closed the connection/);
  } finally {
    server.close();
  }
});

test('no socket and no autostart: DAEMON error naming the path', async () => {
  const path = join(tmp, 'missing', 'ctl.sock');
  const e = await rejection(connectDaemon({ path, autostart: false }));
  assert.equal(e.code, 'DAEMON');
  assert.match(e.message, /missing\/ctl\.sock/);
  await assert.rejects(ControlClient.connect(path), { code: 'ENOENT' });
});

test('a daemon that never answers: the request fails with a DAEMON error after the configured timeout', async () => {
  const { server, path } = await serve('mute.sock', () => {});
  const c = await connectDaemon({ path, autostart: false, requestTimeoutMs: 200 });
  try {
    const t0 = Date.now();
    const e = await rejection(c.request('status', {}));
    assert.equal(e.code, 'DAEMON');
    assert.match(e.message, /no reply from the ul2tp daemon to status within 0\.2 s/);
    assert.equal(isDaemonReply(e), false);
    assert.ok(Date.now() - t0 >= 150, 'not before the timeout');
  } finally {
    c.close();
    server.close();
  }
});
