/**
 * Bulk TCP transfer for tests, run inside a namespace:
 *   node tcp-xfer.js serve PORT         → prints "READY" once listening, then
 *                                          "<bytes> <sha256>" when the sender closes
 *   node tcp-xfer.js send HOST PORT N    → sends N pseudo-random bytes (fixed seed),
 *                                          prints "<bytes> <sha256>" of what it sent
 */
import { createHash } from 'node:crypto';
import { connect, createServer } from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);

function fill(buf: Buffer, state: { x: number }): void {
  // xorshift32: cheap, deterministic, incompressible enough for a transfer check.
  let x = state.x;
  for (let i = 0; i < buf.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x | 0, i);
  }
  state.x = x;
}

if (mode === 'serve') {
  const server = createServer((sock) => {
    const h = createHash('sha256');
    let n = 0;
    sock.on('data', (d: Buffer) => {
      n += d.length;
      h.update(d);
    });
    sock.on('end', () => {
      process.stdout.write(`${n} ${h.digest('hex')}\n`);
      sock.end();
      server.close();
    });
    sock.on('error', (e) => {
      process.stderr.write(`receive error: ${e.message}\n`);
      process.exit(1);
    });
  });
  server.listen(Number(a), '::', () => process.stdout.write('READY\n'));
} else if (mode === 'send') {
  const total = Number(c);
  const h = createHash('sha256');
  const sock = connect({ host: a, port: Number(b) });
  const state = { x: 0x12345678 };
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const len = Math.min(65536, total - sent);
      const chunk = Buffer.allocUnsafe(len + ((4 - (len % 4)) % 4));
      fill(chunk, state);
      const piece = chunk.subarray(0, len);
      h.update(piece);
      sent += len;
      if (!sock.write(piece)) {
        sock.once('drain', pump);
        return;
      }
    }
    sock.end(() => process.stdout.write(`${sent} ${h.digest('hex')}\n`));
  };
  sock.on('connect', pump);
  sock.on('error', (e) => {
    process.stderr.write(`send error: ${e.message}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: tcp-xfer serve PORT | send HOST PORT BYTES\n');
  process.exit(2);
}
