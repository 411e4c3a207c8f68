/**
 * Test-only TCP bulk transfer, run inside a namespace:
 *   node xfer.js server ADDR PORT   → prints `LISTENING`, then `DONE <bytes> <sha256>` when the peer closes
 *   node xfer.js client ADDR PORT BYTES → sends BYTES random bytes, prints `SENT <bytes> <sha256>`
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

const [mode, addr, portText, bytesText] = process.argv.slice(2);
const port = Number(portText);

if (mode === 'server') {
  const srv = net.createServer((c) => {
    const h = createHash('sha256');
    let n = 0;
    c.on('data', (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    c.on('end', () => {
      process.stdout.write(`DONE ${n} ${h.digest('hex')}\n`);
      c.end();
      srv.close();
    });
  });
  srv.listen(port, addr, () => process.stdout.write('LISTENING\n'));
} else {
  const total = Number(bytesText);
  const h = createHash('sha256');
  const c = net.connect(port, addr, () => {
    let left = total;
    const pump = (): void => {
      while (left > 0) {
        const chunk = randomBytes(Math.min(left, 256 * 1024));
        h.update(chunk);
        left -= chunk.length;
        if (!c.write(chunk)) {
          c.once('drain', pump);
          return;
        }
      }
      c.end(() => process.stdout.write(`SENT ${total} ${h.digest('hex')}\n`));
    };
    pump();
  });
  c.on('error', (e) => {
    process.stdout.write(`ERROR ${e.message}\n`);
    process.exit(1);
  });
}
