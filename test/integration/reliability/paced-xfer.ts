/**
 * Paced TCP sender for tests that must not overload the tunnel (the
 * hostile-traffic test wants a transfer that runs the whole time without
 * pushing the dataplane into drops that would also hit the ping):
 *   node paced-xfer.js send HOST PORT SECONDS BYTES_PER_SECOND
 * prints "<bytes> <sha256>" of what it sent, like tcp-xfer.js (whose `serve`
 * mode is the receiver).
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';

const [mode, host, port, seconds, rate] = process.argv.slice(2);
if (mode !== 'send') {
  process.stderr.write('usage: paced-xfer send HOST PORT SECONDS BYTES_PER_SECOND\n');
  process.exit(2);
}
const h = createHash('sha256');
const sock = connect({ host, port: Number(port) });
const perTick = Math.max(1, Math.round(Number(rate) / 50)); // 20 ms ticks
let sent = 0;
let start = 0;
const tick = (): void => {
  const elapsed = Date.now() - start;
  if (elapsed >= Number(seconds) * 1000) {
    sock.end(() => process.stdout.write(`${sent} ${h.digest('hex')}\n`));
    return;
  }
  const due = Math.floor((elapsed / 1000) * Number(rate)) + perTick;
  if (due > sent && sock.writableLength < 4 * perTick) {
    const chunk = randomBytes(Math.min(due - sent, 8 * perTick));
    h.update(chunk);
    sent += chunk.length;
    sock.write(chunk);
  }
  setTimeout(tick, 20);
};
sock.on('connect', () => {
  start = Date.now();
  tick();
});
sock.on('error', (e) => {
  process.stderr.write(`send error: ${e.message}\n`);
  process.exit(1);
});
