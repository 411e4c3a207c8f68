/**
 * Test helper run inside a namespace: prints the JSON result of one control
 * request (default `status`) to stdout, exit 1 if the daemon is not running.
 * Usage: node status.js [op]   e.g. op = session_get for raw counters.
 */
import { connect } from 'node:net';
import { socketPath } from '../../../src/control/paths.js';

const op = process.argv[2] ?? 'status';
const sock = connect(socketPath());
let buf = '';
sock.setEncoding('utf8');
sock.on('error', () => process.exit(1));
sock.on('connect', () => sock.write(JSON.stringify({ id: 1, op, attrs: {} }) + '\n'));
sock.on('data', (d: string) => {
  buf += d;
  const nl = buf.indexOf('\n');
  if (nl < 0) return;
  const msg = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: unknown; error?: unknown };
  if (!msg.ok) {
    process.stderr.write(JSON.stringify(msg.error) + '\n');
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(msg.result) + '\n');
  process.exit(0);
});
